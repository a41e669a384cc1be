"""`vpunas lint`: how VPU-friendly is an ONNX model, layer by layer, with predicted latency.

Pipeline: read the ONNX file and infer every tensor shape (`load_graph`), map each node onto the op
specs of `vpunas.ops` or onto raw DPU layers / SHAVE kernels (`map_graph`), fuse what the DPU fuses
(batch norm folds into the conv; ReLU, ReLU6 and scalar-slope LeakyReLU / PReLU run in the conv's
post-processing), cost every item the way the LUT does (`cost_items`), and derive findings with the
predicted saving of a VPU-friendly alternative (`find_issues`). `lint_model` runs it all and returns a
`LintReport` that renders as text, JSON or a PNG bar chart.

Layout: ONNX tensors are NCHW; op specs take (C, H, W); a batch of N costs N single-image passes.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vpunas import ops

SEVERITIES = ("info", "warning", "error")
# Findings whose saving is below this share of the total latency are reported as info only.
_WARN_SHARE = 0.01

# Nodes that only reinterpret metadata or compute shapes: no data moves on the VPU.
_FREE_OPS = {
    "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Shape", "Size", "Constant", "ConstantOfShape",
}
# Nodes that vanish on the VPU: their output is their input (quantisation folds into the DPU's PPE), so
# an activation after them still fuses into the conv before them.
_TRANSPARENT_OPS = {"Identity", "Dropout", "Cast", "QuantizeLinear", "DequantizeLinear"}
# Element-wise activations with a SHAVE kernel; value = candidate kernel names (shave2 first, then legacy).
_SHAVE_UNARY = {
    "Sigmoid": ("sigmoid", "Sigmoid"), "HardSigmoid": ("hsigmoid", "hardsigmoid", "HardSigmoid"),
    "HardSwish": ("hswish", "hardswish", "HardSwish"), "Tanh": ("tanh", "Tanh"), "Elu": ("elu", "ELU"),
    "Selu": ("selu", "Selu"), "Gelu": ("gelu", "Gelu"), "Mish": ("mish", "Mish"),
    "Softplus": ("softplus", "SoftPlus"), "Exp": ("exp", "Exp"), "Log": ("log", "Log"), "Sqrt": ("sqrt", "Sqrt"),
    "Abs": ("abs", "Abs"), "Neg": ("negative", "Negative"), "Floor": ("floor", "Floor"),
    "Ceil": ("ceiling", "Ceiling"), "Round": ("round", "Round"), "Sign": ("sign", "Sign"), "Erf": ("erf", "Erf"),
    "Sin": ("sin", "Sin"), "Cos": ("cos", "Cos"), "Not": ("logicalnot", "LogicalNot"),
    "Softmax": ("softmax", "SoftMax", "Softmax"), "Transpose": ("Transpose", "MemPermute"),
    "SpaceToDepth": ("SpaceToDepth", "SpaceToDepthOp"),
}
# Two-input element-wise ops that the DPU cannot do (VPUNN has no ELTWISE_MUL etc.): SHAVE kernels.
_SHAVE_BINARY = {
    "Mul": ("mul", "Multiply"), "Sub": ("sub", "Subtract"), "Div": ("div", "Divide"), "Max": ("max", "Maximum"),
    "Min": ("min", "Minimum"), "Pow": ("power", "Power"), "Add": ("add", "Add"),
}
# Activations the DPU post-processing (PPE) applies for free after a conv / eltwise.
_FUSABLE = ("relu", "relu6", "leaky_relu")


class LintInputError(ValueError):
    """Bad input for lint (not ONNX, dynamic shapes, bad --input-shape): printed, exit code 2."""


# ----------------------------------------------------------------------------------------------------------
# ONNX graph reading and shape inference
# ----------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Node:
    name: str
    op_type: str
    inputs: tuple
    outputs: tuple
    attrs: dict = field(hash=False, compare=False)


class Graph:
    """An ONNX graph with every tensor shape known: nodes in topological order, constants as numpy arrays."""

    def __init__(self, nodes, shapes, constants, inputs, outputs, path):
        self.nodes = nodes
        self.shapes = shapes          # tensor name -> tuple of ints
        self.constants = constants    # tensor name -> np.ndarray (initializers + Constant nodes)
        self.inputs = inputs          # activation input names
        self.outputs = outputs
        self.path = path
        self.producer = {o: n for n in nodes for o in n.outputs if o}
        self.consumers = {}
        for n in nodes:
            for i in n.inputs:
                if i:
                    self.consumers.setdefault(i, []).append(n)

    def shape(self, name):
        return self.shapes.get(name)

    def const(self, name):
        return self.constants.get(name)


def parse_input_shapes(specs) -> dict:
    """Parse --input-shape values: "1,3,224,224" (the only dynamic input) or "name=1,3,224,224"."""
    out = {}
    for spec in specs or ():
        name, _, dims = spec.rpartition("=")
        try:
            shape = tuple(int(d) for d in dims.replace("x", ",").split(","))
        except ValueError:
            shape = ()
        if not shape or any(d <= 0 for d in shape):
            raise LintInputError(f"--input-shape {spec!r}: expected positive integers like 1,3,224,224 "
                                 f"(optionally name=1,3,224,224)")
        out[name or None] = shape
    return out


def _attrs(node) -> dict:
    from onnx import helper
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def load_graph(path, input_shapes=None) -> Graph:
    """Read an ONNX file, fix the input shapes, infer all shapes. Bad input -> LintInputError / FileNotFoundError."""
    import onnx
    from onnx import numpy_helper, shape_inference

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ONNX file not found: {path}")
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # protobuf raises several types for garbage input
        raise LintInputError(f"{path} is not an ONNX model ({type(exc).__name__}: {exc}); "
                             "export one with torch.onnx.export or check the file") from None
    if model.ir_version <= 0 or len(model.graph.node) == 0:
        raise LintInputError(f"{path} is not an ONNX model (no ir_version or no graph nodes)")

    graph = model.graph
    init_names = {t.name for t in graph.initializer}
    act_inputs = [vi for vi in graph.input if vi.name not in init_names]
    input_shapes = dict(input_shapes or {})
    unnamed = input_shapes.pop(None, None)
    unknown = set(input_shapes) - {vi.name for vi in act_inputs}
    if unknown:
        raise LintInputError(f"--input-shape names unknown input(s) {sorted(unknown)}; "
                             f"the model's inputs are {[vi.name for vi in act_inputs]}")
    for vi in act_inputs:
        dims = vi.type.tensor_type.shape.dim
        given = input_shapes.get(vi.name)
        if given is None and unnamed is not None:
            given = unnamed
        current = [d.dim_value if d.HasField("dim_value") else 0 for d in dims]
        if given is not None:
            if len(given) != len(current):
                raise LintInputError(f"--input-shape for input '{vi.name}' has {len(given)} dims, the model "
                                     f"expects {len(current)} ({_fmt_dims(dims)})")
            for d, v in zip(dims, given):
                d.Clear()
                d.dim_value = v
        elif any(v <= 0 for v in current):
            example = ",".join(str(v) if v > 0 else ("1" if i == 0 else "<" + (d.dim_param or "?") + ">")
                               for i, (v, d) in enumerate(zip(current, dims)))
            raise LintInputError(
                f"input '{vi.name}' has a dynamic shape ({_fmt_dims(dims)}); give a fixed one with "
                f"--input-shape {vi.name}={example} (numbers in place of <...>)")
    # Drop stale intermediate shapes (they may carry the old symbolic dims) and infer afresh.
    del graph.value_info[:]
    try:
        model = shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception as exc:
        raise LintInputError(f"{path}: ONNX shape inference failed: {exc}") from None

    constants = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    nodes = []
    for i, n in enumerate(model.graph.node):
        attrs = _attrs(n)
        if n.op_type == "Constant" and "value" in attrs:
            constants[n.output[0]] = numpy_helper.to_array(attrs["value"])
        elif n.op_type == "Identity" and n.input[0] in constants:
            constants[n.output[0]] = constants[n.input[0]]  # exporters pass shared weights through Identity
        nodes.append(Node(n.name or f"{n.op_type}_{i}", n.op_type, tuple(n.input), tuple(n.output), attrs))
    shapes = {}
    for vi in list(model.graph.input) + list(model.graph.value_info) + list(model.graph.output):
        tt = vi.type.tensor_type
        if tt.HasField("shape") and all(d.HasField("dim_value") and d.dim_value > 0 for d in tt.shape.dim):
            shapes[vi.name] = tuple(d.dim_value for d in tt.shape.dim)
    for name, arr in constants.items():
        shapes[name] = tuple(arr.shape)
    return Graph(nodes, shapes, constants, [vi.name for vi in act_inputs],
                 [vi.name for vi in model.graph.output], str(path))


def _fmt_dims(dims) -> str:
    return "[" + ", ".join(str(d.dim_value) if d.HasField("dim_value") else (d.dim_param or "?") for d in dims) + "]"


# ----------------------------------------------------------------------------------------------------------
# Node -> cost item mapping
# ----------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RawOp:
    """A cost item that no op spec describes exactly (odd padding, non-square kernel, grouped conv, DSP
    kernels outside ops.py): explicit DPU layers and SHAVE kernels, costed like any op spec."""

    label: str
    layers: tuple = ()
    kernels: tuple = ()   # ops.ShaveOp
    out_ch: int = 0

    @property
    def key(self) -> str:
        return "raw_" + self.label

    def dpu_layers(self, device: str, dtype: str = "UINT8") -> list:
        return [dataclasses.replace(layer, device=device, dtype=dtype) for layer in self.layers]

    def shave_ops(self, device: str) -> list:
        return list(self.kernels)


@dataclass
class Item:
    """One row of the lint table: an ONNX node plus the nodes fused into it."""

    node: str
    op: str                      # ONNX op type(s), e.g. "Conv+BatchNormalization+Relu"
    in_shape: tuple
    out_shape: tuple
    spec: object = None          # ops.OpSpec or RawOp; None for free / unknown
    batch: int = 1
    unit: str = "unknown"        # DPU | DSP | DPU+DSP | free | unknown
    fused: list = field(default_factory=list)
    note: str = ""
    dpu_ms: float | None = None
    dsp_ms: float | None = None
    error: str = ""              # the cost model refused it (error code name)
    outputs: tuple = ()
    inputs: tuple = ()           # activation input tensors
    cost_notes: list = field(default_factory=list)  # from the cost source: SHAVE proxies, DDR strips

    @property
    def ms(self):
        if self.unit in ("free",):
            return 0.0
        if self.dpu_ms is None and self.dsp_ms is None:
            return None
        return (self.dpu_ms or 0.0) + (self.dsp_ms or 0.0)


def _chw(shape):
    """(N, C, H, W) or shorter -> (C, H, W) with missing spatial dims = 1; None if not mappable."""
    if shape is None:
        return None
    if len(shape) == 4:
        return tuple(shape[1:])
    if len(shape) == 3:
        return (shape[1], 1, shape[2])  # (N, C, L): a 1-row map
    if len(shape) == 2:
        return (shape[1], 1, 1)
    return None


def _batch(shape) -> int:
    return int(shape[0]) if shape and len(shape) >= 2 else 1


def _conv_layer(op, cin, h, w, cout, oh, ow, kh, kw, sh, sw, pads, act="NONE") -> ops.DpuLayer:
    pt, pl, pb, pr = pads
    return ops.DpuLayer(op=op, in_w=w, in_h=h, in_c=cin, out_w=ow, out_h=oh, out_c=cout, k_w=kw, k_h=kh,
                        s_w=sw, s_h=sh, pad_t=pt, pad_b=pb, pad_l=pl, pad_r=pr, activation=act)


class _Mapper:
    """Turns graph nodes into items; keeps, per tensor, the DPU item an activation can fuse into."""

    def __init__(self, graph: Graph, shave_kernels=None, leaky_relu_on_dsp: bool = False):
        self.g = graph
        self.leaky_relu_on_dsp = leaky_relu_on_dsp
        self.shave_kernels = shave_kernels  # names the SHAVE cost model knows; None = not checked
        self.items: list[Item] = []
        self.item_of_tensor: dict[str, Item] = {}   # output tensor -> item producing it
        self.folded: set = set()                    # tensors computed from constants / shapes only
        self.free_nodes = 0

    # -- helpers -------------------------------------------------------------------------------------
    def _is_activation(self, name) -> bool:
        return (bool(name) and name not in self.g.constants and name not in self.folded
                and self.g.shape(name) is not None)

    def _single_consumer(self, tensor) -> bool:
        return len(self.g.consumers.get(tensor, [])) == 1 and tensor not in self.g.outputs

    def _fusion_target(self, tensor):
        """The DPU item whose output `tensor` is, if an activation on it can fuse into that item."""
        item = self.item_of_tensor.get(tensor)
        if item is None or not self._single_consumer(tensor) or item.unit != "DPU":
            return None
        if isinstance(item.spec, (ops.Conv2d, ops.DepthwiseConv2d)) and item.spec.act == "none":
            return item
        if isinstance(item.spec, RawOp) and item.spec.layers and all(l.activation == "NONE" for l in item.spec.layers):
            return item
        if isinstance(item.spec, ops.Add) and not item.fused:
            return item
        return None

    def _add(self, node: Node, **kw) -> Item:
        x = next((i for i in node.inputs if self._is_activation(i)), None)
        out = node.outputs[0] if node.outputs else None
        item = Item(node=node.name, op=node.op_type, in_shape=self.g.shape(x) if x else (),
                    out_shape=self.g.shape(out) if out else (), outputs=tuple(node.outputs),
                    inputs=tuple(i for i in node.inputs if self._is_activation(i)), **kw)
        item.batch = _batch(item.out_shape or item.in_shape)
        self.items.append(item)
        for o in node.outputs:
            self.item_of_tensor[o] = item
        return item

    def _unknown(self, node: Node, why: str) -> Item:
        return self._add(node, unit="unknown", note=why)

    def _fuse(self, node: Node, target: Item, new_spec, note: str):
        target.spec = new_spec
        target.fused.append(node.name)
        target.op += "+" + node.op_type
        target.out_shape = self.g.shape(node.outputs[0]) or target.out_shape
        target.outputs = target.outputs + tuple(node.outputs)
        if note:
            target.note = (target.note + "; " if target.note else "") + note
        for o in node.outputs:
            self.item_of_tensor[o] = target
        return target

    # -- main loop -----------------------------------------------------------------------------------
    def run(self) -> list[Item]:
        patterns = _find_activation_patterns(self.g)
        inside = {name for _, _, names in patterns.values() for name in names}
        for node in self.g.nodes:
            if node.name in inside:
                continue  # part of a decomposed activation, costed at the pattern's last node
            if node.name in patterns:
                kind, x, names = patterns[node.name]
                whole = Node(node.name, _PATTERN_OP[kind], (x,), node.outputs, {})
                item = self._activation(whole, kind, note=f"{kind} decomposed into {len(names) + 1} ONNX nodes")
                item.fused.extend(names)
                continue
            acts = [i for i in node.inputs if self._is_activation(i)]
            data_inputs = [i for i in node.inputs if i and i not in self.g.constants]
            if not data_inputs or all(self._is_shape_tensor(i) for i in data_inputs):
                # Constant folding / shape arithmetic: nothing runs on the device.
                self.free_nodes += 1
                self.folded.update(o for o in node.outputs if o)
                continue
            if any(self.g.shape(o) is None for o in node.outputs if o):
                self._unknown(node, "output shape unknown after ONNX shape inference")
                continue
            if node.op_type in _TRANSPARENT_OPS and acts:
                self._transparent(node, acts[0])
                continue
            handler = getattr(self, "_map_" + node.op_type, None)
            try:
                if handler is not None:
                    handler(node, acts)
                elif node.op_type in _FREE_OPS:
                    self._free(node)
                elif node.op_type in _SHAVE_UNARY:
                    self._shave(node, acts, _SHAVE_UNARY[node.op_type])
                elif node.op_type in _SHAVE_BINARY:
                    self._shave(node, acts, _SHAVE_BINARY[node.op_type])
                else:
                    self._unknown(node, f"no VPU cost model for {node.op_type}")
            except (ValueError, KeyError, IndexError, TypeError, AttributeError, ZeroDivisionError) as exc:
                # An op spec refused the shapes (or attributes are unusual): list it, never crash.
                self._unknown(node, f"cannot map {node.op_type}: {exc}")
        return self.items

    def _is_shape_tensor(self, name) -> bool:
        """Tensors computed from shapes or constants only (Shape -> Gather -> Concat ...), not activations."""
        producer = self.g.producer.get(name)
        return name in self.folded or (producer is not None and producer.op_type in ("Shape", "Size"))

    def _transparent(self, node: Node, x: str):
        self.free_nodes += 1
        producer = self.item_of_tensor.get(x)
        if producer is not None and node.outputs and node.outputs[0]:
            self.item_of_tensor[node.outputs[0]] = producer
            producer.outputs = producer.outputs + (node.outputs[0],)

    def _free(self, node: Node, note: str = ""):
        item = self._add(node, unit="free", note=note)
        item.dpu_ms = 0.0

    # -- DPU ops ---------------------------------------------------------------------------------------
    def _map_Conv(self, node: Node, acts):
        x, w = node.inputs[0], node.inputs[1]
        xs, ws, ys = self.g.shape(x), self.g.shape(w), self.g.shape(node.outputs[0])
        if xs is None or ws is None or len(xs) != 4 or len(ws) != 4:
            return self._unknown(node, "only 2-D convolutions (NCHW) are costed")
        n, cin, h, wd = xs
        _, cout, oh, ow = ys
        group = int(node.attrs.get("group", 1))
        kh, kw = ws[2], ws[3]
        sh, sw = (list(node.attrs.get("strides", [1, 1])) + [1, 1])[:2]
        dil = list(node.attrs.get("dilations", [1, 1]))
        if any(d != 1 for d in dil):
            return self._unknown(node, f"dilated convolution (dilations {dil}) has no VPUNN cost")
        pads = self._pads(node, h, wd, kh, kw, sh, sw, oh, ow)
        depthwise = group > 1 and group == cin and cout == cin
        sym = pads[0] == pads[1] == pads[2] == pads[3]
        if depthwise:
            if kh == kw and sh == sw and sym and pads[0] == kh // 2:
                spec = ops.DepthwiseConv2d(cin, kh, sh, h, wd)
            else:
                c = ops.align16(cin)
                spec = RawOp(f"dw_{node.name}", (_conv_layer("DW_CONVOLUTION", c, h, wd, c, oh, ow, kh, kw, sh, sw, pads),),
                             out_ch=cin)
            return self._add(node, spec=spec, unit="DPU")
        if group == 1:
            if kh == kw and sh == sw and sym and pads[0] <= kh // 2:
                spec = ops.Conv2d(cin, cout, kh, sh, h, wd, padding=pads[0], bias=len(node.inputs) > 2)
                if spec.out_shape != (cout, oh, ow):
                    raise ValueError(f"spec output {spec.out_shape} != ONNX output {(cout, oh, ow)}")
            else:
                spec = RawOp(f"conv_{node.name}", (_conv_layer("CONVOLUTION", _cin(cin), h, wd, ops.align16(cout),
                                                               oh, ow, kh, kw, sh, sw, pads),), out_ch=cout)
            return self._add(node, spec=spec, unit="DPU")
        # Grouped convolution: the DPU runs it as `group` independent convolutions.
        cg, og = cin // group, cout // group
        layer = _conv_layer("CONVOLUTION", _cin(cg), h, wd, ops.align16(og), oh, ow, kh, kw, sh, sw, pads)
        spec = RawOp(f"gconv_{node.name}", (layer,) * group, out_ch=cout)
        return self._add(node, spec=spec, unit="DPU", note=f"grouped conv ({group} groups) costed as {group} convs")

    def _pads(self, node, h, w, kh, kw, sh, sw, oh, ow):
        """(top, left, bottom, right) padding, resolving auto_pad."""
        auto = node.attrs.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else auto
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            ph = max((oh - 1) * sh + kh - h, 0)
            pw = max((ow - 1) * sw + kw - w, 0)
            small_h, small_w = ph // 2, pw // 2
            if auto == "SAME_UPPER":
                return (small_h, small_w, ph - small_h, pw - small_w)
            return (ph - small_h, pw - small_w, small_h, small_w)
        p = list(node.attrs.get("pads", [0, 0, 0, 0]))
        return (p[0], p[1], p[2], p[3]) if len(p) == 4 else (0, 0, 0, 0)

    def _map_BatchNormalization(self, node: Node, acts):
        target = self._fusion_target(node.inputs[0])
        if target is not None and not isinstance(target.spec, ops.Add):
            return self._fuse(node, target, target.spec, "batch norm folded into the conv")
        # Stand-alone: a per-channel scale + shift, which the DPU runs as a 1x1 depthwise conv.
        c, h, w = _chw(self.g.shape(node.inputs[0]))
        spec = ops.DepthwiseConv2d(c, 1, 1, h, w)
        return self._add(node, spec=spec, unit="DPU", note="stand-alone batch norm as 1x1 depthwise conv")

    def _map_Add(self, node: Node, acts):
        a, b = node.inputs[0], node.inputs[1]
        sa, sb, so = self.g.shape(a), self.g.shape(b), self.g.shape(node.outputs[0])
        if len(acts) == 2 and sa == sb == so and len(so) == 4:
            c, h, w = _chw(so)
            return self._add(node, spec=ops.Add(c, h, w), unit="DPU")
        if len(acts) == 1:
            const = self.g.const(b if a in acts else a)
            target = self._fusion_target(acts[0])
            if const is not None and target is not None and _per_channel(const, so):
                # A bias after a conv folds into the conv's bias.
                return self._fuse(node, target, target.spec, "bias add folded into the conv")
        return self._shave(node, acts, _SHAVE_BINARY["Add"])

    def _map_Mul(self, node: Node, acts):
        if len(acts) == 1:
            const = self.g.const(node.inputs[1] if node.inputs[0] in acts else node.inputs[0])
            target = self._fusion_target(acts[0])
            if (const is not None and target is not None and not isinstance(target.spec, ops.Add)
                    and _per_channel(const, self.g.shape(node.outputs[0]))):
                # A per-channel scale after a conv folds into the conv's weights (like batch norm).
                return self._fuse(node, target, target.spec, "per-channel scale folded into the conv")
        return self._shave(node, acts, _SHAVE_BINARY["Mul"])

    def _map_Sum(self, node: Node, acts):
        return self._map_Add(node, acts) if len(node.inputs) == 2 else self._unknown(node, "Sum of more than 2 inputs")

    def _map_MaxPool(self, node: Node, acts):
        return self._pool(node, "max")

    def _map_AveragePool(self, node: Node, acts):
        return self._pool(node, "avg")

    def _pool(self, node: Node, kind: str):
        xs, ys = self.g.shape(node.inputs[0]), self.g.shape(node.outputs[0])
        if len(xs) != 4:
            return self._unknown(node, "only 2-D pooling is costed")
        _, c, h, w = xs
        _, _, oh, ow = ys
        kh, kw = node.attrs["kernel_shape"]
        sh, sw = (list(node.attrs.get("strides", [1, 1])) + [1, 1])[:2]
        pads = self._pads(node, h, w, kh, kw, sh, sw, oh, ow)
        if kh == kw and sh == sw and pads[0] == pads[1] == pads[2] == pads[3] and pads[0] <= kh // 2:
            spec = ops.Pool(kind, c, kh, sh, h, w, padding=pads[0])
            if spec.out_shape == (c, oh, ow):
                return self._add(node, spec=spec, unit="DPU")
        cc = ops.align16(c)
        layer = _conv_layer("MAXPOOL" if kind == "max" else "AVEPOOL", cc, h, w, cc, oh, ow, kh, kw, sh, sw, pads)
        return self._add(node, spec=RawOp(f"pool_{node.name}", (layer,), out_ch=c), unit="DPU")

    def _map_GlobalAveragePool(self, node: Node, acts):
        c, h, w = _chw(self.g.shape(node.inputs[0]))
        return self._add(node, spec=ops.GlobalAvgPool(c, h, w), unit="DPU")

    def _map_GlobalMaxPool(self, node: Node, acts):
        c, h, w = _chw(self.g.shape(node.inputs[0]))
        cc = ops.align16(c)
        layer = _conv_layer("MAXPOOL", cc, h, w, cc, 1, 1, h, w, 1, 1, (0, 0, 0, 0))
        return self._add(node, spec=RawOp(f"gmp_{node.name}", (layer,), out_ch=c), unit="DPU")

    def _map_ReduceMean(self, node: Node, acts):
        xs = self.g.shape(node.inputs[0])
        axes = node.attrs.get("axes")
        if axes is None and len(node.inputs) > 1:
            const = self.g.const(node.inputs[1])
            axes = None if const is None else [int(a) for a in const.ravel()]
        if xs is not None and len(xs) == 4 and axes is not None and sorted(a % 4 for a in axes) == [2, 3]:
            c, h, w = _chw(xs)
            return self._add(node, spec=ops.GlobalAvgPool(c, h, w), unit="DPU", note="mean over H, W = global avg pool")
        return self._unknown(node, "ReduceMean over other axes than H, W has no VPU cost model")

    def _map_Gemm(self, node: Node, acts):
        return self._linear(node, acts, transposed=bool(node.attrs.get("transB", 0)))

    def _map_MatMul(self, node: Node, acts):
        if len(acts) == 2:
            return self._unknown(node, "MatMul of two activations (e.g. attention) has no VPU cost model")
        return self._linear(node, acts, transposed=False)

    def _linear(self, node: Node, acts, transposed: bool):
        w = self.g.const(node.inputs[1])
        xs, ys = self.g.shape(node.inputs[0]), self.g.shape(node.outputs[0])
        if len(acts) != 1 or w is None or w.ndim != 2 or node.inputs[0] != acts[0]:
            return self._unknown(node, f"{node.op_type} without a constant 2-D weight has no VPU cost model")
        k, n_out = (w.shape[1], w.shape[0]) if transposed else (w.shape[0], w.shape[1])
        tokens = int(np.prod(xs[1:-1])) if len(xs) > 2 else 1
        if tokens == 1:
            return self._add(node, spec=ops.Linear(k, n_out), unit="DPU")
        # [N, T, K] x [K, M]: a 1x1 convolution over T positions.
        return self._add(node, spec=ops.Conv2d(k, n_out, 1, 1, 1, tokens), unit="DPU",
                         note=f"linear over {tokens} tokens as 1x1 conv")

    # -- activations ---------------------------------------------------------------------------------
    def _map_Relu(self, node: Node, acts):
        return self._activation(node, "relu")

    def _map_Clip(self, node: Node, acts):
        lo, hi = self._clip_bounds(node)
        if lo == 0.0 and hi in (6.0, None, math.inf):
            return self._activation(node, "relu6" if hi == 6.0 else "relu")
        return self._shave(node, acts, ("clamp", "Clamp"))

    def _clip_bounds(self, node):
        lo, hi = node.attrs.get("min"), node.attrs.get("max")
        if len(node.inputs) > 1 and node.inputs[1]:
            c = self.g.const(node.inputs[1])
            lo = None if c is None else float(c)
        if len(node.inputs) > 2 and node.inputs[2]:
            c = self.g.const(node.inputs[2])
            hi = None if c is None else float(c)
        return (None if lo is None else float(lo)), (None if hi is None else float(hi))

    def _map_LeakyRelu(self, node: Node, acts):
        return self._activation(node, "leaky_relu")

    def _map_PRelu(self, node: Node, acts):
        slope = self.g.const(node.inputs[1])
        if slope is not None and slope.size == 1:
            return self._activation(node, "leaky_relu", note="PReLU with one slope = LeakyReLU")
        return self._activation(node, "prelu")

    def _map_Gelu(self, node: Node, acts):
        return self._activation(node, "gelu")

    def _map_Sigmoid(self, node: Node, acts):
        return self._activation(node, "sigmoid")

    def _map_HardSwish(self, node: Node, acts):
        return self._activation(node, "hswish")

    def _map_Tanh(self, node: Node, acts):
        return self._activation(node, "tanh")

    def _activation(self, node: Node, kind: str, note: str = ""):
        x = node.inputs[0]
        target = self._fusion_target(x)
        fusable = kind in _FUSABLE and not (kind == "leaky_relu" and self.leaky_relu_on_dsp)
        if fusable and target is not None:
            spec = target.spec
            if isinstance(spec, (ops.Conv2d, ops.DepthwiseConv2d)):
                spec = dataclasses.replace(spec, act=kind)
            elif isinstance(spec, RawOp):
                spec = dataclasses.replace(spec, layers=tuple(dataclasses.replace(l, activation=ops._DPU_ACT[kind])
                                                              for l in spec.layers))
            return self._fuse(node, target, spec, note or f"{kind} fused into the DPU post-processing")
        if kind == "prelu" and target is not None and isinstance(target.spec, (ops.Conv2d, ops.DepthwiseConv2d)):
            # Same as a fused prelu op spec: conv on the DPU, per-channel slope on the DSP.
            target.unit = "DPU+DSP"
            return self._fuse(node, target, dataclasses.replace(target.spec, act="prelu"),
                              "per-channel PReLU slope runs on the DSP")
        c, h, w = _chw(self.g.shape(x))
        if kind not in ops.STANDALONE_ACTIVATIONS:
            return self._shave(node, [x], _SHAVE_UNARY.get(node.op_type, (kind,)))
        return self._add(node, spec=ops.Activation(kind, c, h, w), unit="DSP",
                         note=note or "stand-alone activation runs on the DSP")

    # -- data movement ---------------------------------------------------------------------------------
    def _map_DepthToSpace(self, node: Node, acts):
        c, h, w = _chw(self.g.shape(node.inputs[0]))
        return self._add(node, spec=ops.DepthToSpace(c, int(node.attrs["blocksize"]), h, w), unit="DSP")

    def _map_Resize(self, node: Node, acts):
        xs, ys = self.g.shape(node.inputs[0]), self.g.shape(node.outputs[0])
        if len(xs) != 4 or xs[:2] != ys[:2]:
            return self._unknown(node, "Resize of other than the spatial axes of a 4-D tensor")
        mode = _str(node.attrs.get("mode", "nearest"))
        ctm = _str(node.attrs.get("coordinate_transformation_mode", "half_pixel"))
        _, c, h, w = xs
        oh, ow = ys[2], ys[3]
        if oh % h == 0 and ow % w == 0 and oh // h == ow // w and mode in ("nearest", "linear"):
            scale = oh // h
            spec = ops.Upsample("nearest" if mode == "nearest" else "bilinear", scale, c, h, w,
                                align_corners=(mode == "linear" and ctm == "align_corners"))
            return self._add(node, spec=spec, unit="DSP", note=f"{mode}, {ctm}")
        kern = ops.ShaveOp(ops._SHAVE_UPSAMPLE, (c, h, w), (c, oh, ow))
        return self._add(node, spec=RawOp(f"resize_{node.name}", kernels=(kern,), out_ch=c), unit="DSP",
                         note=f"{mode}, {ctm}, non-integer scale")

    _map_Upsample = _map_Resize

    def _map_Concat(self, node: Node, acts):
        axis = int(node.attrs.get("axis", 0))
        ys = self.g.shape(node.outputs[0])
        if ys is not None and len(ys) == 4 and axis % 4 == 1:
            return self._free(node, note="channel concat is in place in CMX")
        return self._unknown(node, f"Concat on axis {axis} (data movement, not costed)")

    # -- generic SHAVE -------------------------------------------------------------------------------
    def _shave(self, node: Node, acts, names):
        if not acts:
            return self._unknown(node, "no activation input")
        ins = _chw(self.g.shape(acts[0]))
        outs = _chw(self.g.shape(node.outputs[0]))
        if ins is None or outs is None:
            return self._unknown(node, f"{node.op_type} on a {len(self.g.shape(acts[0]))}-D tensor is not costed")
        name = next((n for n in names if self.shave_kernels is None or n in self.shave_kernels), None)
        if name is None:
            return self._unknown(node, f"runs on the DSP, but there is no SHAVE cost model for it "
                                       f"(kernels tried: {', '.join(names)})")
        kern = ops.ShaveOp(name, ins, outs)
        return self._add(node, spec=RawOp(f"shave_{node.name}", kernels=(kern,), out_ch=outs[0]), unit="DSP",
                         note=f"DSP kernel {name}")


_PATTERN_OP = {"gelu": "Gelu", "swish": "Swish"}


def _find_activation_patterns(g: Graph) -> dict:
    """Activations that exporters decompose: GELU as x*0.5*(1+erf(x/sqrt2)) and swish as x*sigmoid(x).

    Returns {last node name: (kind, input tensor, [names of the other nodes])}."""
    found = {}
    for n in g.nodes:
        if n.op_type == "Erf":
            pre = g.producer.get(n.inputs[0])
            if pre is None or pre.op_type not in ("Div", "Mul") or len(g.consumers.get(n.inputs[0], [])) != 1:
                continue
            x = next((i for i in pre.inputs if i not in g.constants), None)
            chain, cur, uses_x = [pre.name, n.name], n.outputs[0], False
            for _ in range(3):
                cons = g.consumers.get(cur, [])
                if len(cons) != 1 or cons[0].op_type not in ("Add", "Mul"):
                    break
                others = [i for i in cons[0].inputs if i != cur]
                if not all(o in g.constants or o == x for o in others):
                    break
                uses_x = uses_x or x in others
                chain.append(cons[0].name)
                cur = cons[0].outputs[0]
            if x is not None and uses_x and len(chain) >= 4:
                found[chain[-1]] = ("gelu", x, chain[:-1])
        elif n.op_type == "Sigmoid":
            cons = g.consumers.get(n.outputs[0], [])
            if len(cons) == 1 and cons[0].op_type == "Mul" and n.inputs[0] in cons[0].inputs:
                found[cons[0].name] = ("swish", n.inputs[0], [n.name])
    return found


def _cin(c: int) -> int:
    return c if c < 16 else ops.align16(c)


def _str(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _per_channel(const: np.ndarray, out_shape) -> bool:
    """A constant that broadcasts as one value per channel (or a scalar) over an NCHW tensor."""
    if const.size == 1:
        return True
    if len(out_shape) != 4:
        return const.ndim == 1 and const.size == out_shape[-1]
    shape = (1,) * (4 - const.ndim) + tuple(const.shape)
    return shape[0] == 1 and shape[1] == out_shape[1] and shape[2] == 1 and shape[3] == 1


def map_graph(graph: Graph, shave_kernels=None, leaky_relu_on_dsp: bool = False) -> list[Item]:
    """Map every device-relevant node of the graph to an item (DPU / DSP / free / unknown).

    `shave_kernels`: the SHAVE kernel names the cost model knows (DSP ops without one become unknown).
    `leaky_relu_on_dsp`: run LeakyReLU on the DSP instead of fusing it (what the whitepaper observed with
    the VPU 2.7 compiler of its time; VPUNN itself models LRELU in the DPU post-processing)."""
    return _Mapper(graph, shave_kernels, leaky_relu_on_dsp).run()


# ----------------------------------------------------------------------------------------------------------
# Costing
# ----------------------------------------------------------------------------------------------------------

# Per-tile CMX workspace the compiler can use for activations (VPUX: 1936 KB on 37XX, 1440 KB on 40XX;
# Myriad X: 1 MB for NN data); times the device's tile count from the layer model.
CMX_BYTES = {"VPU_2_0": 1024 * 1024, "VPU_2_7": 1936 * 1024, "VPU_4_0": 1440 * 1024}
DTYPE_BYTES = {"UINT8": 1, "INT8": 1, "FLOAT16": 2, "BFLOAT16": 2}
# DRAM bandwidth in MB/s from VPUNN's hardware tables (VPU 4.0: its legacy table, the conservative one).
DDR_MBPS = {"VPU_2_0": 20000.0, "VPU_2_7": 27000.0, "VPU_4_0": 45000.0}


class Coster:
    """Costs op specs / raw ops exactly the way the LUT does (`vpunas.lut.VpuCostSource.cost`): DPU layers
    through the layer cost model, DSP kernels through the SHAVE models. Results are cached by op key."""

    def __init__(self, source):
        self.source = source
        self.device = source.device
        self.dtype = source.dtype
        self._cache: dict = {}

    def results(self, specs) -> list:
        """`CostResult` per spec (latency_ms, dpu_ms, shave_ms, error, notes)."""
        todo = [s for s in {s.key: s for s in specs}.values() if s.key not in self._cache]
        if todo:
            try:
                results = self.source.cost(todo)
            except ValueError:
                # One odd layer made the batch call refuse: cost one by one so only that item fails.
                results = [self._cost_one(s) for s in todo]
            for s, r in zip(todo, results):
                self._cache[s.key] = r
        return [self._cache[s.key] for s in specs]

    def _cost_one(self, spec):
        from vpunas.lut import CostResult

        try:
            return self.source.cost([spec])[0]
        except ValueError as exc:
            return CostResult(math.nan, error=f"cost model refused it: {exc}")

    def ms(self, specs) -> list:
        """Predicted ms per spec, None where the cost model refused it."""
        return [r.latency_ms if r.ok else None for r in self.results(specs)]

    def ddr_spill_ms(self, producer, consumer) -> float:
        """Extra time when `producer`'s output goes to DDR and `consumer` reads it back, from the layer cost
        model's DMA terms (VPUNN's DMA model); falls back to the nominal DRAM bandwidth."""
        from vpunas.lut import layers_to_records

        a = producer.dpu_layers(self.device, self.dtype)
        b = consumer.dpu_layers(self.device, self.dtype)
        model = self.source.layer_model
        try:
            ra, rb = layers_to_records(a[-1:]), layers_to_records(b[:1])
            extra = (int(model.layer_cycles(ra, output_in_ddr=True)[0]) - int(model.layer_cycles(ra)[0])
                     + int(model.layer_cycles(rb, input_in_ddr=True)[0]) - int(model.layer_cycles(rb)[0]))
            if 0 <= extra < 2**31:
                return extra / (self.source.clock_mhz * 1e3)
        except (ValueError, AttributeError):
            pass
        layer = a[-1]
        nbytes = 2 * layer.out_w * layer.out_h * layer.out_c * DTYPE_BYTES[self.dtype]
        return nbytes / (DDR_MBPS[self.device] * 1e6) * 1e3


def make_cost_source(device: str | None, model=None, dtype: str = "UINT8", shave_params=None):
    """The LUT's cost source for a device (and .vpunn file); bad arguments -> LintInputError / FileNotFoundError."""
    from vpunas.lut import VpuCostSource

    if dtype not in ops.DTYPES:
        raise LintInputError(f"unknown --dtype {dtype!r}; choose one of {', '.join(ops.DTYPES)}")
    if device is not None and device not in ops.DEVICES:
        raise LintInputError(f"unknown --device {device!r}; choose one of {', '.join(ops.DEVICES)}")
    if shave_params is not None and not Path(shave_params).is_dir():
        raise FileNotFoundError(f"SHAVE parameter folder not found: {shave_params} (VPUNN's shave/ folder with "
                                "layers_perf.csv and shave_layers_*.csv)")
    if model is not None:
        model_path = Path(model)
        if not model_path.is_file():
            raise FileNotFoundError(f"VPUNN model file not found: {model_path} (give the path of a .vpunn file, "
                                    "e.g. vpu_2_7.vpunn from intel/npu-nn-cost-model, or leave out --model)")
        from vpunas.costmodel import VPUNN

        vpunn = VPUNN(str(model_path))
        if device is not None and vpunn.device != device:
            raise LintInputError(f"--device {device} does not match the model file {model_path.name}, which is "
                                 f"for {vpunn.device}")
        return VpuCostSource(vpunn.device, model=vpunn, dtype=dtype, shave_params=shave_params)
    if device is None:
        raise LintInputError(f"give --device ({', '.join(ops.DEVICES)}) or --model FILE.vpunn")
    return VpuCostSource(device, model=None, dtype=dtype, shave_params=shave_params)


def _shave_kernels(source):
    """SHAVE kernel names (both VPUNN APIs) the source's DSP model knows; None = it estimates any kernel."""
    shave = getattr(source, "shave_model", None)
    if shave is None:
        return None
    return set(shave.operators("shave2")) | set(shave.operators("SHAVE"))


def _staged_global_pool(spec: ops.GlobalAvgPool):
    """A global average pool as successive smaller pools (kernel = stride), the way compilers handle kernels
    too large for the DPU; None when a side has a prime factor above 8."""
    def factors(n):
        out = []
        while n > 1:
            f = next((d for d in range(8, 1, -1) if n % d == 0), None)
            if f is None:
                return None
            out.append(f)
            n //= f
        return out

    fh, fw = factors(spec.h), factors(spec.w)
    if fh is None or fw is None:
        return None
    n = max(len(fh), len(fw))
    fh, fw = fh + [1] * (n - len(fh)), fw + [1] * (n - len(fw))
    c, h, w, layers = ops.align16(spec.ch), spec.h, spec.w, []
    for kh, kw in zip(fh, fw):
        layers.append(_conv_layer("AVEPOOL", c, h, w, c, h // kh, w // kw, kh, kw, kh, kw, (0, 0, 0, 0)))
        h, w = h // kh, w // kw
    stages = " then ".join(f"{kh}x{kw}" for kh, kw in zip(fh, fw))
    return RawOp(f"staged_gap_c{spec.ch}_{spec.h}x{spec.w}", tuple(layers), out_ch=spec.ch), stages


def cost_items(items, coster: Coster) -> None:
    """Fill dpu_ms / dsp_ms of every costed item (per image times the batch), errors and cost notes."""
    costed = [it for it in items if it.spec is not None and it.unit not in ("free", "unknown")]
    results = coster.results([it.spec for it in costed])
    for i, (it, r) in enumerate(zip(costed, results)):
        staged = _staged_global_pool(it.spec) if r.error and isinstance(it.spec, ops.GlobalAvgPool) else None
        if staged is not None:
            # VPUNN refuses the whole-map kernel: cost the pool in stages, as the compiler splits it.
            it.spec, stages = staged
            it.note = (it.note + "; " if it.note else "") + f"pool kernel too large for the DPU: {stages} stages"
            results[i] = r = coster.results([it.spec])[0]
    for it, r in zip(costed, results):
        if r.error:
            it.error = r.error
            continue
        it.dpu_ms = r.dpu_ms * it.batch
        it.dsp_ms = r.shave_ms * it.batch
        it.cost_notes = list(r.notes)


# ----------------------------------------------------------------------------------------------------------
# Findings
# ----------------------------------------------------------------------------------------------------------

@dataclass
class Finding:
    severity: str            # info | warning | error
    kind: str                # channels16 | dsp_op | dma_pair | unknown_op | refused
    node: str
    message: str
    saving_ms: float = 0.0   # predicted saving of the suggested change (0 when none is predicted)
    current_ms: float | None = None
    replacement: str = ""
    replacement_ms: float | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _out_channels(spec) -> int | None:
    """Output width of ops that choose it (convs, linear); depthwise / pool / add inherit theirs."""
    if isinstance(spec, ops.Conv2d):
        return spec.out_ch
    if isinstance(spec, ops.Linear):
        return spec.out_f
    if isinstance(spec, RawOp) and spec.layers and spec.layers[0].op == "CONVOLUTION":
        return spec.out_ch
    return None


def _with_out_channels(spec, c: int):
    """The same DPU op with `c` output channels (the channel-padding alternative)."""
    if isinstance(spec, ops.Conv2d):
        return dataclasses.replace(spec, out_ch=c)
    if isinstance(spec, ops.Linear):
        return dataclasses.replace(spec, out_f=c)
    if isinstance(spec, (ops.DepthwiseConv2d, ops.Pool, ops.GlobalAvgPool, ops.Add)):
        return dataclasses.replace(spec, ch=c)
    same_in = ("DW_CONVOLUTION", "MAXPOOL", "AVEPOOL", "ELTWISE")
    layers = tuple(dataclasses.replace(l, out_c=ops.align16(c), in_c=ops.align16(c) if l.op in same_in else l.in_c)
                   for l in spec.layers)
    return dataclasses.replace(spec, label=f"{spec.label}_o{c}", layers=layers, out_ch=c)


def _with_act(spec, kind: str):
    """The DPU op with a fused activation (`kind` in relu / leaky_relu), or None if it cannot take one."""
    if isinstance(spec, (ops.Conv2d, ops.DepthwiseConv2d)):
        return dataclasses.replace(spec, act=kind)
    if isinstance(spec, RawOp) and spec.layers:
        return dataclasses.replace(spec, label=f"{spec.label}_{kind}", layers=tuple(
            dataclasses.replace(l, activation=ops._DPU_ACT[kind]) for l in spec.layers))
    if isinstance(spec, ops.Add):
        return spec  # the eltwise PPE applies ReLU / LeakyReLU at no modelled cost
    return None


def _without_act(spec):
    if isinstance(spec, (ops.Conv2d, ops.DepthwiseConv2d)):
        return dataclasses.replace(spec, act="none")
    return _with_act(spec, "none") if isinstance(spec, RawOp) else spec


def _deconv_layer(op, cin, cout, out_h, out_w, k) -> ops.DpuLayer:
    """A stride-k transposed convolution as the DPU runs it: a k x k convolution over the zero-upsampled
    input, whose border padding is written into the upsampled buffer (VPUNN's layer checks allow at most
    (k-1)/2 padding), so the conv itself is unpadded over an (out + k - 1)-sized map."""
    return ops.DpuLayer(op=op, in_w=out_w + k - 1, in_h=out_h + k - 1, in_c=cin, out_w=out_w, out_h=out_h, out_c=cout,
                        k_w=k, k_h=k)


# DSP activation -> the activation that fuses into the DPU instead.
_DPU_REPLACEMENT = {"prelu": "leaky_relu", "gelu": "relu", "swish": "relu", "hswish": "relu", "leaky_relu": "leaky_relu",
                    "relu": "relu", "relu6": "relu6"}


class _FindingBuilder:
    def __init__(self, graph: Graph, items, coster: Coster, total_ms: float, leaky_relu_on_dsp: bool = False):
        self.g, self.items, self.coster, self.total = graph, items, coster, total_ms
        self.leaky_relu_on_dsp = leaky_relu_on_dsp
        self.item_of_tensor = {o: it for it in items for o in it.outputs}
        self.findings: list[Finding] = []

    def severity(self, saving_ms: float) -> str:
        return "warning" if self.total > 0 and saving_ms >= _WARN_SHARE * self.total else "info"

    def add(self, severity, kind, item, message, saving=0.0, current=None, replacement="", replacement_ms=None):
        self.findings.append(Finding(severity, kind, item.node, message, max(0.0, saving), current, replacement,
                                     replacement_ms))

    def ms1(self, spec, batch: int):
        v = self.coster.ms([spec])[0]
        return None if v is None else v * batch

    def run(self) -> list[Finding]:
        for it in self.items:
            if it.unit == "unknown":
                self.add("warning", "unknown_op", it, f"{it.op}: {it.note}; its latency is not in the total")
            elif it.error:
                self.add("error", "refused", it, f"{it.op}: {it.error}")
            else:
                if it.unit in ("DPU", "DPU+DSP"):
                    self.channels(it)
                if it.unit in ("DSP", "DPU+DSP"):
                    self.dsp(it)
                self.dma_pair(it)
        order = {s: i for i, s in enumerate(reversed(SEVERITIES))}
        self.findings.sort(key=lambda f: (order[f.severity], -f.saving_ms))
        return self.findings

    # -- output channels not a multiple of 16 -------------------------------------------------------------
    def channels(self, it: Item):
        c = _out_channels(it.spec)
        if c is None or c % 16 == 0 or set(it.outputs) & set(self.g.outputs):
            return  # the network's own output width (e.g. classes) is not a design choice
        padded, current = ops.align16(c), it.dpu_ms
        if current is None:
            return
        down = padded - 16
        if down >= 16:
            alt = self.ms1(_with_out_channels(it.spec, down), it.batch)
            saving = 0.0 if alt is None else current - alt
            msg = (f"{c} output channels are padded to {padded} on the DPU: {c} costs the same as {padded} "
                   f"({current:.4g} ms); {down} channels are predicted at {_fmt_ms(alt)}")
            self.add(self.severity(saving), "channels16", it, msg, saving, current, f"{down} or {padded} channels", alt)
        else:
            saving = current * (padded - c) / padded
            msg = (f"{c} output channels are padded to {padded} on the DPU: {padded - c} of {padded} channels are "
                   f"wasted work (~{saving:.4g} ms); use {padded} channels for the same cost")
            self.add(self.severity(saving), "channels16", it, msg, saving, current, f"{padded} channels", current)

    # -- DSP (SHAVE) ops ------------------------------------------------------------------------------------
    def dsp(self, it: Item):
        spec, dsp_ms = it.spec, it.dsp_ms or 0.0
        share = f"{100 * dsp_ms / self.total:.1f}% of the total" if self.total > 0 else ""
        if isinstance(spec, ops.Activation) or (it.unit == "DPU+DSP" and getattr(spec, "act", "") == "prelu"):
            return self._dsp_activation(it, spec, dsp_ms, share)
        if isinstance(spec, ops.DepthToSpace):
            b, (c, h, w) = spec.block, spec.out_shape
            alt = RawOp(f"deconv_{it.node}", (_deconv_layer("CONVOLUTION", ops.align16(spec.ch_in), ops.align16(c),
                                                            h, w, b),), out_ch=c)
            alt_ms = self.ms1(alt, it.batch)
            saving = 0.0 if alt_ms is None else dsp_ms - alt_ms
            repl = f"ConvTranspose {spec.ch_in}->{c} kernel {b} stride {b} (exact, fixed weights) on the DPU"
            verdict = ("predicted cheaper" if saving > 0 else "not predicted cheaper; keep it or upsample earlier, "
                       "on fewer channels")
            self.add(self.severity(saving), "dsp_op", it,
                     f"depth-to-space runs on the DSP ({dsp_ms:.4g} ms, {share}); {repl}: "
                     f"{_fmt_ms(alt_ms)} ({verdict}, dense cost without zero-skipping)", saving, dsp_ms, repl, alt_ms)
            return
        if isinstance(spec, ops.Upsample):
            s, (c, h, w) = spec.scale, spec.out_shape
            k = s if spec.mode == "nearest" else 2 * s
            alt = RawOp(f"dwdeconv_{it.node}", (_deconv_layer("DW_CONVOLUTION", ops.align16(c), ops.align16(c),
                                                              h, w, k),), out_ch=c)
            alt_ms = self.ms1(alt, it.batch)
            saving = 0.0 if alt_ms is None else dsp_ms - alt_ms
            repl = (f"depthwise ConvTranspose kernel {k} stride {s} with fixed "
                    f"{'ones' if spec.mode == 'nearest' else 'bilinear'} weights on the DPU")
            pre = ("align_corners=True has no fixed-kernel form: switch to align_corners=False (half_pixel), then "
                   if spec.align_corners else "")
            self.add(self.severity(saving), "dsp_op", it,
                     f"{spec.mode} interpolation x{s} runs on the DSP ({dsp_ms:.4g} ms, {share}); {pre}{repl}: "
                     f"{_fmt_ms(alt_ms)}", saving, dsp_ms, repl, alt_ms)
            return
        kernels = ", ".join(k.name for k in spec.shave_ops(self.coster.device))
        self.add("info", "dsp_op", it, f"{it.op} runs on the DSP as {kernels} ({dsp_ms:.4g} ms, {share}); "
                                       "no DPU form is known", 0.0, dsp_ms)

    def _dsp_activation(self, it: Item, spec, dsp_ms: float, share: str):
        kind = getattr(spec, "kind", None) or "prelu"
        repl_kind = _DPU_REPLACEMENT.get(kind)
        if repl_kind == "leaky_relu" and self.leaky_relu_on_dsp:
            repl_kind = "relu"  # under that assumption LeakyReLU does not fuse either
        if it.unit == "DPU+DSP":
            producer, base = it, _without_act(spec)
        else:
            producer = self.item_of_tensor.get(it.inputs[0]) if it.inputs else None
            own = set(it.fused) | {it.node}  # a decomposed GELU / swish reads its input several times
            others = [n for n in self.g.consumers.get(it.inputs[0], []) if n.name not in own]
            single = producer is not None and not others and it.inputs[0] not in self.g.outputs
            base = producer.spec if single and producer.unit == "DPU" else None
        if repl_kind is None:
            self.add("info", "dsp_op", it, f"{kind} runs on the DSP ({dsp_ms:.4g} ms, {share}); no DPU form "
                                           "(ReLU / LeakyReLU fuse into the conv for free)", 0.0, dsp_ms)
            return
        fused = _with_act(base, repl_kind) if base is not None else None
        name = {"leaky_relu": "LeakyReLU with one scalar slope", "relu": "ReLU", "relu6": "ReLU6"}[repl_kind]
        if fused is None:
            self.add(self.severity(dsp_ms), "dsp_op", it,
                     f"{kind} runs on the DSP ({dsp_ms:.4g} ms, {share}) because no conv / add directly before it "
                     f"can take it; as {name} right after a conv it would fuse into the DPU at no cost",
                     dsp_ms, dsp_ms, f"{name} fused after a conv", 0.0)
            return
        with_act, without = self.coster.ms([fused, _without_act(base)])
        extra = None if with_act is None or without is None else max(0.0, (with_act - without) * it.batch)
        saving = dsp_ms - (extra or 0.0)
        self.add(self.severity(saving), "dsp_op", it,
                 f"{kind} runs on the DSP ({dsp_ms:.4g} ms, {share}); {name} fused into {producer.node} costs "
                 f"{_fmt_ms(extra)} extra on the DPU", saving, dsp_ms, f"{name} fused into {producer.node}", extra)

    # -- depthwise + pointwise pairs on big activations ---------------------------------------------------
    def dma_pair(self, it: Item):
        spec = it.spec
        dw = spec if isinstance(spec, ops.DepthwiseConv2d) else None
        if dw is None or not it.outputs:
            return
        out = it.outputs[-1]
        cons = self.g.consumers.get(out, [])
        nxt = self.item_of_tensor.get(cons[0].outputs[0]) if len(cons) == 1 and cons[0].outputs else None
        if nxt is None or not isinstance(nxt.spec, ops.Conv2d) or nxt.spec.kernel != 1 or nxt.spec.stride != 1:
            return
        pw = nxt.spec
        nbytes = DTYPE_BYTES.get(self.coster.dtype, 2)
        c, h, w = dw.out_shape
        footprint = (dw.ch * dw.in_h * dw.in_w + 2 * c * h * w + pw.out_ch * h * w) * nbytes
        from vpunas.layercost import default_hardware

        cmx = CMX_BYTES[self.coster.device] * default_hardware(self.coster.device)[1]
        if footprint <= cmx:
            return
        streamed = any("DDR" in n for n in it.cost_notes + nxt.cost_notes)
        # Layers already costed as strips streamed through DDR carry their DMA in their own cost.
        spill_ms = 0.0 if streamed else self.coster.ddr_spill_ms(dw, pw) * it.batch
        pair_ms = (it.dpu_ms or 0.0) + (nxt.dpu_ms or 0.0) + spill_ms
        plain = ops.Conv2d(dw.ch, pw.out_ch, dw.kernel, dw.stride, dw.in_h, dw.in_w, act=pw.act)
        plain_ms = self.ms1(plain, it.batch)
        saving = 0.0 if plain_ms is None else pair_ms - plain_ms
        verdict = "a plain conv is predicted faster" if saving > 0 else "a plain conv is not predicted faster"
        dma = "DMA already in their cost as DDR strips" if streamed else f"~{spill_ms:.4g} ms DMA"
        self.add(self.severity(saving), "dma_pair", it,
                 f"depthwise {dw.kernel}x{dw.kernel} + pointwise pair on {c}x{h}x{w}: {footprint / 2**20:.1f} MiB "
                 f"of activations exceed the {cmx / 2**20:.1f} MiB CMX, so the intermediate goes through DDR "
                 f"({dma}); pair {pair_ms:.4g} ms vs plain {dw.kernel}x{dw.kernel} conv "
                 f"{_fmt_ms(plain_ms)}: {verdict}", saving, pair_ms, f"plain {dw.kernel}x{dw.kernel} conv "
                 f"{dw.ch}->{pw.out_ch}", plain_ms)


def _fmt_ms(v) -> str:
    return "not costable" if v is None else f"{v:.4g} ms"


def find_issues(graph: Graph, items, coster: Coster, total_ms: float, leaky_relu_on_dsp: bool = False) -> list:
    """Findings with the predicted saving of each suggested change, most severe / largest saving first."""
    return _FindingBuilder(graph, items, coster, total_ms, leaky_relu_on_dsp).run()


# ----------------------------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------------------------

@dataclass
class LintReport:
    path: str
    device: str
    dtype: str
    source: dict                  # where the numbers come from (VpuCostSource metadata)
    items: list
    findings: list
    free_nodes: int = 0

    @property
    def estimate(self) -> bool:
        """True when the numbers come from the theoretical model (no .vpunn file)."""
        return str(self.source.get("kind", "")).startswith("theoretical")

    @property
    def batch(self) -> int:
        return max((it.batch for it in self.items), default=1)

    @property
    def total_ms(self) -> float:
        return float(sum(it.ms or 0.0 for it in self.items))

    @property
    def dpu_ms(self) -> float:
        return float(sum(it.dpu_ms or 0.0 for it in self.items if it.unit != "free"))

    @property
    def dsp_ms(self) -> float:
        return float(sum(it.dsp_ms or 0.0 for it in self.items))

    @property
    def fps(self) -> float | None:
        """Images per second (None when nothing could be costed)."""
        return self.batch * 1000.0 / self.total_ms if self.total_ms > 0 else None

    @property
    def unknown(self) -> list:
        return [it for it in self.items if it.unit == "unknown" or (it.ms is None and it.unit != "free")]

    def worst_severity(self) -> str | None:
        levels = [SEVERITIES.index(f.severity) for f in self.findings]
        return SEVERITIES[max(levels)] if levels else None

    def fails(self, fail_on: str | None) -> bool:
        """True if a finding is at or above `fail_on` (warning | error)."""
        if not fail_on:
            return False
        worst = self.worst_severity()
        return worst is not None and SEVERITIES.index(worst) >= SEVERITIES.index(fail_on)

    # -- renderings ----------------------------------------------------------------------------------
    def rows(self) -> list[dict]:
        total = self.total_ms
        out = []
        for it in self.items:
            ms = it.ms
            out.append({
                "node": it.node, "op": it.op, "in_shape": list(it.in_shape or ()), "out_shape": list(it.out_shape or ()),
                "unit": it.unit, "ms": ms, "dpu_ms": it.dpu_ms, "dsp_ms": it.dsp_ms,
                "share": (ms / total if ms is not None and total > 0 else None),
                "fused": list(it.fused), "op_key": getattr(it.spec, "key", None), "note": it.note,
                "cost_notes": list(it.cost_notes), "error": it.error,
            })
        return out

    def to_dict(self) -> dict:
        return {
            "format": "vpunas-lint", "version": 1, "model": self.path, "device": self.device, "dtype": self.dtype,
            "source": self.source, "estimate": self.estimate, "batch": self.batch,
            "total_ms": self.total_ms, "fps": self.fps, "dpu_ms": self.dpu_ms, "dsp_ms": self.dsp_ms,
            "layers": self.rows(), "unknown": [it.node for it in self.unknown],
            "findings": [f.to_dict() for f in self.findings],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=_json_default)

    def to_text(self) -> str:
        src = self.source.get("model") or self.source.get("kind", "?")
        label = " (theoretical ESTIMATE, no .vpunn model given)" if self.estimate else ""
        lines = [f"vpunas lint {self.path}", f"device {self.device}, dtype {self.dtype}, cost model {src}{label}", ""]
        rows = [r for r in self.rows() if r["unit"] != "free"]
        wn = max([4] + [len(r["node"]) for r in rows])
        wo = max([2] + [len(r["op"]) for r in rows])
        wn, wo = min(wn, 40), min(wo, 36)
        head = f"{'#':>3}  {'node':<{wn}}  {'op':<{wo}}  {'input -> output':<32}  {'unit':<8}  {'ms':>9}  {'share':>6}"
        lines += [head, "-" * len(head)]
        for i, r in enumerate(rows):
            shapes = f"{_fmt_shape(r['in_shape'])} -> {_fmt_shape(r['out_shape'])}"
            ms = "unknown" if r["ms"] is None else f"{r['ms']:.4f}"
            share = "" if r["share"] is None else f"{100 * r['share']:.1f}%"
            lines.append(f"{i:>3}  {_clip(r['node'], wn):<{wn}}  {_clip(r['op'], wo):<{wo}}  {shapes:<32}  "
                         f"{r['unit']:<8}  {ms:>9}  {share:>6}")
        notes = [(i, r) for i, r in enumerate(rows) if r["cost_notes"]]
        if notes:
            lines.append("Cost notes:")
            lines += [f"  #{i} {r['node']}: {'; '.join(r['cost_notes'])}" for i, r in notes]
        lines.append("")
        est = " (estimate)" if self.estimate else ""
        fps = "n/a" if self.fps is None else f"{self.fps:.1f}"
        lines.append(f"Total predicted latency{est}: {self.total_ms:.4f} ms  ->  {fps} fps at batch {self.batch}"
                     f"  (DPU {self.dpu_ms:.4f} ms, DSP {self.dsp_ms:.4f} ms)")
        if self.unknown:
            names = ", ".join(f"{it.node} ({it.op})" for it in self.unknown)
            lines.append(f"Not costed ({len(self.unknown)}, not in the total): {names}")
        lines.append("")
        if not self.findings:
            lines.append("Findings: none")
        else:
            lines.append(f"Findings ({len(self.findings)}):")
            for f in self.findings:
                saving = f"  [saves ~{f.saving_ms:.4g} ms]" if f.saving_ms > 0 else ""
                lines.append(f"  {f.severity.upper():<7} {f.kind:<11} {f.node}: {f.message}{saving}")
        return "\n".join(lines) + "\n"

    def plot(self, path) -> None:
        """Horizontal bar chart of per-layer predicted latency, coloured by DPU / DSP."""
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        rows = [r for r in self.rows() if r["unit"] not in ("free", "unknown") and r["ms"] is not None]
        n = max(1, len(rows))
        fig, ax = plt.subplots(figsize=(9, min(40.0, 1.5 + 0.28 * n)))
        y = np.arange(len(rows))
        dpu = [r["dpu_ms"] or 0.0 for r in rows]
        dsp = [r["dsp_ms"] or 0.0 for r in rows]
        ax.barh(y, dpu, color="#1f77b4", label="DPU")
        ax.barh(y, dsp, left=dpu, color="#d62728", label="DSP (SHAVE)")
        ax.set_yticks(y, [f"{_clip(r['node'], 32)} ({r['op'].split('+')[0]})" for r in rows], fontsize=7)
        ax.invert_yaxis()
        est = " (theoretical estimate)" if self.estimate else ""
        ax.set_xlabel(f"predicted latency per layer [ms]{est}")
        fps = "n/a" if self.fps is None else f"{self.fps:.0f}"
        ax.set_title(f"{Path(self.path).name} on {self.device}: {self.total_ms:.3f} ms, {fps} fps", fontsize=9)
        ax.legend(loc="lower right", fontsize=8)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    return str(o)


def _fmt_shape(shape) -> str:
    return "x".join(str(d) for d in shape) if shape else "-"


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else "…" + text[-(width - 1):]


def lint_model(path, device: str | None = None, model=None, dtype: str = "UINT8", input_shapes=None,
               cost_source=None, leaky_relu_on_dsp: bool = False, shave_params=None) -> LintReport:
    """Lint an ONNX file for a VPU. `model`: path of a .vpunn file (None = theoretical estimate);
    `cost_source`: an existing `vpunas.lut.VpuCostSource` (overrides device / model);
    `input_shapes`: {input name or None: shape} for dynamic inputs (see `parse_input_shapes`);
    `shave_params`: VPUNN's SHAVE parameter folder (default: next to the model file / $VPUNAS_SHAVE_DIR)."""
    if cost_source is None:
        cost_source = make_cost_source(device, model, dtype, shave_params)
    device, dtype = cost_source.device, cost_source.dtype
    graph = load_graph(path, input_shapes)
    coster = Coster(cost_source)
    mapper = _Mapper(graph, shave_kernels=_shave_kernels(cost_source), leaky_relu_on_dsp=leaky_relu_on_dsp)
    items = mapper.run()
    cost_items(items, coster)
    total = float(sum(it.ms or 0.0 for it in items))
    findings = find_issues(graph, items, coster, total, leaky_relu_on_dsp)
    return LintReport(str(path), device, dtype, dict(cost_source.metadata()), items, findings, mapper.free_nodes)
