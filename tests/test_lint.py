"""`vpunas lint`: ONNX graph -> VPU cost items, per-layer latency, findings, CLI behaviour.

Test models are tiny local nn.Modules exported with the legacy (TorchScript) exporter, or graphs built with
onnx.helper, so every test takes well under a second after the session-wide exports.
"""
from __future__ import annotations

import json
import warnings

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from vpunas import lint, ops
from vpunas.cli import main as cli_main

from conftest import model_path

DEVICE = "VPU_2_7"


# ------------------------------------------------------------------------------------------- test models
class TinyMobileNetV2(nn.Module):
    """Stem, one inverted residual with skip, a 24-channel head (not a multiple of 16), classifier."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU6())
        self.expand = nn.Sequential(nn.Conv2d(16, 96, 1, bias=False), nn.BatchNorm2d(96), nn.ReLU6())
        self.dw = nn.Sequential(nn.Conv2d(96, 96, 3, 1, 1, groups=96, bias=False), nn.BatchNorm2d(96), nn.ReLU6())
        self.project = nn.Sequential(nn.Conv2d(96, 16, 1, bias=False), nn.BatchNorm2d(16))
        self.head = nn.Sequential(nn.Conv2d(16, 24, 1), nn.ReLU())
        self.fc = nn.Linear(24, 10)

    def forward(self, x):
        x = self.stem(x)
        x = x + self.project(self.dw(self.expand(x)))
        x = self.head(x)
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class TinyEDSR(nn.Module):
    """EDSR-style: head conv, residual block with LeakyReLU, conv + pixel shuffle + per-channel PReLU, tail."""

    def __init__(self, c=32):
        super().__init__()
        self.head = nn.Conv2d(3, c, 3, 1, 1)
        self.conv1, self.act, self.conv2 = nn.Conv2d(c, c, 3, 1, 1), nn.LeakyReLU(0.2), nn.Conv2d(c, c, 3, 1, 1)
        self.expand, self.shuffle = nn.Conv2d(c, 4 * c, 3, 1, 1), nn.PixelShuffle(2)
        self.prelu = nn.PReLU(c)
        self.tail = nn.Conv2d(c, 3, 3, 1, 1)

    def forward(self, x):
        h = self.head(x)
        h = h + self.conv2(self.act(self.conv1(h)))
        return self.tail(self.prelu(self.shuffle(self.expand(h))))


class Upsamplers(nn.Module):
    def __init__(self, c=16):
        super().__init__()
        self.conv = nn.Conv2d(3, c, 3, 1, 1)
        self.gelu = nn.GELU()

    def forward(self, x):
        h = self.gelu(self.conv(x))
        a = nn.functional.interpolate(h, scale_factor=2, mode="nearest")
        b = nn.functional.interpolate(h, scale_factor=2, mode="bilinear", align_corners=True)
        return a + b


class TinyTransformer(nn.Module):
    """Ops without a VPU cost: LayerNorm, attention MatMul; Softmax runs on the DSP."""

    def __init__(self):
        super().__init__()
        self.emb, self.ln = nn.Linear(16, 32), nn.LayerNorm(32)

    def forward(self, x):
        h = self.ln(self.emb(x))
        return torch.softmax(h @ h.transpose(1, 2), -1) @ h


def _export(module, shape, path, **kw):
    module.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, torch.randn(*shape), str(path), dynamo=False, opset_version=17, **kw)
    return path


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("lint_models")
    torch.manual_seed(0)
    return {
        "mbv2": _export(TinyMobileNetV2(), (1, 3, 32, 32), d / "mbv2.onnx"),
        "edsr": _export(TinyEDSR(), (1, 3, 24, 32), d / "edsr.onnx"),
        "ups": _export(Upsamplers(), (1, 3, 16, 16), d / "ups.onnx"),
        "tfm": _export(TinyTransformer(), (1, 8, 16), d / "tfm.onnx"),
        "dyn": _export(TinyMobileNetV2(), (1, 3, 32, 32), d / "dyn.onnx", input_names=["image"],
                       dynamic_axes={"image": {0: "N", 2: "H", 3: "W"}}),
    }


def _items(path, **kw):
    return lint.map_graph(lint.load_graph(path, kw.pop("input_shapes", None)), **kw)


def _by_op(items, op_prefix):
    return [it for it in items if it.op.split("+")[0] == op_prefix]


# ----------------------------------------------------------------------------------------- graph mapping
def test_mobilenetv2_maps_to_dpu_layers_with_fused_activations(models):
    items = _items(models["mbv2"])
    units = {it.op: it.unit for it in items}
    assert all(it.unit in ("DPU", "free") for it in items), units
    convs = _by_op(items, "Conv")
    assert [type(it.spec).__name__ for it in convs] == ["Conv2d", "Conv2d", "DepthwiseConv2d", "Conv2d", "Conv2d"]
    # ReLU6 (Clip 0..6) fuses into stem / expand / depthwise, ReLU into the head; the projection stays linear.
    assert [it.spec.act for it in convs] == ["relu6", "relu6", "relu6", "none", "relu"]
    assert convs[0].op == "Conv+Clip" and convs[0].spec.stride == 2 and convs[0].spec.out_shape == (16, 16, 16)
    assert isinstance(_by_op(items, "Add")[0].spec, ops.Add)
    assert isinstance(_by_op(items, "GlobalAveragePool")[0].spec, ops.GlobalAvgPool)
    assert _by_op(items, "Gemm")[0].spec == ops.Linear(24, 10)


def test_batchnorm_and_bias_fold_into_conv_onnx_helper():
    """Conv -> BatchNormalization -> Relu, built by hand (torch folds BN itself): one DPU item."""
    c = 16
    inits = [numpy_helper.from_array(np.ones((c, 8, 3, 3), np.float32), "w")]
    inits += [numpy_helper.from_array(np.ones(c, np.float32), n) for n in ("s", "b", "m", "v")]
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["y", "s", "b", "m", "v"], ["z"]),
             helper.make_node("Relu", ["z"], ["out"])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 20, 20])],
                          [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    items = lint.map_graph(_graph_from_model(model))
    assert len(items) == 1
    assert items[0].op == "Conv+BatchNormalization+Relu"
    assert items[0].spec == ops.Conv2d(8, 16, 3, 1, 20, 20, act="relu", bias=False)


def _graph_from_model(model, tmp=None):
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        p = f"{d}/m.onnx"
        onnx.save(model, p)
        return lint.load_graph(p)


def test_edsr_leakyrelu_fuses_and_depth_to_space_runs_on_dsp(models):
    items = _items(models["edsr"])
    conv1 = [it for it in items if it.op == "Conv+LeakyRelu"]
    assert len(conv1) == 1 and conv1[0].spec.act == "leaky_relu" and conv1[0].unit == "DPU"
    d2s = _by_op(items, "DepthToSpace")[0]
    assert d2s.unit == "DSP" and d2s.spec == ops.DepthToSpace(128, 2, 24, 32)
    prelu = _by_op(items, "PRelu")[0]  # per-channel slope, after the shuffle: a stand-alone DSP activation
    assert prelu.unit == "DSP" and prelu.spec == ops.Activation("prelu", 32, 48, 64)
    # The whitepaper's view of the VPU 2.7 compiler: LeakyReLU stays on the DSP.
    items = _items(models["edsr"], leaky_relu_on_dsp=True)
    leaky = _by_op(items, "LeakyRelu")
    assert len(leaky) == 1 and leaky[0].unit == "DSP" and leaky[0].spec.kind == "leaky_relu"


def test_resize_modes_and_decomposed_gelu(models):
    items = _items(models["ups"])
    ups = [it.spec for it in _by_op(items, "Resize")]
    assert ops.Upsample("nearest", 2, 16, 16, 16) in ups
    assert ops.Upsample("bilinear", 2, 16, 16, 16, align_corners=True) in ups
    gelu = [it for it in items if it.op == "Gelu"]
    assert len(gelu) == 1 and gelu[0].spec == ops.Activation("gelu", 16, 16, 16) and len(gelu[0].fused) == 4


def test_ops_without_cost_are_listed_not_fatal(models):
    items = _items(models["tfm"])
    unknown = [it.op for it in items if it.unit == "unknown"]
    assert unknown == ["LayerNormalization", "MatMul", "MatMul"]
    assert [it.unit for it in _by_op(items, "Softmax")] == ["DSP"]
    # The embedding MatMul has a constant weight: a 1x1 conv over the 8 tokens, bias folded in.
    emb = items[0]
    assert emb.op == "MatMul+Add" and emb.spec == ops.Conv2d(16, 32, 1, 1, 1, 8)
    # A DSP op without a SHAVE cost model becomes unknown, never an error.
    items = _items(models["tfm"], shave_kernels={"sigmoid"})
    assert [it.unit for it in _by_op(items, "Softmax")] == ["unknown"]


def test_dynamic_input_needs_input_shape(models):
    with pytest.raises(lint.LintInputError, match=r"--input-shape image=1,3,1,1"):
        lint.load_graph(models["dyn"])
    items = _items(models["dyn"], input_shapes=lint.parse_input_shapes(["image=2,3,64,64"]))
    assert items[0].spec.in_h == 64 and items[0].batch == 2
    with pytest.raises(lint.LintInputError, match="expects 4"):
        lint.load_graph(models["dyn"], lint.parse_input_shapes(["1,3,64"]))
    with pytest.raises(lint.LintInputError, match="positive integers"):
        lint.parse_input_shapes(["1,3,x,64"])


def test_not_onnx_is_a_clear_error(tmp_path):
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"this is not a protobuf \x00\xff\x13" * 10)
    with pytest.raises(lint.LintInputError, match="not an ONNX model"):
        lint.load_graph(bad)
    with pytest.raises(FileNotFoundError):
        lint.load_graph(tmp_path / "missing.onnx")
