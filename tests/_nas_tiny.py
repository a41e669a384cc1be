"""Tiny search-space / data helpers shared by the NAS tests (seconds, not minutes)."""
from __future__ import annotations

import torch
from torch.utils.data import TensorDataset

from vpunas.search import LatencyTerms
from vpunas.spaces import get_space


def tiny_space(**kw):
    cfg = dict(preset="small-32", resolution=8, in_ch=1, num_classes=3, stages=[[16, 2, 1], [32, 1, 2]],
               head_ch=32, kernels=(3, 5), expands=(1, 3))
    cfg.update(kw)
    return get_space("mbconv", **cfg)


def tiny_data(n: int = 64, seed: int = 0, size: int = 8, classes: int = 3) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (n,), generator=g)
    x = torch.randn(n, 1, size, size, generator=g) * 0.5 + y.view(-1, 1, 1, 1).float()
    return TensorDataset(x, y)


def macs_latency(space) -> LatencyTerms:
    """A hand-made LUT: latency proportional to MACs (skip costs 0), 1 ms per MMAC."""
    mask = space.candidate_mask()
    table = torch.zeros(mask.shape, dtype=torch.float64)
    for i, b in enumerate(space.blocks):
        for j, op in enumerate(b.candidates):
            table[i, j] = op.macs / 1e6
    return LatencyTerms(table, mask, fixed_ms=0.01, device="test", source="macs")


def one_thread():
    """Generator for an autouse fixture: tiny nets run fastest single-threaded on a busy shared CPU."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
