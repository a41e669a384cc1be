"""Plain MBConv networks built from an arch description (timm-style small modules, export-friendly).

An arch dict (see `vpunas.spaces.mbconv.MBConvSpace.derive`) lists the stem, every block as a compact
block string (`ir_k5_e6_c48_s2`, `skip`) with its input channels, the head and the classifier.
"""
from __future__ import annotations

import re

import torch
from torch import nn

_BLOCK_RE = re.compile(r"^ir_k(\d+)_e(\d+)_c(\d+)_s(\d+)$")


def parse_block_string(text: str) -> dict:
    """`ir_k5_e6_c48_s2` -> {'op': 'ir', 'kernel': 5, 'expand': 6, 'out_ch': 48, 'stride': 2}; `skip` too."""
    if text == "skip":
        return {"op": "skip"}
    m = _BLOCK_RE.match(text)
    if not m:
        raise ValueError(f"bad block string {text!r}; expected 'skip' or like 'ir_k5_e6_c48_s2'")
    k, e, c, s = (int(g) for g in m.groups())
    if k % 2 == 0 or k < 1 or e < 1 or c < 1 or s not in (1, 2):
        raise ValueError(f"bad block string {text!r}: kernel must be odd, expand/channels >= 1, stride 1 or 2")
    return {"op": "ir", "kernel": k, "expand": e, "out_ch": c, "stride": s}


def block_string(kernel: int, expand: int, out_ch: int, stride: int) -> str:
    return f"ir_k{kernel}_e{expand}_c{out_ch}_s{stride}"


class ConvBNAct(nn.Sequential):
    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1, act: bool = True):
        layers = [nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, groups=groups, bias=False),
                  nn.BatchNorm2d(out_ch)]
        if act:
            layers.append(nn.ReLU6(inplace=True))
        super().__init__(*layers)


class MBConvOp(nn.Sequential):
    """Inverted-residual body without the shortcut: [1x1 expand] -> kxk depthwise -> 1x1 linear project."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, expand: int, stride: int):
        mid = in_ch * expand
        layers = [] if expand == 1 else [ConvBNAct(in_ch, mid, 1)]
        layers += [ConvBNAct(mid, mid, kernel, stride, groups=mid), ConvBNAct(mid, out_ch, 1, act=False)]
        super().__init__(*layers)


class InvertedResidual(nn.Module):
    """MBConv block; adds the input when stride is 1 and the channels match."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, expand: int, stride: int):
        super().__init__()
        self.body = MBConvOp(in_ch, out_ch, kernel, expand, stride)
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.residual else y


class MBConvNet(nn.Module):
    """Stem -> MBConv blocks -> 1x1 head -> global average pool -> linear classifier."""

    def __init__(self, arch: dict):
        super().__init__()
        in_ch = int(arch["input_size"][0])
        stem = arch["stem"]
        self.stem = ConvBNAct(in_ch, stem["out_ch"], stem["kernel"], stem["stride"])
        ch = stem["out_ch"]
        blocks = []
        for i, text in enumerate(arch["blocks"]):
            spec = parse_block_string(text)
            if spec["op"] == "skip":
                continue  # a skipped block is the identity: it only exists where shapes are kept
            blocks.append(InvertedResidual(ch, spec["out_ch"], spec["kernel"], spec["expand"], spec["stride"]))
            ch = spec["out_ch"]
        self.blocks = nn.Sequential(*blocks)
        self.head = ConvBNAct(ch, arch["head"]["out_ch"], 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(float(arch.get("dropout", 0.0)))
        self.classifier = nn.Linear(arch["head"]["out_ch"], int(arch["num_classes"]))
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.blocks(self.stem(x)))
        return self.classifier(self.dropout(torch.flatten(self.pool(x), 1)))


def init_weights(module: nn.Module) -> None:
    """MobileNetV2's initialisation (kaiming fan-out convs, small-normal linear, unit BN)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)
