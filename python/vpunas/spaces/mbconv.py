"""MBConv search space (ProxylessNAS / MobileNetV2 family) for image classification.

Fixed: stem conv 3x3 -> first MBConv (k3, e1) -> [searched stages] -> 1x1 head conv -> global average
pool -> linear classifier. Each searched block chooses among MBConv kernel {3,5,7} x expand {3,6}; blocks
that keep their shape (all but the first of a stage) may also choose `skip` (the zero op inside a
residual block), so depth is searched too. Output channels are multiples of 16 (the DPU's granularity).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .. import ops
from ..models.mbconv_net import ConvBNAct, MBConvOp, block_string, init_weights, parse_block_string
from ..supernet import ArchFactors, MixedOp, SearchBlock, SequentialSuperNet, ZeroOp
from . import register_space

ARCH_FORMAT = "vpunas-arch"
ARCH_VERSION = 1
KERNELS = (3, 5, 7)
EXPANDS = (3, 6)

# Stage tables: (out_channels, blocks, stride of the first block).
PRESETS = {
    # ProxylessNAS-mobile style ImageNet table, channels rounded up to multiples of 16.
    "mobilenetv2-224": dict(resolution=224, in_ch=3, num_classes=1000, stem_ch=32, stem_stride=2, first_ch=16,
                            stages=[(32, 4, 2), (48, 4, 2), (80, 4, 2), (96, 4, 1), (192, 4, 2), (320, 1, 1)],
                            head_ch=1280),
    # 28-32 px images (Fashion-MNIST, CIFAR): stride-1 stem, three down-samplings.
    "small-32": dict(resolution=32, in_ch=1, num_classes=10, stem_ch=16, stem_stride=1, first_ch=16,
                     stages=[(32, 3, 2), (48, 3, 2), (96, 3, 2), (128, 1, 1)], head_ch=320),
}


def _round16(c: float) -> int:
    return max(16, int(round(c / 16.0)) * 16)


@dataclass
class SearchBlockSpec:
    """One searched block: its shapes and the candidate ops (specs) with their short names."""

    name: str
    stage: int
    in_ch: int
    out_ch: int
    stride: int
    in_h: int
    in_w: int
    choice_names: list = field(default_factory=list)  # 'ir_k3_e3' ... 'skip'
    candidates: list = field(default_factory=list)  # vpunas.ops specs, same order

    @property
    def keeps_shape(self) -> bool:
        return self.stride == 1 and self.in_ch == self.out_ch


class MBConvSpace:
    """The MBConv space for one input size / stage table. `config` rebuilds it via get_space('mbconv', **config)."""

    task = "classification"

    def __init__(self, preset: str = "small-32", resolution: int | None = None, in_ch: int | None = None,
                 num_classes: int | None = None, width_mult: float = 1.0, stages=None,
                 kernels=KERNELS, expands=EXPANDS, allow_skip: bool = True, head_ch: int | None = None):
        if preset not in PRESETS:
            raise ValueError(f"unknown MBConv preset {preset!r}; available: {', '.join(PRESETS)}")
        base = PRESETS[preset]
        self.preset = preset
        self.resolution = int(resolution or base["resolution"])
        self.in_ch = int(in_ch or base["in_ch"])
        self.num_classes = int(num_classes or base["num_classes"])
        self.width_mult = float(width_mult)
        if self.width_mult <= 0:
            raise ValueError(f"width_mult must be positive, got {width_mult}")
        raw_stages = [tuple(int(v) for v in s) for s in (stages or base["stages"])]
        for s in raw_stages:
            if len(s) != 3 or s[0] < 1 or s[1] < 1 or s[2] not in (1, 2):
                raise ValueError(f"bad stage {s}: expected (out_channels >= 1, blocks >= 1, stride 1 or 2)")
        self.kernels = tuple(int(k) for k in kernels)
        self.expands = tuple(int(e) for e in expands)
        if not self.kernels or not self.expands or any(k % 2 == 0 for k in self.kernels):
            raise ValueError(f"kernels must be odd and non-empty ({kernels}); expands non-empty ({expands})")
        self.allow_skip = bool(allow_skip)
        self.stem_ch = _round16(base["stem_ch"] * self.width_mult)
        self.stem_stride = base["stem_stride"]
        self.first_ch = _round16(base["first_ch"] * self.width_mult)
        self.stages = [(_round16(c * self.width_mult), n, s) for c, n, s in raw_stages]
        self.head_ch = _round16((head_ch or base["head_ch"]) * max(1.0, self.width_mult))
        if self.resolution < 8 or self.in_ch < 1 or self.num_classes < 2:
            raise ValueError("resolution must be >= 8, in_ch >= 1 and num_classes >= 2")
        self.config = dict(preset=preset, resolution=self.resolution, in_ch=self.in_ch,
                           num_classes=self.num_classes, width_mult=self.width_mult, stages=[list(s) for s in raw_stages],
                           kernels=list(self.kernels), expands=list(self.expands), allow_skip=self.allow_skip,
                           head_ch=head_ch or base["head_ch"])
        self._build_specs()

    # ----- description -------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return f"mbconv-{self.preset}-{self.resolution}px-w{self.width_mult:g}"

    @property
    def input_size(self) -> tuple:
        return (self.in_ch, self.resolution, self.resolution)

    def _build_specs(self) -> None:
        h = w = self.resolution
        stem = ops.Conv2d(self.in_ch, self.stem_ch, 3, self.stem_stride, h, w, act="relu6")
        _, h, w = stem.out_shape
        first = ops.MBConv(self.stem_ch, self.first_ch, 3, 1, 1, h, w)
        ch = self.first_ch
        self.blocks: list[SearchBlockSpec] = []
        for si, (out_ch, n, stride) in enumerate(self.stages):
            for bi in range(n):
                s = stride if bi == 0 else 1
                blk = SearchBlockSpec(f"stage{si + 1}.block{bi + 1}", si, ch, out_ch, s, h, w)
                for k in self.kernels:
                    for e in self.expands:
                        blk.choice_names.append(f"ir_k{k}_e{e}")
                        blk.candidates.append(ops.MBConv(ch, out_ch, k, e, s, h, w))
                if self.allow_skip and blk.keeps_shape:
                    blk.choice_names.append("skip")
                    blk.candidates.append(ops.Skip(ch, h, w))
                self.blocks.append(blk)
                _, h, w = blk.candidates[0].out_shape
                ch = out_ch
        head = ops.Conv2d(ch, self.head_ch, 1, 1, h, w, act="relu6")
        self.fixed_ops = [stem, first, head, ops.GlobalAvgPool(self.head_ch, h, w),
                          ops.Linear(self.head_ch, self.num_classes)]
        self.final_size = (ch, h, w)

    @property
    def num_choices(self) -> int:
        return max(len(b.candidates) for b in self.blocks)

    def candidate_mask(self) -> torch.Tensor:
        mask = torch.zeros(len(self.blocks), self.num_choices, dtype=torch.bool)
        for i, b in enumerate(self.blocks):
            mask[i, :len(b.candidates)] = True
        return mask

    # ----- torch modules -----------------------------------------------------------------------------
    def build_candidate(self, block: int, choice: int) -> nn.Module:
        blk = self.blocks[block]
        name = blk.choice_names[choice]
        if name == "skip":
            return ZeroOp()
        spec = blk.candidates[choice]
        return MBConvOp(spec.in_ch, spec.out_ch, spec.kernel, spec.expand, spec.stride)

    def build_supernet(self) -> SequentialSuperNet:
        stem = nn.Sequential(ConvBNAct(self.in_ch, self.stem_ch, 3, self.stem_stride),
                             _Residual(MBConvOp(self.stem_ch, self.first_ch, 3, 1, 1),
                                       self.stem_ch == self.first_ch))
        blocks = [SearchBlock(MixedOp([self.build_candidate(i, j) for j in range(len(b.candidates))]),
                              residual=b.keeps_shape) for i, b in enumerate(self.blocks)]
        ch = self.final_size[0]
        head = nn.Sequential(ConvBNAct(ch, self.head_ch, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(1),
                             nn.Linear(self.head_ch, self.num_classes))
        net = SequentialSuperNet(stem, blocks, head)
        init_weights(net)
        return net

    # ----- architectures -----------------------------------------------------------------------------
    def arch_factors(self) -> ArchFactors:
        """Factorised choices (`supernet.ArchFactors`): kernel and expand ratio decided by separate logits, plus
        'skip' where a block may be skipped."""
        return ArchFactors.from_candidates(
            [[(f"k={op.kernel}", f"e={op.expand}") if isinstance(op, ops.MBConv) else ("skip",)
              for op in blk.candidates] for blk in self.blocks], self.num_choices)

    def sample_arch(self, rng: np.random.Generator) -> list[int]:
        """Uniformly random candidate index per block."""
        return [int(rng.integers(len(b.candidates))) for b in self.blocks]

    def _check_choices(self, choices) -> list[int]:
        choices = [int(c) for c in choices]
        if len(choices) != len(self.blocks):
            raise ValueError(f"{self.name} has {len(self.blocks)} searched blocks; got {len(choices)} choices")
        for i, (c, b) in enumerate(zip(choices, self.blocks)):
            if not 0 <= c < len(b.candidates):
                raise ValueError(f"choice {c} of block {i} ({b.name}) is out of range 0..{len(b.candidates) - 1}")
        return choices

    def chosen_ops(self, choices) -> list:
        """The op specs of an architecture: fixed ops plus the chosen candidate per block."""
        choices = self._check_choices(choices)
        return self.fixed_ops[:2] + [b.candidates[c] for b, c in zip(self.blocks, choices)] + self.fixed_ops[2:]

    def derive(self, choices) -> dict:
        """Arch description (JSON-able) of the net that takes candidate `choices[i]` in block i."""
        choices = self._check_choices(choices)
        blocks = [block_string(3, 1, self.first_ch, 1)]
        detail = []
        for b, c in zip(self.blocks, choices):
            name = b.choice_names[c]
            if name == "skip":
                text = "skip"
            else:
                spec = b.candidates[c]
                text = block_string(spec.kernel, spec.expand, spec.out_ch, spec.stride)
            blocks.append(text)
            detail.append({"name": b.name, "stage": b.stage, "in_ch": b.in_ch, "out_ch": b.out_ch,
                           "stride": b.stride, "in_hw": [b.in_h, b.in_w], "op": text})
        ops_ = self.chosen_ops(choices)
        return {
            "format": ARCH_FORMAT, "version": ARCH_VERSION, "task": "classification", "space": "mbconv",
            "space_config": copy.deepcopy(self.config), "space_name": self.name,
            "input_size": list(self.input_size), "num_classes": self.num_classes,
            "stem": {"out_ch": self.stem_ch, "kernel": 3, "stride": self.stem_stride},
            "blocks": blocks, "searched_blocks": detail, "choices": choices,
            "head": {"out_ch": self.head_ch},
            "macs": int(sum(o.macs for o in ops_)), "params_spec": int(sum(o.params for o in ops_)),
        }

    def choices_from_arch(self, arch: dict) -> list[int]:
        """Inverse of `derive`: candidate index per searched block (the first, fixed block is skipped)."""
        if list(arch.get("input_size", [])) != list(self.input_size):
            raise ValueError(f"arch input size {arch.get('input_size')} != space input size {list(self.input_size)}")
        texts = arch["blocks"][1:]
        if len(texts) != len(self.blocks):
            raise ValueError(f"arch has {len(texts)} searched blocks; the space {self.name} has {len(self.blocks)}")
        choices = []
        for b, text in zip(self.blocks, texts):
            spec = parse_block_string(text)
            key = "skip" if spec["op"] == "skip" else f"ir_k{spec['kernel']}_e{spec['expand']}"
            if key not in b.choice_names:
                raise ValueError(f"block {b.name}: {text!r} is not one of its candidates {b.choice_names}")
            choices.append(b.choice_names.index(key))
        return choices

    def uniform_choices(self, kernel: int = 3, expand: int = 6) -> list[int]:
        """Every block MBConv(kernel, expand): e.g. the MobileNetV2-style baseline (k3, e6)."""
        key = f"ir_k{kernel}_e{expand}"
        return [b.choice_names.index(key) for b in self.blocks]


class _Residual(nn.Module):
    def __init__(self, body: nn.Module, residual: bool):
        super().__init__()
        self.body, self.residual = body, residual

    def forward(self, x):
        y = self.body(x)
        return x + y if self.residual else y


@register_space("mbconv")
def mbconv_space(**kw) -> MBConvSpace:
    return MBConvSpace(**kw)


@register_space("small-32")
def small32_space(**kw) -> MBConvSpace:
    return MBConvSpace(preset="small-32", **kw)


@register_space("mobilenetv2-224")
def mobilenetv2_224_space(**kw) -> MBConvSpace:
    return MBConvSpace(preset="mobilenetv2-224", **kw)
