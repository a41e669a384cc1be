"""MobileNetV2-style baseline: every block an MBConv k3 e6, no skipped blocks, on a space's stage table.

Built through the same arch description as searched nets, so it is trained, exported and costed by the
very same code (a fair comparison: same recipe, same stage table and widths).
"""
from __future__ import annotations

from .mbconv_net import MBConvNet


def mobilenetv2_arch(space) -> dict:
    """Arch dict of the baseline on `space` (an MBConvSpace)."""
    arch = space.derive(space.uniform_choices(kernel=3, expand=6))
    arch["name"] = "mobilenetv2-baseline"
    return arch


def mobilenetv2(space) -> MBConvNet:
    return MBConvNet(mobilenetv2_arch(space))
