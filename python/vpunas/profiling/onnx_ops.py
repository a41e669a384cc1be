"""Operator specs (vpunas.ops) -> ONNX nodes, built directly with onnx.helper.

One builder serves three uses: a single op, the same op stacked N times, and a whole subnet (a list of
op specs applied in order). Weights are deterministic random numbers (seeded), scaled so that a chain
of ops neither blows up nor decays into denormals, which would distort timings.

Tensors are NCHW with batch 1. Ops are dispatched on their class name, so the builder needs only the
op's public fields (the frozen dataclasses of vpunas.ops).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8  # readable by every onnxruntime / OpenVINO this package supports

Shape = tuple  # full tensor shape, e.g. (1, c, h, w)

_RELU_LIKE = {"relu", "relu6", "leaky_relu", "prelu"}


def op_name(op) -> str:
    return type(op).__name__


def op_input_shape(op) -> Shape:
    """Input tensor shape (1, c, h, w) an op spec expects. Linear takes (1, in_f, 1, 1) or (1, in_f)."""
    kind = op_name(op)
    if kind == "Conv2d":
        return (1, op.in_ch, op.in_h, op.in_w)
    if kind in ("DepthwiseConv2d",):
        return (1, op.ch, op.in_h, op.in_w)
    if kind == "MBConv":
        return (1, op.in_ch, op.in_h, op.in_w)
    if hasattr(op, "parts"):  # composite ops of other search spaces: shape of their first part
        return op_input_shape(op.parts()[0])
    if kind in ("Add", "GlobalAvgPool", "Activation", "Skip"):
        return (1, op.ch, op.h, op.w)
    if kind == "Pool":
        return (1, op.ch, op.in_h, op.in_w)
    if kind == "Linear":
        return (1, op.in_f, 1, 1)
    if kind == "Upsample":
        return (1, op.ch, op.in_h, op.in_w)
    if kind == "DepthToSpace":
        return (1, op.ch_in, op.in_h, op.in_w)
    raise ValueError(f"no ONNX builder for op type {kind!r} ({op!r}); supported: {', '.join(SUPPORTED_OPS)}")


SUPPORTED_OPS = ("Conv2d", "DepthwiseConv2d", "MBConv", "Add", "Pool", "GlobalAvgPool", "Linear",
                 "Activation", "Upsample", "DepthToSpace", "Skip")


def _conv_out(size: int, kernel: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - kernel) // stride + 1


class GraphBuilder:
    """Accumulates nodes, initializers and side inputs for one ONNX graph."""

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self.input_shapes: dict[str, Shape] = {}
        self._count = 0

    # -- names, constants, inputs ------------------------------------------------------------
    def fresh(self, base: str) -> str:
        self._count += 1
        return f"{base}_{self._count}"

    def const(self, array: np.ndarray, base: str) -> str:
        name = self.fresh(base)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def add_input(self, name: str, shape: Shape) -> str:
        if name in self.input_shapes:
            if self.input_shapes[name] != tuple(shape):
                raise ValueError(f"graph input {name!r} declared with shapes {self.input_shapes[name]} and {shape}")
            return name
        self.inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape)))
        self.input_shapes[name] = tuple(shape)
        return name

    def side_input(self, shape: Shape) -> str:
        """A second activation input (the other operand of an elementwise Add), one per shape."""
        return self.add_input("side_" + "x".join(str(d) for d in shape[1:]), shape)

    def node(self, op_type: str, inputs: Sequence[str], **attrs) -> str:
        out = self.fresh(op_type.lower())
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=out, **attrs))
        return out

    def weights(self, shape: tuple, fan_in: int, gain: float = 1.0) -> np.ndarray:
        std = math.sqrt(gain / max(fan_in, 1))
        return (self.rng.standard_normal(shape) * std).astype(np.float32)

    # -- building blocks -----------------------------------------------------------------------
    def activation(self, x: str, kind: str, channels: int) -> str:
        kind = (kind or "none").lower()
        if kind in ("none", "identity", "linear"):
            return x
        if kind == "relu":
            return self.node("Relu", [x])
        if kind == "relu6":
            lo = self.const(np.array(0.0, np.float32), "clip_lo")
            hi = self.const(np.array(6.0, np.float32), "clip_hi")
            return self.node("Clip", [x, lo, hi])
        if kind in ("leaky_relu", "lrelu", "leakyrelu"):
            return self.node("LeakyRelu", [x], alpha=0.1)
        if kind == "prelu":
            slope = self.const(np.full((channels, 1, 1), 0.25, np.float32), "prelu_slope")
            return self.node("PRelu", [x, slope])
        if kind == "sigmoid":
            return self.node("Sigmoid", [x])
        if kind == "tanh":
            return self.node("Tanh", [x])
        if kind in ("hswish", "hardswish", "h_swish"):
            return self.node("HardSwish", [x])
        if kind in ("hsigmoid", "hardsigmoid", "h_sigmoid"):
            return self.node("HardSigmoid", [x], alpha=1.0 / 6.0, beta=0.5)
        if kind in ("swish", "silu"):
            return self.node("Mul", [x, self.node("Sigmoid", [x])])
        if kind == "gelu":  # erf form; runtimes fuse it into their Gelu kernel
            inv_sqrt2 = self.const(np.array(1.0 / math.sqrt(2.0), np.float32), "gelu_c")
            one = self.const(np.array(1.0, np.float32), "gelu_one")
            half = self.const(np.array(0.5, np.float32), "gelu_half")
            erf = self.node("Erf", [self.node("Mul", [x, inv_sqrt2])])
            return self.node("Mul", [self.node("Mul", [x, half]), self.node("Add", [erf, one])])
        raise ValueError(f"unknown activation {kind!r}; supported: none, relu, relu6, leaky_relu, prelu, "
                         "sigmoid, tanh, hswish, hsigmoid, swish, gelu")

    def conv(self, x: str, shape: Shape, out_ch: int, kernel: int, stride: int, groups: int = 1,
             act: str = "none", padding: int = -1, bias: bool = True) -> tuple[str, Shape]:
        _, c, h, w = shape
        if c % groups or out_ch % groups:
            raise ValueError(f"conv groups={groups} must divide in_ch={c} and out_ch={out_ch}")
        pad = kernel // 2 if padding < 0 else padding
        fan_in = (c // groups) * kernel * kernel
        gain = 2.0 if (act or "none").lower() in _RELU_LIKE else 1.0
        wname = self.const(self.weights((out_ch, c // groups, kernel, kernel), fan_in, gain), "w")
        inputs = [x, wname]
        if bias:
            inputs.append(self.const((self.rng.standard_normal(out_ch) * 0.01).astype(np.float32), "b"))
        y = self.node("Conv", inputs, kernel_shape=[kernel, kernel], strides=[stride, stride],
                      pads=[pad, pad, pad, pad], group=groups)
        out_shape = (1, out_ch, _conv_out(h, kernel, stride, pad), _conv_out(w, kernel, stride, pad))
        return self.activation(y, act, out_ch), out_shape

    # -- one op spec -----------------------------------------------------------------------
    def add_op(self, op, x: str, shape: Shape) -> tuple[str, Shape]:
        """Append the nodes of `op` reading tensor `x` of `shape`; returns (output name, output shape)."""
        kind = op_name(op)
        expected = op_input_shape(op)
        if kind == "Linear":
            if int(np.prod(shape[1:])) != op.in_f:
                raise ValueError(f"{op!r} expects {op.in_f} input features, got tensor of shape {shape}")
        elif tuple(shape) != expected:
            raise ValueError(f"{op!r} expects input shape {expected}, got {tuple(shape)}: "
                             "the subnet's ops do not chain")
        if kind == "Skip":
            return x, shape
        if kind not in SUPPORTED_OPS and hasattr(op, "parts"):
            return self._composite(op, x, shape)
        if kind == "MBConv":
            return self._composite(op, x, shape)
        if kind == "Conv2d":
            return self.conv(x, shape, op.out_ch, op.kernel, op.stride, 1, op.act,
                             padding=getattr(op, "padding", -1), bias=getattr(op, "bias", True))
        if kind == "DepthwiseConv2d":
            return self.conv(x, shape, op.ch, op.kernel, op.stride, op.ch, op.act)
        if kind == "Add":
            return self.node("Add", [x, self.side_input(shape)]), shape
        if kind == "Pool":
            return self._pool(op, x, shape)
        if kind == "GlobalAvgPool":
            return self.node("GlobalAveragePool", [x]), (1, op.ch, 1, 1)
        if kind == "Linear":
            flat = self.node("Flatten", [x], axis=1) if len(shape) != 2 else x
            wname = self.const(self.weights((op.out_f, op.in_f), op.in_f), "fc_w")
            bname = self.const((self.rng.standard_normal(op.out_f) * 0.01).astype(np.float32), "fc_b")
            return self.node("Gemm", [flat, wname, bname], transB=1), (1, op.out_f)
        if kind == "Activation":
            y = self.activation(x, op.kind, op.ch)
            if y == x:  # identity activation still needs a node so that the graph has an op to time
                y = self.node("Identity", [x])
            return y, shape
        if kind == "Upsample":
            return self._upsample(op, x, shape)
        if kind == "DepthToSpace":
            b = op.block
            if op.ch_in % (b * b):
                raise ValueError(f"{op!r}: ch_in must be divisible by block**2")
            y = self.node("DepthToSpace", [x], blocksize=b, mode="CRD")  # PyTorch PixelShuffle order
            return y, (1, op.ch_in // (b * b), shape[2] * b, shape[3] * b)
        raise ValueError(f"no ONNX builder for op type {kind!r}")

    def _composite(self, op, x: str, shape: Shape) -> tuple[str, Shape]:
        """An op made of plain parts (MBConv, EDSR blocks): chain them; an Add part is the residual
        connection back to the composite op's input."""
        y, s = x, shape
        for part in op.parts():
            if op_name(part) == "Add":
                if tuple(s) != tuple(shape):
                    raise ValueError(f"{op!r}: residual Add needs equal input and output shapes")
                y = self.node("Add", [y, x])
            else:
                y, s = self.add_op(part, y, s)
        return y, s

    def _pool(self, op, x: str, shape: Shape) -> tuple[str, Shape]:
        kind = op.kind.lower()
        pad = int(getattr(op, "padding", 0))
        attrs = dict(kernel_shape=[op.kernel, op.kernel], strides=[op.stride, op.stride], pads=[pad] * 4)
        if kind in ("max", "maxpool"):
            y = self.node("MaxPool", [x], **attrs)
        elif kind in ("avg", "ave", "average", "avgpool"):
            y = self.node("AveragePool", [x], count_include_pad=1, **attrs)  # PyTorch's default
        else:
            raise ValueError(f"unknown pool kind {op.kind!r}; use 'max' or 'avg'")
        return y, (1, shape[1], _conv_out(shape[2], op.kernel, op.stride, pad),
                   _conv_out(shape[3], op.kernel, op.stride, pad))

    def _upsample(self, op, x: str, shape: Shape) -> tuple[str, Shape]:
        mode = op.mode.lower()
        scale = float(op.scale)
        scales = self.const(np.array([1.0, 1.0, scale, scale], np.float32), "scales")
        if mode == "nearest":  # PyTorch nn.Upsample(mode="nearest")
            attrs = dict(mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor")
        elif mode in ("bilinear", "linear", "bicubic", "cubic"):
            ctm = "align_corners" if getattr(op, "align_corners", False) else "pytorch_half_pixel"
            attrs = dict(mode="cubic" if "cubic" in mode else "linear", coordinate_transformation_mode=ctm)
            if "cubic" in mode:
                attrs["cubic_coeff_a"] = -0.75
        else:
            raise ValueError(f"unknown upsample mode {op.mode!r}; use nearest, bilinear or bicubic")
        y = self.node("Resize", [x, "", scales], **attrs)
        return y, (1, shape[1], int(shape[2] * scale), int(shape[3] * scale))

    # -- finish ------------------------------------------------------------------------------
    def model(self, outputs: Sequence[tuple[str, Shape]], name: str = "vpunas") -> onnx.ModelProto:
        outs = []
        for i, (tensor, shape) in enumerate(outputs):
            out_name = f"output_{i}"
            self.nodes.append(helper.make_node("Identity", [tensor], [out_name], name=out_name))
            outs.append(helper.make_tensor_value_info(out_name, TensorProto.FLOAT, list(shape)))
        graph = helper.make_graph(self.nodes, name, self.inputs, outs, initializer=self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="vpunas.profiling")
        model.ir_version = IR_VERSION
        return model


def chain_graph(ops: Sequence, seed: int = 0, name: str = "chain") -> onnx.ModelProto:
    """A graph applying `ops` one after another to a single input named "input".

    Used for stacks (the same op N times, each copy with its own weights), for an op followed by
    filler ops, and for whole subnets. Add ops read an extra input "side_CxHxW"."""
    if not ops:
        raise ValueError("chain_graph needs at least one op")
    b = GraphBuilder(seed)
    shape = op_input_shape(ops[0])
    x = b.add_input("input", shape)
    y = x
    for op in ops:
        y, shape = b.add_op(op, y, shape)
    if y == x:  # all Skip: keep the graph valid
        y = b.node("Identity", [x])
    return b.model([(y, shape)], name)


def identity_graph(input_shapes: dict[str, Shape]) -> onnx.ModelProto:
    """The empty graph with the same inputs as a measured graph: its latency is the per-call overhead."""
    b = GraphBuilder(0)
    outs = []
    for name, shape in input_shapes.items():
        b.add_input(name, shape)
        outs.append((b.node("Identity", [name]), shape))
    return b.model(outs, "overhead")


def graph_input_shapes(model: onnx.ModelProto) -> dict[str, Shape]:
    """Name -> static shape of every graph input (initializers excluded)."""
    inits = {t.name for t in model.graph.initializer}
    shapes = {}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        dims = tuple(d.dim_value for d in vi.type.tensor_type.shape.dim)
        if any(d <= 0 for d in dims):
            raise ValueError(f"graph input {vi.name!r} has a dynamic shape {dims}; profiling needs static shapes")
        shapes[vi.name] = dims
    return shapes


def random_inputs(model: onnx.ModelProto, seed: int = 0) -> dict[str, np.ndarray]:
    """Deterministic random float32 inputs for every graph input."""
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal(shape).astype(np.float32) for name, shape in graph_input_shapes(model).items()}


def output_shape(ops: Sequence) -> Shape:
    """Output tensor shape of a chain of ops (as the ONNX builder computes it)."""
    b = GraphBuilder(0)
    shape = op_input_shape(ops[0])
    x = b.add_input("input", shape)
    for op in ops:
        x, shape = b.add_op(op, x, shape)
    return shape
