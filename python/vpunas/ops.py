"""Operator specifications: the shapes the search spaces are built from, and how each becomes cost items.

Every op is a frozen (hashable) dataclass with
  * `key`        canonical signature string, e.g. "mbconv_k5_e6_s2_i24_o40_112x112_act-relu6";
                 `op_from_key(key)` parses it back. The LUT data type is not part of the key (it is a
                 table-level setting), so one key means the same op on every table.
  * `out_shape`  (channels, height, width) of the output;
  * `macs`, `params`  multiply-accumulates of the conv / linear parts and the parameter count
                 (biases included, batch norm assumed folded into them);
  * `dpu_layers(device, dtype)`  the whole DPU layers (`DpuLayer`) the op runs as. Channel counts are
                 padded to multiples of 16 where the DPU needs it; ReLU / ReLU6 (clamp) and LeakyReLU
                 with one scalar slope fuse into the DPU layer's post-processing and cost nothing extra;
  * `shave_ops(device)`  the DSP (SHAVE) kernels it needs (`ShaveOp`: VPUNN kernel name, in / out shape):
                 interpolation, depth-to-space, per-channel PReLU and stand-alone activations.

Shapes are (C, H, W) everywhere in this module; `DpuLayer` stores W, H, C as VPUNN names them.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

ACTIVATIONS = ("none", "relu", "relu6", "leaky_relu", "prelu")
# Stand-alone activation kinds (Activation op); all run on the SHAVE DSP.
STANDALONE_ACTIVATIONS = ("relu", "relu6", "leaky_relu", "prelu", "gelu", "sigmoid", "hswish", "swish", "tanh")
DTYPES = ("UINT8", "INT8", "FLOAT16", "BFLOAT16")
DEVICES = ("VPU_2_0", "VPU_2_7", "VPU_4_0")

# DPU post-processing activation for each op-level activation. ReLU6 is a clamp in the PPE, which
# VPUNN's descriptor encodes like RELU; PReLU's per-channel slope does not fit the PPE -> SHAVE.
_DPU_ACT = {"none": "NONE", "relu": "RELU", "relu6": "RELU", "leaky_relu": "LRELU", "prelu": "NONE"}
# VPUNN SHAVE kernel names (the `shave2` spelling) for activations that leave the DPU.
_SHAVE_ACT = {
    "relu": "relu", "relu6": "clamp", "leaky_relu": "leakyrelu", "prelu": "prelu", "gelu": "gelu",
    "sigmoid": "sigmoid", "hswish": "hswish", "swish": "swish", "tanh": "tanh",
}
# VPUNN models no interpolation kernel in its parameter files; the cost source picks a proxy per mode.
_SHAVE_UPSAMPLE = "interpolate_{mode}"
_SHAVE_DEPTH_TO_SPACE = "DepthToSpace"


def align16(n: int) -> int:
    """Round a channel count up to the DPU's 16-channel granularity."""
    return (n + 15) // 16 * 16


def conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


@dataclass(frozen=True)
class DpuLayer:
    """One whole DPU layer (before tiling), in VPUNN's vocabulary (op names, W/H/C order, padding T/B/L/R)."""

    op: str  # CONVOLUTION | DW_CONVOLUTION | ELTWISE | MAXPOOL | AVEPOOL
    in_w: int
    in_h: int
    in_c: int
    out_w: int
    out_h: int
    out_c: int
    k_w: int = 1
    k_h: int = 1
    s_w: int = 1
    s_h: int = 1
    pad_t: int = 0
    pad_b: int = 0
    pad_l: int = 0
    pad_r: int = 0
    activation: str = "NONE"  # NONE | RELU | LRELU
    dtype: str = "UINT8"  # input and output data type
    device: str = "VPU_2_7"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class ShaveOp(NamedTuple):
    """One DSP kernel: VPUNN name (shave2 spelling) and (C, H, W) input / output shapes."""

    name: str
    in_shape: tuple
    out_shape: tuple


def _check_positive(op_name: str, **values):
    for name, v in values.items():
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise ValueError(f"{op_name}: {name} must be a positive integer, got {v!r}")


def check_choice(op_name: str, name: str, value, choices):
    if value not in choices:
        raise ValueError(f"{op_name}: {name} must be one of {', '.join(map(str, choices))}; got {value!r}")


def _check_padding(op_name: str, kernel: int, padding, in_h: int, in_w: int):
    if not isinstance(padding, int) or not 0 <= padding <= kernel // 2:
        raise ValueError(f"{op_name}: padding must be between 0 and kernel//2 = {kernel // 2}, got {padding!r}")
    if in_h + 2 * padding < kernel or in_w + 2 * padding < kernel:
        raise ValueError(f"{op_name}: kernel {kernel} is larger than the padded {in_h}x{in_w} input")


def _prelu_shave_ops(act: str, out_shape: tuple) -> list:
    # Per-channel PReLU does not fit the DPU's post-processing: one SHAVE kernel on the output.
    return [ShaveOp(_SHAVE_ACT["prelu"], out_shape, out_shape)] if act == "prelu" else []


def _check_device_dtype(device: str, dtype: str):
    check_choice("dpu_layers", "device", device, DEVICES)
    check_choice("dpu_layers", "dtype", dtype, DTYPES)


def _padded(k: int, p: int) -> tuple:
    return (p, p, p, p)


def _conv_layer(op, in_c, in_h, in_w, out_c, k, s, p, act, dtype, device) -> DpuLayer:
    out_h, out_w = conv_out(in_h, k, s, p), conv_out(in_w, k, s, p)
    return DpuLayer(op=op, in_w=in_w, in_h=in_h, in_c=in_c, out_w=out_w, out_h=out_h, out_c=out_c,
                    k_w=k, k_h=k, s_w=s, s_h=s, pad_t=p, pad_b=p, pad_l=p, pad_r=p,
                    activation=_DPU_ACT[act], dtype=dtype, device=device)


def _conv_in_channels(c: int, device: str) -> int:
    # From VPU 2.7 on, convolutions with fewer than 16 input channels run as channel-major (CM)
    # convolutions on the real channel count; VPU 2.0 (and every conv from 16 channels on) needs
    # multiples of 16, so the compiler pads the input channels.
    return c if c < 16 and device != "VPU_2_0" else align16(c)


class OpSpec:
    """Mixin: key formatting / parsing, dict round trip. Subclasses set KIND and KEY_TEMPLATE."""

    KIND: ClassVar[str]
    KEY_TEMPLATE: ClassVar[str]

    @property
    def key(self) -> str:
        fields = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            fields[f.name] = int(v) if isinstance(v, bool) else v
        return self.KEY_TEMPLATE.format(**fields)

    def to_dict(self) -> dict:
        return {"type": type(self).__name__, **dataclasses.asdict(self)}

    def shave_ops(self, device: str) -> list:
        return []

    def dpu_layers(self, device: str, dtype: str = "UINT8") -> list:
        return []

    @property
    def params(self) -> int:
        return 0

    @property
    def macs(self) -> int:
        return 0

    def __str__(self) -> str:
        return self.key


class CompositeOp(OpSpec):
    """Mixin for ops made of plain ops: `parts()` lists them in execution order, and the costs
    (DPU layers, SHAVE kernels, MACs, parameters) are the parts' costs summed."""

    def parts(self) -> list:
        raise NotImplementedError

    def dpu_layers(self, device: str, dtype: str = "UINT8") -> list:
        return [layer for op in self.parts() for layer in op.dpu_layers(device, dtype)]

    def shave_ops(self, device: str) -> list:
        return [s for op in self.parts() for s in op.shave_ops(device)]

    @property
    def macs(self) -> int:
        return sum(op.macs for op in self.parts())

    @property
    def params(self) -> int:
        return sum(op.params for op in self.parts())


@dataclass(frozen=True)
class Conv2d(OpSpec):
    """k x k convolution, groups=1, 'same'-style padding k//2 unless given."""

    in_ch: int
    out_ch: int
    kernel: int
    stride: int
    in_h: int
    in_w: int
    act: str = "none"
    bias: bool = True
    padding: int = -1  # -1: kernel // 2

    KIND: ClassVar[str] = "conv"
    KEY_TEMPLATE: ClassVar[str] = "conv_k{kernel}_s{stride}_p{padding}_i{in_ch}_o{out_ch}_{in_h}x{in_w}_act-{act}_b{bias}"

    def __post_init__(self):
        if self.padding == -1:
            object.__setattr__(self, "padding", self.kernel // 2)
        _check_positive("Conv2d", in_ch=self.in_ch, out_ch=self.out_ch, kernel=self.kernel, stride=self.stride,
                        in_h=self.in_h, in_w=self.in_w)
        check_choice("Conv2d", "act", self.act, ACTIVATIONS)
        _check_padding("Conv2d", self.kernel, self.padding, self.in_h, self.in_w)

    @property
    def out_shape(self) -> tuple:
        return (self.out_ch, conv_out(self.in_h, self.kernel, self.stride, self.padding),
                conv_out(self.in_w, self.kernel, self.stride, self.padding))

    def dpu_layers(self, device: str, dtype: str = "UINT8") -> list:
        _check_device_dtype(device, dtype)
        return [_conv_layer("CONVOLUTION", _conv_in_channels(self.in_ch, device), self.in_h, self.in_w, align16(self.out_ch),
                            self.kernel, self.stride, self.padding, self.act, dtype, device)]

    def shave_ops(self, device: str) -> list:
        return _prelu_shave_ops(self.act, self.out_shape)

    @property
    def macs(self) -> int:
        c, h, w = self.out_shape
        return c * h * w * self.in_ch * self.kernel * self.kernel

    @property
    def params(self) -> int:
        return (self.in_ch * self.kernel * self.kernel * self.out_ch + (self.out_ch if self.bias else 0)
                + (self.out_ch if self.act == "prelu" else 0))


@dataclass(frozen=True)
class DepthwiseConv2d(OpSpec):
    ch: int
    kernel: int
    stride: int
    in_h: int
    in_w: int
    act: str = "none"

    KIND: ClassVar[str] = "dwconv"
    KEY_TEMPLATE: ClassVar[str] = "dwconv_k{kernel}_s{stride}_c{ch}_{in_h}x{in_w}_act-{act}"

    def __post_init__(self):
        _check_positive("DepthwiseConv2d", ch=self.ch, kernel=self.kernel, stride=self.stride, in_h=self.in_h,
                        in_w=self.in_w)
        check_choice("DepthwiseConv2d", "act", self.act, ACTIVATIONS)

    @property
    def out_shape(self) -> tuple:
        p = self.kernel // 2
        return (self.ch, conv_out(self.in_h, self.kernel, self.stride, p), conv_out(self.in_w, self.kernel, self.stride, p))

    def dpu_layers(self, device: str, dtype: str = "UINT8") -> list:
        _check_device_dtype(device, dtype)
        c = align16(self.ch)
        return [_conv_layer("DW_CONVOLUTION", c, self.in_h, self.in_w, c, self.kernel, self.stride, self.kernel // 2,
                            self.act, dtype, device)]

    def shave_ops(self, device: str) -> list:
        return _prelu_shave_ops(self.act, self.out_shape)

    @property
    def macs(self) -> int:
        c, h, w = self.out_shape
        return c * h * w * self.kernel * self.kernel

    @property
    def params(self) -> int:
        return self.ch * self.kernel * self.kernel + self.ch + (self.ch if self.act == "prelu" else 0)


@dataclass(frozen=True)
class MBConv(CompositeOp):
    """Inverted residual: expand 1x1 (skipped for expand 1) + depthwise k x k + project 1x1 (linear)
    + residual add when stride is 1 and in_ch == out_ch."""

    in_ch: int
    out_ch: int
    kernel: int
    expand: int
    stride: int
    in_h: int
    in_w: int
    act: str = "relu6"

    KIND: ClassVar[str] = "mbconv"
    KEY_TEMPLATE: ClassVar[str] = "mbconv_k{kernel}_e{expand}_s{stride}_i{in_ch}_o{out_ch}_{in_h}x{in_w}_act-{act}"

    def __post_init__(self):
        _check_positive("MBConv", in_ch=self.in_ch, out_ch=self.out_ch, kernel=self.kernel, expand=self.expand,
                        stride=self.stride, in_h=self.in_h, in_w=self.in_w)
        check_choice("MBConv", "act", self.act, ACTIVATIONS)

    @property
    def hidden_ch(self) -> int:
        return self.in_ch * self.expand

    @property
    def has_residual(self) -> bool:
        return self.stride == 1 and self.in_ch == self.out_ch

    def parts(self) -> list:
        """The plain ops this block is made of, in execution order."""
        ops = []
        if self.expand != 1:
            ops.append(Conv2d(self.in_ch, self.hidden_ch, 1, 1, self.in_h, self.in_w, act=self.act))
        dw = DepthwiseConv2d(self.hidden_ch, self.kernel, self.stride, self.in_h, self.in_w, act=self.act)
        ops.append(dw)
        _, h, w = dw.out_shape
        ops.append(Conv2d(self.hidden_ch, self.out_ch, 1, 1, h, w, act="none"))
        if self.has_residual:
            ops.append(Add(self.out_ch, h, w))
        return ops

    @property
    def out_shape(self) -> tuple:
        return self.parts()[-1].out_shape


@dataclass(frozen=True)
class Add(OpSpec):
    """Element-wise add of two (ch, h, w) tensors, on the DPU."""

    ch: int
    h: int
    w: int

    KIND: ClassVar[str] = "add"
    KEY_TEMPLATE: ClassVar[str] = "add_c{ch}_{h}x{w}"

    def __post_init__(self):
        _check_positive("Add", ch=self.ch, h=self.h, w=self.w)

    @property
    def out_shape(self) -> tuple:
        return (self.ch, self.h, self.w)

    def dpu_layers(self, device: str, dtype: str = "UINT8") -> list:
        _check_device_dtype(device, dtype)
        c = align16(self.ch)
        return [DpuLayer(op="ELTWISE", in_w=self.w, in_h=self.h, in_c=c, out_w=self.w, out_h=self.h, out_c=c,
                         dtype=dtype, device=device)]


@dataclass(frozen=True)
class Pool(OpSpec):
    kind: str  # "max" | "avg"
    ch: int
    kernel: int
    stride: int
    in_h: int
    in_w: int
    padding: int = 0

    KIND: ClassVar[str] = "pool"
    KEY_TEMPLATE: ClassVar[str] = "pool-{kind}_k{kernel}_s{stride}_p{padding}_c{ch}_{in_h}x{in_w}"

    def __post_init__(self):
        check_choice("Pool", "kind", self.kind, ("max", "avg"))
        _check_positive("Pool", ch=self.ch, kernel=self.kernel, stride=self.stride, in_h=self.in_h, in_w=self.in_w)
        _check_padding("Pool", self.kernel, self.padding, self.in_h, self.in_w)

    @property
    def out_shape(self) -> tuple:
        return (self.ch, conv_out(self.in_h, self.kernel, self.stride, self.padding),
                conv_out(self.in_w, self.kernel, self.stride, self.padding))

    def dpu_layers(self, device: str, dtype: str = "UINT8") -> list:
        _check_device_dtype(device, dtype)
        c = align16(self.ch)
        return [_conv_layer("MAXPOOL" if self.kind == "max" else "AVEPOOL", c, self.in_h, self.in_w, c, self.kernel,
                            self.stride, self.padding, "none", dtype, device)]


@dataclass(frozen=True)
class GlobalAvgPool(OpSpec):
    """Average over the whole h x w map -> (ch, 1, 1); an AVEPOOL with kernel = map size on the DPU."""

    ch: int
    h: int
    w: int

    KIND: ClassVar[str] = "gap"
    KEY_TEMPLATE: ClassVar[str] = "gap_c{ch}_{h}x{w}"

    def __post_init__(self):
        _check_positive("GlobalAvgPool", ch=self.ch, h=self.h, w=self.w)

    @property
    def out_shape(self) -> tuple:
        return (self.ch, 1, 1)

    def dpu_layers(self, device: str, dtype: str = "UINT8") -> list:
        _check_device_dtype(device, dtype)
        c = align16(self.ch)
        return [DpuLayer(op="AVEPOOL", in_w=self.w, in_h=self.h, in_c=c, out_w=1, out_h=1, out_c=c, k_w=self.w,
                         k_h=self.h, s_w=1, s_h=1, dtype=dtype, device=device)]


@dataclass(frozen=True)
class Linear(OpSpec):
    """Fully connected layer, costed as a 1x1 convolution on a 1x1 map."""

    in_f: int
    out_f: int

    KIND: ClassVar[str] = "linear"
    KEY_TEMPLATE: ClassVar[str] = "linear_i{in_f}_o{out_f}"

    def __post_init__(self):
        _check_positive("Linear", in_f=self.in_f, out_f=self.out_f)

    @property
    def out_shape(self) -> tuple:
        return (self.out_f, 1, 1)

    def dpu_layers(self, device: str, dtype: str = "UINT8") -> list:
        return Conv2d(self.in_f, self.out_f, 1, 1, 1, 1).dpu_layers(device, dtype)

    @property
    def macs(self) -> int:
        return self.in_f * self.out_f

    @property
    def params(self) -> int:
        return self.in_f * self.out_f + self.out_f


@dataclass(frozen=True)
class Activation(OpSpec):
    """A stand-alone activation (not fused into a preceding DPU layer): a SHAVE kernel."""

    kind: str
    ch: int
    h: int
    w: int

    KIND: ClassVar[str] = "act"
    KEY_TEMPLATE: ClassVar[str] = "act-{kind}_c{ch}_{h}x{w}"

    def __post_init__(self):
        check_choice("Activation", "kind", self.kind, STANDALONE_ACTIVATIONS)
        _check_positive("Activation", ch=self.ch, h=self.h, w=self.w)

    @property
    def out_shape(self) -> tuple:
        return (self.ch, self.h, self.w)

    def shave_ops(self, device: str) -> list:
        return [ShaveOp(_SHAVE_ACT[self.kind], self.out_shape, self.out_shape)]

    @property
    def params(self) -> int:
        return self.ch if self.kind == "prelu" else 0


@dataclass(frozen=True)
class Upsample(OpSpec):
    """Nearest / bilinear up-sampling by an integer scale: a SHAVE interpolation kernel."""

    mode: str
    scale: int
    ch: int
    in_h: int
    in_w: int
    align_corners: bool = False

    KIND: ClassVar[str] = "upsample"
    KEY_TEMPLATE: ClassVar[str] = "upsample-{mode}_x{scale}_c{ch}_{in_h}x{in_w}_ac{align_corners}"

    def __post_init__(self):
        check_choice("Upsample", "mode", self.mode, ("nearest", "bilinear"))
        _check_positive("Upsample", scale=self.scale, ch=self.ch, in_h=self.in_h, in_w=self.in_w)
        if self.mode == "nearest" and self.align_corners:
            raise ValueError("Upsample: align_corners only applies to bilinear mode")

    @property
    def out_shape(self) -> tuple:
        return (self.ch, self.in_h * self.scale, self.in_w * self.scale)

    def shave_ops(self, device: str) -> list:
        return [ShaveOp(_SHAVE_UPSAMPLE.format(mode=self.mode), (self.ch, self.in_h, self.in_w), self.out_shape)]


@dataclass(frozen=True)
class DepthToSpace(OpSpec):
    """Pixel shuffle: (ch_in, h, w) -> (ch_in / block^2, h * block, w * block), a SHAVE data-movement kernel."""

    ch_in: int
    block: int
    in_h: int
    in_w: int

    KIND: ClassVar[str] = "d2s"
    KEY_TEMPLATE: ClassVar[str] = "d2s_b{block}_c{ch_in}_{in_h}x{in_w}"

    def __post_init__(self):
        _check_positive("DepthToSpace", ch_in=self.ch_in, block=self.block, in_h=self.in_h, in_w=self.in_w)
        if self.ch_in % (self.block * self.block):
            raise ValueError(f"DepthToSpace: ch_in {self.ch_in} is not divisible by block^2 = {self.block ** 2}")

    @property
    def out_shape(self) -> tuple:
        return (self.ch_in // (self.block * self.block), self.in_h * self.block, self.in_w * self.block)

    def shave_ops(self, device: str) -> list:
        return [ShaveOp(_SHAVE_DEPTH_TO_SPACE, (self.ch_in, self.in_h, self.in_w), self.out_shape)]


@dataclass(frozen=True)
class Skip(OpSpec):
    """Identity: the zero-cost candidate that lets a search drop a block (flexible depth)."""

    ch: int
    h: int
    w: int

    KIND: ClassVar[str] = "skip"
    KEY_TEMPLATE: ClassVar[str] = "skip_c{ch}_{h}x{w}"

    def __post_init__(self):
        _check_positive("Skip", ch=self.ch, h=self.h, w=self.w)

    @property
    def out_shape(self) -> tuple:
        return (self.ch, self.h, self.w)


OP_TYPES = {cls.__name__: cls for cls in (Conv2d, DepthwiseConv2d, MBConv, Add, Pool, GlobalAvgPool, Linear,
                                          Activation, Upsample, DepthToSpace, Skip)}


def _template_regex(cls) -> re.Pattern:
    """Turn a KEY_TEMPLATE into an anchored regex with one named group per field."""
    types = {f.name: f.type for f in dataclasses.fields(cls)}
    out, pos = [], 0
    for m in re.finditer(r"\{(\w+)\}", cls.KEY_TEMPLATE):
        out.append(re.escape(cls.KEY_TEMPLATE[pos:m.start()]))
        name = m.group(1)
        kind = types[name]
        out.append(f"(?P<{name}>[a-z0-9_]+?)" if kind in ("str", str) else f"(?P<{name}>-?\\d+)")
        pos = m.end()
    out.append(re.escape(cls.KEY_TEMPLATE[pos:]))
    return re.compile("".join(out) + r"\Z")


_KEY_PARSERS = [(cls, _template_regex(cls)) for cls in OP_TYPES.values()]


def register_op_type(cls):
    """Make an OpSpec subclass defined elsewhere (e.g. a search space's composite op) known to
    `op_from_dict` and, when it has a KEY_TEMPLATE over its fields, to `op_from_key`. Usable as a decorator."""
    if not (isinstance(cls, type) and issubclass(cls, OpSpec) and dataclasses.is_dataclass(cls)):
        raise ValueError(f"register_op_type: {cls!r} is not an OpSpec dataclass")
    OP_TYPES[cls.__name__] = cls
    template = getattr(cls, "KEY_TEMPLATE", None)
    if template and all(name in {f.name for f in dataclasses.fields(cls)} for name in re.findall(r"\{(\w+)\}", template)):
        _KEY_PARSERS.append((cls, _template_regex(cls)))
    return cls


def op_from_key(key: str) -> OpSpec:
    """Parse a canonical key (as produced by `op.key`) back into the op."""
    for cls, rx in _KEY_PARSERS:
        m = rx.match(key)
        if not m:
            continue
        kwargs = {}
        for f in dataclasses.fields(cls):
            raw = m.group(f.name)
            kwargs[f.name] = raw if f.type in ("str", str) else (bool(int(raw)) if f.type in ("bool", bool) else int(raw))
        op = cls(**kwargs)
        if op.key == key:
            return op
    raise ValueError(f"not a valid op key: {key!r} (expected e.g. 'mbconv_k5_e6_s2_i24_o40_112x112_act-relu6')")


def op_from_dict(d: dict) -> OpSpec:
    """Inverse of `op.to_dict()`."""
    if not isinstance(d, dict) or d.get("type") not in OP_TYPES:
        raise ValueError(f"not an op description: {d!r} (needs 'type' in {sorted(OP_TYPES)})")
    cls = OP_TYPES[d["type"]]
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {k: v for k, v in d.items() if k != "type"}
    unknown = set(kwargs) - names
    if unknown:
        raise ValueError(f"{d['type']}: unknown field(s) {sorted(unknown)}")
    return cls(**kwargs)


# Alias matching the to_dict naming.
from_dict = op_from_dict
