"""EDSR-style super-resolution search space (the whitepaper's 2x SR task on VPU 2.7).

Network: head conv 3x3 (3 -> C) -> N searchable residual blocks -> long skip add (+ head output)
-> searchable upsampler -> RGB at scale x the input size.

  * residual block: conv k1 (C -> mid) -> activation -> conv k2 (mid -> C) -> + input, choosing
    k1, k2 in {1, 3, 5}, mid in multiples of 16, activation ReLU or LeakyReLU; or ``skip`` (identity), which
    makes the depth searchable as in the classification space.
  * upsampler: ``nearest`` / ``bilinear`` interpolation + conv 3x3 (-> 3) at the HR size, or ``d2s``: conv 3x3
    (C -> U*s^2) + depth-to-space (pixel shuffle) + conv 3x3 (U -> 3), as EDSR; U, the channels at the HR
    size, is searched too: the trunk width C, or narrower (multiples of 16; interpolation then follows a
    conv 3x3 C -> U at the LR size). DSP kernels and HR convs scale with U. U = 3, the image channels
    (searched with d2s only), is the ESPCN-style tail: the LR conv writes the image (d2s: 3*s^2 channels)
    and there is no HR conv; it predicts the residual over nearest up-sampling (ABPN's anchor): the input
    image is added at the LR size before the up-sampling (d2s: through a 1x1 conv 3 -> 3*s^2 that starts as
    "repeat each channel s^2 times").

All candidates of one residual block share one weight tensor per conv (the largest kernel and width);
a candidate uses its centre k x k crop and first ``mid`` channels. Every supernet step therefore trains
the weights every candidate uses, which is what makes the search affordable on a CPU.

Latency model. The candidate of a block is a composite op (`ResBlockOp`, `UpsamplerOp`) that exposes the
`ops.OpSpec` interface (key, out_shape, macs, params, dpu_layers, shave_ops); `ops.CompositeOp` sums its plain parts.
Feature maps at 360x640 do not fit the NPU's on-chip memory; the layer cost model charges such layers
as H-strips streamed through DDR, so nothing here tiles by hand.
LeakyReLU is described as a stand-alone SHAVE activation after the conv, not a fused DPU post-op: on
VPU 2.7 (Meteor Lake) the whitepaper found LeakyReLU and depth-to-space running on the DSP, which is why
the searched network picked ReLU and nearest up-sampling. ReLU fuses into the DPU layer for free.
"""
from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..export import register_builder
from ..ops import Activation, Add, CompositeOp, Conv2d, DepthToSpace, Skip, Upsample, check_choice
from . import register_space

ARCH_FORMAT = "vpunas-arch"
ARCH_VERSION = 1
ACTS = ("relu", "leaky_relu")
UPSAMPLERS = ("nearest", "bilinear", "d2s")
LEAKY_SLOPE = 0.2
OUT_CH = 3  # RGB; as an upsampler width it means "no HR conv" (the ESPCN-style tail)
# The whitepaper's latency setting: a 360x640 LR input, upscaled to 720x1280 for scale 2.
DEFAULT_INPUT_HW = (360, 640)


# --------------------------------------------------------------------------------------------- op specs
@dataclass(frozen=True)
class ResBlockOp(CompositeOp):
    """EDSR residual block: conv k1 (ch -> mid) + act + conv k2 (mid -> ch) + residual add."""

    ch: int
    mid: int
    k1: int
    k2: int
    act: str
    h: int
    w: int

    KIND: ClassVar[str] = "edsr_res"
    KEY_TEMPLATE: ClassVar[str] = "edsrres_k{k1}x{k2}_c{ch}_m{mid}_{h}x{w}_act-{act}"

    def __post_init__(self):
        check_choice("ResBlockOp", "act", self.act, ACTS)
        for k in (self.k1, self.k2):
            if k not in (1, 3, 5, 7):
                raise ValueError(f"ResBlockOp: kernels must be odd (1, 3, 5, 7); got {k!r}")

    def parts(self) -> list:
        fused = "relu" if self.act == "relu" else "none"  # ReLU fuses into the DPU layer; LeakyReLU -> SHAVE
        ops = [Conv2d(self.ch, self.mid, self.k1, 1, self.h, self.w, act=fused)]
        if self.act == "leaky_relu":
            ops.append(Activation("leaky_relu", self.mid, self.h, self.w))
        ops += [Conv2d(self.mid, self.ch, self.k2, 1, self.h, self.w), Add(self.ch, self.h, self.w)]
        return ops

    @property
    def out_shape(self) -> tuple:
        return (self.ch, self.h, self.w)

    @property
    def block_string(self) -> str:
        return f"res_k{self.k1}x{self.k2}_m{self.mid}_{'lrelu' if self.act == 'leaky_relu' else 'relu'}"


@dataclass(frozen=True)
class UpsamplerOp(CompositeOp):
    """SR tail with `up_ch` channels at the HR size (0 = the trunk width `ch`):
    nearest / bilinear: [conv 3x3 ch -> up_ch at LR when narrower] + interpolation + conv 3x3 (up_ch -> out_ch);
    d2s: conv 3x3 (ch -> up_ch*s^2) + depth-to-space + conv 3x3 (up_ch -> out_ch), as EDSR with up_ch = ch.
    up_ch == out_ch drops the HR conv: the LR conv already writes the image (ESPCN's sub-pixel tail for d2s),
    as a residual over the input image added before the up-sampling (d2s: via a 1x1 conv out_ch -> out_ch*s^2)."""

    mode: str
    scale: int
    ch: int
    h: int
    w: int
    out_ch: int = OUT_CH
    up_ch: int = 0

    KIND: ClassVar[str] = "edsr_up"
    KEY_TEMPLATE: ClassVar[str] = "edsrup-{mode}_x{scale}_c{ch}_u{up_ch}_o{out_ch}_{h}x{w}"

    def __post_init__(self):
        check_choice("UpsamplerOp", "mode", self.mode, UPSAMPLERS)
        if self.scale not in (2, 3, 4):
            raise ValueError(f"UpsamplerOp: scale must be 2, 3 or 4; got {self.scale!r}")
        if self.up_ch == 0:
            object.__setattr__(self, "up_ch", self.ch)
        if not 0 < self.up_ch <= self.ch:
            raise ValueError(f"UpsamplerOp: up_ch must be between 1 and ch = {self.ch}; got {self.up_ch!r}")

    def parts(self) -> list:
        s, hh, ww, u = self.scale, self.h * self.scale, self.w * self.scale, self.up_ch
        image_tail = u == self.out_ch
        hr_conv = [] if image_tail else [Conv2d(u, self.out_ch, 3, 1, hh, ww)]
        if self.mode == "d2s":
            anchor = [Conv2d(self.out_ch, u * s * s, 1, 1, self.h, self.w), Add(u * s * s, self.h, self.w)]
            return [Conv2d(self.ch, u * s * s, 3, 1, self.h, self.w), *(anchor if image_tail else []),
                    DepthToSpace(u * s * s, s, self.h, self.w), *hr_conv]
        reduce = [Conv2d(self.ch, u, 3, 1, self.h, self.w)] if u != self.ch else []
        anchor = [Add(u, self.h, self.w)] if image_tail else []
        return reduce + anchor + [Upsample(self.mode, s, u, self.h, self.w), *hr_conv]

    @property
    def out_shape(self) -> tuple:
        return (self.out_ch, self.h * self.scale, self.w * self.scale)

    @property
    def block_string(self) -> str:
        return up_string(self.mode, self.up_ch, self.ch)


def up_string(mode: str, up_ch: int, ch: int) -> str:
    """'up_nearest' (full trunk width) or 'up_nearest_u16' (16 channels at the HR size; u3: no HR conv)."""
    return f"up_{mode}" if not up_ch or up_ch == ch else f"up_{mode}_u{up_ch}"


# ------------------------------------------------------------------------------------------ architecture
@dataclass(frozen=True)
class ResChoice:
    k1: int
    k2: int
    mid: int
    act: str

    def __post_init__(self):
        if self.act not in ACTS:
            raise ValueError(f"activation must be one of {', '.join(ACTS)}; got {self.act!r}")
        if self.k1 % 2 == 0 or self.k2 % 2 == 0 or self.k1 < 1 or self.k2 < 1:
            raise ValueError(f"kernels must be odd and positive; got {self.k1}, {self.k2}")
        if self.mid < 1:
            raise ValueError(f"block width must be positive; got {self.mid}")

    @property
    def block_string(self) -> str:
        return f"res_k{self.k1}x{self.k2}_m{self.mid}_{'lrelu' if self.act == 'leaky_relu' else 'relu'}"


_RES_RX = re.compile(r"res_k(\d+)x(\d+)_m(\d+)_(relu|lrelu)\Z")


def parse_block_string(s: str) -> ResChoice | None:
    """'res_k3x1_m32_relu' -> ResChoice; 'skip' -> None."""
    if s == "skip":
        return None
    m = _RES_RX.match(s)
    if not m:
        raise ValueError(f"not an EDSR block string: {s!r} (expected 'skip' or e.g. 'res_k3x1_m32_relu')")
    return ResChoice(int(m[1]), int(m[2]), int(m[3]), "leaky_relu" if m[4] == "lrelu" else "relu")


@dataclass(frozen=True)
class EdsrArch:
    """A concrete EDSR-style network: trunk width, residual blocks (None = skipped), upsampler, scale."""

    width: int
    blocks: tuple
    upsampler: str
    scale: int = 2
    head_kernel: int = 3
    up_width: int = 0  # channels at the HR size; 0 = width; OUT_CH = the LR conv writes the image

    def __post_init__(self):
        if self.up_width == 0:
            object.__setattr__(self, "up_width", self.width)
        if not 0 < self.up_width <= self.width:
            raise ValueError(f"up_width must be between 1 and the width {self.width}; got {self.up_width}")
        if self.upsampler not in UPSAMPLERS:
            raise ValueError(f"upsampler must be one of {', '.join(UPSAMPLERS)}; got {self.upsampler!r}")
        if self.scale not in (2, 3, 4):
            raise ValueError(f"scale must be 2, 3 or 4; got {self.scale}")
        if self.width < 1:
            raise ValueError(f"width must be positive; got {self.width}")

    @property
    def active_blocks(self) -> list:
        return [b for b in self.blocks if b is not None]

    def block_strings(self) -> list:
        return ([f"head_k{self.head_kernel}_c{self.width}"]
                + [b.block_string if b is not None else "skip" for b in self.blocks]
                + [f"{up_string(self.upsampler, self.up_width, self.width)}_x{self.scale}"])

    def ops(self, in_h: int, in_w: int) -> list:
        """Every op of the network at an in_h x in_w LR input, in execution order (for latency / params)."""
        c = self.width
        ops = [Conv2d(3, c, self.head_kernel, 1, in_h, in_w)]
        ops += [ResBlockOp(c, b.mid, b.k1, b.k2, b.act, in_h, in_w) for b in self.active_blocks]
        ops.append(Add(c, in_h, in_w))  # long skip
        ops.append(UpsamplerOp(self.upsampler, self.scale, c, in_h, in_w, up_ch=self.up_width))
        return ops

    def to_dict(self, in_hw=DEFAULT_INPUT_HW) -> dict:
        """Arch description in the shared `vpunas-arch` JSON format (`export.build_model` rebuilds it)."""
        ops_ = self.ops(*in_hw)
        return {"format": ARCH_FORMAT, "version": ARCH_VERSION, "task": "sr", "space": "edsr",
                "input_size": [3, *in_hw], "width": self.width, "scale": self.scale, "head_kernel": self.head_kernel,
                "upsampler": self.upsampler, "up_width": self.up_width,
                "blocks": [b.block_string if b else "skip" for b in self.blocks],
                "block_strings": self.block_strings(), "macs": int(sum(o.macs for o in ops_)),
                "params_spec": int(sum(o.params for o in ops_)), "dsp_ops": dsp_op_names(ops_)}

    @classmethod
    def from_dict(cls, d: dict) -> "EdsrArch":
        try:
            return cls(width=int(d["width"]), blocks=tuple(parse_block_string(s) for s in d["blocks"]),
                       upsampler=d["upsampler"], scale=int(d.get("scale", 2)), head_kernel=int(d.get("head_kernel", 3)),
                       up_width=int(d.get("up_width", 0)))
        except KeyError as exc:
            raise ValueError(f"EDSR architecture JSON lacks field {exc}") from exc

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def dsp_op_names(ops_, device: str = "VPU_2_7") -> list:
    """Names of the SHAVE (DSP) kernels a list of ops needs, e.g. ['leakyrelu', 'DepthToSpace']."""
    return [s.name for op in ops_ for s in op.shave_ops(device)]


def edsr3_baseline(scale: int = 2) -> EdsrArch:
    """The whitepaper's EDSR3 reference: 3 residual blocks of 64 channels, LeakyReLU, depth-to-space."""
    return EdsrArch(width=64, blocks=(ResChoice(3, 3, 64, "leaky_relu"),) * 3, upsampler="d2s", scale=scale)


# ------------------------------------------------------------------------------------ plain torch modules
def _act_module(act: str) -> nn.Module:
    return nn.ReLU(inplace=False) if act == "relu" else nn.LeakyReLU(LEAKY_SLOPE)


class PlainResBlock(nn.Module):
    def __init__(self, ch: int, choice: ResChoice):
        super().__init__()
        self.conv1 = nn.Conv2d(ch, choice.mid, choice.k1, padding=choice.k1 // 2)
        self.act = _act_module(choice.act)
        self.conv2 = nn.Conv2d(choice.mid, ch, choice.k2, padding=choice.k2 // 2)

    def forward(self, x):
        return x + self.conv2(self.act(self.conv1(x)))


class Upsampler(nn.Module):
    """The torch twin of `UpsamplerOp` (same parts, same order). forward((features, image)): the LR image is
    used by the image-width tail (up_ch == out_ch) only."""

    def __init__(self, ch: int, mode: str, scale: int, out_ch: int = OUT_CH, up_ch: int = 0):
        super().__init__()
        if mode not in UPSAMPLERS:
            raise ValueError(f"upsampler must be one of {', '.join(UPSAMPLERS)}; got {mode!r}")
        up_ch = up_ch or ch
        self.mode, self.scale = mode, scale
        if mode == "d2s":
            self.expand = nn.Conv2d(ch, up_ch * scale * scale, 3, padding=1)
            self.shuffle = nn.PixelShuffle(scale)
        elif up_ch != ch:
            self.reduce = nn.Conv2d(ch, up_ch, 3, padding=1)
        self.image_tail = up_ch == out_ch
        self.out = nn.Identity() if self.image_tail else nn.Conv2d(up_ch, out_ch, 3, padding=1)
        if self.image_tail and mode == "d2s":
            self.anchor = nn.Conv2d(out_ch, out_ch * scale * scale, 1)
            with torch.no_grad():  # each image channel onto its s^2 sub-pixels: nearest up-sampling after the shuffle
                self.anchor.weight.copy_(torch.eye(out_ch).repeat_interleave(scale * scale, 0)[:, :, None, None])
                self.anchor.bias.zero_()

    def forward(self, inputs):
        x, image = inputs
        if hasattr(self, "reduce"):
            x = self.reduce(x)
        if self.mode == "d2s":
            x = self.expand(x)
            if self.image_tail:
                x = x + self.anchor(image)
            x = self.shuffle(x)
        else:
            if self.image_tail:
                x = x + image
            x = F.interpolate(x, scale_factor=self.scale, mode=self.mode,
                              **({} if self.mode == "nearest" else {"align_corners": False}))
        return self.out(x)


class EdsrNet(nn.Module):
    """Plain EDSR-style network for an `EdsrArch` (derived nets and the EDSR3 baseline)."""

    def __init__(self, arch: EdsrArch):
        super().__init__()
        self.arch = arch
        self.head = nn.Conv2d(3, arch.width, arch.head_kernel, padding=arch.head_kernel // 2)
        self.body = nn.Sequential(*[PlainResBlock(arch.width, b) for b in arch.active_blocks])
        self.upsampler = Upsampler(arch.width, arch.upsampler, arch.scale, up_ch=arch.up_width)

    def forward(self, x):
        f = self.head(x)
        return self.upsampler((self.body(f) + f, x))


# ------------------------------------------------------------------------------- weight-shared candidates
class SharedResWeights(nn.Module):
    """Largest-kernel, widest weights of one searchable residual block, shared by all its candidates."""

    def __init__(self, ch: int, max_mid: int, max_k: int):
        super().__init__()
        ref1 = nn.Conv2d(ch, max_mid, max_k)
        ref2 = nn.Conv2d(max_mid, ch, max_k)
        self.w1, self.b1 = nn.Parameter(ref1.weight.detach().clone()), nn.Parameter(ref1.bias.detach().clone())
        self.w2, self.b2 = nn.Parameter(ref2.weight.detach().clone()), nn.Parameter(ref2.bias.detach().clone())
        self.max_k = max_k

    def sliced(self, choice: ResChoice):
        """(w1, b1, w2, b2) views for one candidate: first `mid` channels, centre k x k taps."""
        def centre(w, k):
            o = (self.max_k - k) // 2
            return w[..., o:o + k, o:o + k]
        m = choice.mid
        return centre(self.w1[:m], choice.k1), self.b1[:m], centre(self.w2[:, :m], choice.k2), self.b2


class SharedResCandidate(nn.Module):
    """One residual-block candidate computed from the block's shared weights: the residual branch only
    (the supernet's `SearchBlock` adds the shortcut, so the `ZeroOp` candidate is a skipped block)."""

    def __init__(self, shared: SharedResWeights, choice: ResChoice):
        super().__init__()
        self.shared, self.choice = shared, choice

    def forward(self, x):
        w1, b1, w2, b2 = self.shared.sliced(self.choice)
        y = F.conv2d(x, w1, b1, padding=self.choice.k1 // 2)
        y = F.relu(y) if self.choice.act == "relu" else F.leaky_relu(y, LEAKY_SLOPE)
        return F.conv2d(y, w2, b2, padding=self.choice.k2 // 2)

    def to_plain(self) -> PlainResBlock:
        """A stand-alone block holding copies of this candidate's slices of the shared weights."""
        ch = self.shared.w1.shape[1]
        block = PlainResBlock(ch, self.choice)
        w1, b1, w2, b2 = self.shared.sliced(self.choice)
        with torch.no_grad():
            block.conv1.weight.copy_(w1), block.conv1.bias.copy_(b1)
            block.conv2.weight.copy_(w2), block.conv2.bias.copy_(b2)
        return block


# ------------------------------------------------------------------------------------ space and supernet
@dataclass(frozen=True)
class SpaceBlock:
    """One searchable position: a name and its candidate ops (the LUT costs each candidate)."""

    name: str
    candidates: tuple


class EdsrSuperNet(nn.Module):
    """head -> residual search blocks (ZeroOp = skip) -> + head (long skip) -> upsampler search block.

    `forward(x, samples)` takes one `PathSample` per search block (residual blocks, then the upsampler),
    like `supernet.SequentialSuperNet`; the long skip is why this is not a plain SequentialSuperNet.
    """

    def __init__(self, space: "EdsrSpace"):
        super().__init__()
        from ..supernet import MixedOp, SearchBlock, ZeroOp

        c = space.width
        self.head = nn.Conv2d(3, c, 3, padding=1)
        self.shared = nn.ModuleList(SharedResWeights(c, max(space.mids), max(space.kernels))
                                    for _ in range(space.max_blocks))
        self.blocks = nn.ModuleList(
            SearchBlock(MixedOp([ZeroOp()] + [SharedResCandidate(w, ch) for ch in space.res_choices]), residual=True)
            for w in self.shared)
        self.upsampler = SearchBlock(MixedOp([Upsampler(c, m, space.scale, up_ch=u) for m, u in space.up_choices]),
                                     residual=False)

    @property
    def search_blocks(self) -> list:
        return list(self.blocks) + [self.upsampler]

    def forward(self, x: torch.Tensor, samples: list) -> torch.Tensor:
        if len(samples) != len(self.blocks) + 1:
            raise ValueError(f"got {len(samples)} path samples for {len(self.blocks) + 1} search blocks")
        f = self.head(x)
        y = f
        for block, sample in zip(self.blocks, samples):
            y = block(y, sample)
        return self.upsampler((y + f, x), samples[-1])


class EdsrSpace:
    """The EDSR-style SR search space; see the module docstring. ``input_hw`` is the latency input size."""

    name = "edsr"
    task = "sr"

    def __init__(self, scale: int = 2, width: int = 32, max_blocks: int = 4, kernels=(1, 3, 5), mids=(16, 32),
                 acts=ACTS, upsamplers=UPSAMPLERS, up_widths=(16,), input_hw=DEFAULT_INPUT_HW):
        if scale not in (2, 3, 4):
            raise ValueError(f"scale must be 2, 3 or 4; got {scale}")
        if width < 1 or width % 16:
            raise ValueError(f"trunk width must be a positive multiple of 16; got {width}")
        if max_blocks < 1:
            raise ValueError(f"max_blocks must be >= 1; got {max_blocks}")
        bad = [k for k in kernels if k not in (1, 3, 5, 7)]
        if not kernels or bad:
            raise ValueError(f"kernels must be chosen from 1, 3, 5, 7; got {list(kernels)}")
        if not mids or any(m < 16 or m % 16 for m in mids):
            raise ValueError(f"block widths must be positive multiples of 16; got {list(mids)}")
        if not acts or any(a not in ACTS for a in acts):
            raise ValueError(f"activations must be chosen from {', '.join(ACTS)}; got {list(acts)}")
        if not upsamplers or any(u not in UPSAMPLERS for u in upsamplers):
            raise ValueError(f"upsamplers must be chosen from {', '.join(UPSAMPLERS)}; got {list(upsamplers)}")
        if any(u != OUT_CH and (u < 16 or u % 16 or u > width) for u in up_widths):
            raise ValueError(f"upsampler widths must be multiples of 16 up to the width {width}, or {OUT_CH} "
                             f"(no HR conv); got {list(up_widths)}")
        self.scale, self.width, self.max_blocks = scale, width, max_blocks
        self.kernels, self.mids = tuple(sorted(set(kernels))), tuple(sorted(set(mids)))
        self.acts, self.upsamplers = tuple(dict.fromkeys(acts)), tuple(dict.fromkeys(upsamplers))
        # (mode, channels at the HR size): the full trunk width first, so index i < len(upsamplers) is
        # upsamplers[i] at full width; narrower variants (cheaper DSP kernels and HR convs) follow. The image
        # width is offered with d2s only: interpolating the finished image cannot add detail (nearest makes
        # it blocky), so those candidates could only mislead a short search.
        narrow = sorted({int(u) for u in up_widths if u != width}, reverse=True)
        self.up_widths = (width, *narrow)
        self.up_choices = tuple((m, u) for u in self.up_widths for m in self.upsamplers if u != OUT_CH or m == "d2s")
        self.input_hw = tuple(input_hw)
        self.res_choices = tuple(ResChoice(k1, k2, m, a) for k1, k2, m, a
                                 in itertools.product(self.kernels, self.kernels, self.mids, self.acts))

    @property
    def input_size(self) -> tuple:
        return (3, *self.input_hw)

    @property
    def blocks(self) -> list:
        c, (h, w) = self.width, self.input_hw
        res = tuple([Skip(c, h, w)] + [ResBlockOp(c, ch.mid, ch.k1, ch.k2, ch.act, h, w) for ch in self.res_choices])
        ups = tuple(UpsamplerOp(m, self.scale, c, h, w, up_ch=u) for m, u in self.up_choices)
        return [SpaceBlock(f"res{i}", res) for i in range(self.max_blocks)] + [SpaceBlock("upsampler", ups)]

    @property
    def fixed_ops(self) -> list:
        c, (h, w) = self.width, self.input_hw
        return [Conv2d(3, c, 3, 1, h, w), Add(c, h, w)]

    def candidate_mask(self) -> torch.Tensor:
        blocks = self.blocks
        m = max(len(b.candidates) for b in blocks)
        return torch.tensor([[j < len(b.candidates) for j in range(m)] for b in blocks])

    def build_supernet(self) -> EdsrSuperNet:
        return EdsrSuperNet(self)

    @property
    def num_choices(self) -> int:
        return max(len(b.candidates) for b in self.blocks)

    def choice_names(self) -> list:
        """Short names of every block's candidates (for logs): 'skip', 'res_k3x1_m32_relu', 'up_nearest'."""
        res = ["skip"] + [c.block_string for c in self.res_choices]
        return [res] * self.max_blocks + [[up_string(m, u, self.width) for m, u in self.up_choices]]

    def sample_arch(self, rng) -> list:
        return [int(rng.integers(0, len(b.candidates))) for b in self.blocks]

    def arch_factors(self):
        """Factorised choices (`supernet.ArchFactors`): a residual block is 'skip' or (k1, k2, mid, act), each
        decided by its own logits. The upsampler keeps one logit per candidate: its mode and HR width interact
        (width 3 drops the HR conv, which suits depth-to-space and ruins nearest), so their product would
        pick the best mode and the best width even when that pair is a bad net."""
        from ..supernet import ArchFactors

        res = [("skip",)] + [(f"k1={c.k1}", f"k2={c.k2}", f"mid={c.mid}", f"act={c.act}") for c in self.res_choices]
        up = [(f"up={m}_u{u}",) for m, u in self.up_choices]
        return ArchFactors.from_candidates([res] * self.max_blocks + [up], self.num_choices)

    def derive(self, choices) -> dict:
        """Arch description (shared `vpunas-arch` JSON) of the net that takes candidate choices[i] in block i."""
        arch = self.arch_from_indices(choices).to_dict(self.input_hw)
        arch["choices"] = [int(c) for c in choices]
        arch["space_config"] = self.config
        return arch

    def choices_from_arch(self, arch) -> list:
        """Inverse of `derive`; ValueError when the net is not in this space (e.g. EDSR3's width 64)."""
        arch = arch if isinstance(arch, EdsrArch) else EdsrArch.from_dict(arch)
        if arch.width != self.width or arch.scale != self.scale or len(arch.blocks) != self.max_blocks:
            raise ValueError(f"arch (width {arch.width}, scale {arch.scale}, {len(arch.blocks)} blocks) is not in "
                             f"this space (width {self.width}, scale {self.scale}, {self.max_blocks} blocks)")
        try:
            return ([0 if b is None else 1 + self.res_choices.index(b) for b in arch.blocks]
                    + [self.up_choices.index((arch.upsampler, arch.up_width))])
        except ValueError as exc:
            raise ValueError(f"arch {arch.block_strings()} uses a candidate this space does not have") from exc

    @property
    def config(self) -> dict:
        return {"scale": self.scale, "width": self.width, "max_blocks": self.max_blocks, "kernels": list(self.kernels),
                "mids": list(self.mids), "acts": list(self.acts), "upsamplers": list(self.upsamplers),
                "up_widths": list(self.up_widths),
                "input_hw": list(self.input_hw)}

    def arch_from_indices(self, indices) -> EdsrArch:
        """Chosen candidate index per search block (0 = skip for residual blocks) -> EdsrArch."""
        indices = [int(i) for i in indices]
        if len(indices) != self.max_blocks + 1:
            raise ValueError(f"need {self.max_blocks + 1} choices (one per search block), got {len(indices)}")
        n_res = len(self.res_choices) + 1
        for b, i in enumerate(indices[:-1]):
            if not 0 <= i < n_res:
                raise ValueError(f"block res{b}: candidate {i} out of range 0..{n_res - 1}")
        if not 0 <= indices[-1] < len(self.up_choices):
            raise ValueError(f"upsampler: candidate {indices[-1]} out of range 0..{len(self.up_choices) - 1}")
        blocks = tuple(None if i == 0 else self.res_choices[i - 1] for i in indices[:-1])
        mode, up_width = self.up_choices[indices[-1]]
        return EdsrArch(self.width, blocks, mode, self.scale, up_width=up_width)

    def build_net(self, arch) -> EdsrNet:
        """A freshly initialised plain network for an EdsrArch (or its dict)."""
        return EdsrNet(arch if isinstance(arch, EdsrArch) else EdsrArch.from_dict(arch))

    def derive_model(self, supernet: EdsrSuperNet, indices) -> EdsrNet:
        """The plain network of the chosen candidates, inheriting the supernet's (sliced) weights."""
        arch = self.arch_from_indices(indices)
        net = EdsrNet(arch)
        net.head.load_state_dict(supernet.head.state_dict())
        body = iter(net.body)
        for block, i in zip(supernet.blocks, indices[:-1]):
            if int(i) != 0:
                next(body).load_state_dict(block.mixed.candidates[int(i)].to_plain().state_dict())
        net.upsampler.load_state_dict(supernet.upsampler.mixed.candidates[int(indices[-1])].state_dict())
        return net


def _edsr_builder(arch: dict) -> EdsrNet:
    return EdsrNet(EdsrArch.from_dict(arch))


register_builder("edsr", _edsr_builder)


@register_space("edsr")
def edsr_space(**kw) -> EdsrSpace:
    return EdsrSpace(**kw)
