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
        "mbv2": _export(TinyMobileNetV2(), (1, 3, 16, 16), d / "mbv2.onnx"),
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
    assert convs[0].op == "Conv+Clip" and convs[0].spec.stride == 2 and convs[0].spec.out_shape == (16, 8, 8)
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
    with pytest.raises(lint.LintInputError, match=r"--input-shape image=1,3,<H>,<W>"):
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


# ------------------------------------------------------------------------------------------------ costing
@pytest.fixture(scope="session")
def source():
    from vpunas.lut import VpuCostSource

    return VpuCostSource(DEVICE, model=str(model_path("vpu_2_7.vpunn")), dtype="UINT8")


def _layer_ms(source, layers):
    """Reference: the layer cost model directly on hand-written VPUNN layers, cycles -> ms at 1300 MHz."""
    from vpunas.costmodel import DEVICES, is_error
    from vpunas.layercost import LayerCostModel
    from vpunas.lut import layers_to_records

    cycles = LayerCostModel(source.dpu_model).layer_cycles(layers_to_records(layers))
    assert not any(is_error(c) for c in cycles)
    return float(np.sum(cycles.astype(np.float64))) / (DEVICES[DEVICE] * 1e3)


def test_conv_latency_equals_layer_cost_model(models, source):
    report = lint.lint_model(models["mbv2"], cost_source=source)
    by_node = {it.node: it for it in report.items}
    L = ops.DpuLayer
    expected = {  # node -> the VPUNN layer written out by hand from the model definition (W, H, C order)
        "/stem/stem.0/Conv": L("CONVOLUTION", 16, 16, 3, 8, 8, 16, 3, 3, 2, 2, 1, 1, 1, 1, "RELU", "UINT8", DEVICE),
        "/expand/expand.0/Conv": L("CONVOLUTION", 8, 8, 16, 8, 8, 96, activation="RELU", device=DEVICE),
        "/dw/dw.0/Conv": L("DW_CONVOLUTION", 8, 8, 96, 8, 8, 96, 3, 3, 1, 1, 1, 1, 1, 1, "RELU", "UINT8", DEVICE),
        "/project/project.0/Conv": L("CONVOLUTION", 8, 8, 96, 8, 8, 16, device=DEVICE),
        "/head/head.0/Conv": L("CONVOLUTION", 8, 8, 16, 8, 8, 32, activation="RELU", device=DEVICE),  # 24 -> 32
    }
    for node, layer in expected.items():
        assert by_node[node].dpu_ms == pytest.approx(_layer_ms(source, [layer]), rel=1e-12), node
        assert by_node[node].dsp_ms == 0.0
    edsr = {it.node: it for it in lint.lint_model(models["edsr"], cost_source=source).items}
    leaky = L("CONVOLUTION", 32, 24, 32, 32, 24, 32, 3, 3, 1, 1, 1, 1, 1, 1, "LRELU", "UINT8", DEVICE)
    assert edsr["/conv1/Conv"].dpu_ms == pytest.approx(_layer_ms(source, [leaky]), rel=1e-12)
    # The total is the sum of the rows; fps follows from it.
    assert report.total_ms == pytest.approx(sum(it.ms or 0.0 for it in report.items))
    assert report.fps == pytest.approx(1000.0 / report.total_ms)


def test_searched_mbconv_net_costs_like_the_lut(tmp_path, source):
    from vpunas.models.mbconv_net import MBConvNet
    from vpunas.spaces.mbconv import MBConvSpace

    space = MBConvSpace("small-32")
    choices = space.sample_arch(np.random.default_rng(3))
    net = MBConvNet(space.derive(choices))
    path = _export(net, (1, *space.input_size), tmp_path / "searched.onnx")
    report = lint.lint_model(path, cost_source=source)
    assert not report.unknown and not report.findings
    lut_ms = float(np.sum(source.latency_ms(space.chosen_ops(choices))))
    assert report.total_ms == pytest.approx(lut_ms, rel=1e-9)


def test_searched_edsr_net_costs_like_the_lut(tmp_path, source):
    """The SR space charges LeakyReLU on the DSP (the whitepaper's observation); lint does the same with
    leaky_relu_on_dsp=True and then predicts exactly the LUT's latency."""
    from vpunas.spaces.edsr import EdsrSpace

    space = EdsrSpace(input_hw=(24, 40))
    leaky = 1 + next(i for i, c in enumerate(space.res_choices) if c.act == "leaky_relu")
    arch = space.arch_from_indices([leaky, 0, 1, 0, space.upsamplers.index("d2s")])
    path = _export(space.build_net(arch), (1, 3, 24, 40), tmp_path / "sr.onnx")
    report = lint.lint_model(path, cost_source=source, leaky_relu_on_dsp=True)
    lut_ms = float(np.sum(source.latency_ms(arch.ops(24, 40))))
    assert report.total_ms == pytest.approx(lut_ms, rel=1e-9)
    kinds = {(f.kind, f.node.split("/")[-1]): f for f in report.findings}
    assert ("dsp_op", "LeakyRelu") in kinds and ("dsp_op", "DepthToSpace") in kinds
    assert kinds[("dsp_op", "LeakyRelu")].replacement.startswith("ReLU fused into")


# ----------------------------------------------------------------------------------------------- findings
def test_findings_channels_and_dsp_replacements(models, source):
    report = lint.lint_model(models["edsr"], cost_source=source)
    f = {(x.kind, x.node): x for x in report.findings}
    d2s = f[("dsp_op", "/shuffle/DepthToSpace")]
    assert d2s.current_ms == pytest.approx(_by_op(report.items, "DepthToSpace")[0].dsp_ms)
    # Replacement: ConvTranspose 128->32, k2 s2 = an unpadded 2x2 conv over the zero-upsampled 49x65 map.
    deconv = ops.DpuLayer("CONVOLUTION", 65, 49, 128, 64, 48, 32, 2, 2, device=DEVICE)
    assert d2s.replacement_ms == pytest.approx(_layer_ms(source, [deconv]), rel=1e-12)
    assert d2s.saving_ms == pytest.approx(max(0.0, d2s.current_ms - d2s.replacement_ms))
    prelu = f[("dsp_op", "/prelu/PRelu")]
    assert prelu.saving_ms == pytest.approx(prelu.current_ms) and "LeakyReLU" in prelu.message
    # The 3-channel output conv is the network's output: its width is not a design choice, no finding.
    assert ("channels16", "/tail/Conv") not in f

    mb = lint.lint_model(models["mbv2"], cost_source=source)
    ch = [x for x in mb.findings if x.kind == "channels16"]
    assert [x.node for x in ch] == ["/head/head.0/Conv"]
    c16 = float(source.latency_ms([ops.Conv2d(16, 16, 1, 1, 8, 8, act="relu")])[0])
    assert ch[0].replacement_ms == pytest.approx(c16) and ch[0].saving_ms == pytest.approx(ch[0].current_ms - c16)

    ups = lint.lint_model(models["ups"], cost_source=source)
    gelu = [x for x in ups.findings if x.node == "/gelu/Mul_1"][0]  # decomposed GELU right after the conv
    assert gelu.replacement == "ReLU fused into /conv/Conv" and gelu.saving_ms > 0
    nearest = [x for x in ups.findings if "nearest" in x.message][0]
    dw = ops.DpuLayer("DW_CONVOLUTION", 33, 33, 16, 32, 32, 16, 2, 2, device=DEVICE)
    assert nearest.replacement_ms == pytest.approx(_layer_ms(source, [dw]), rel=1e-12)


def test_depthwise_pointwise_pair_on_large_activation_is_flagged(tmp_path, source):
    class Pair(nn.Module):
        def __init__(self):
            super().__init__()
            self.dw = nn.Conv2d(64, 64, 3, 1, 1, groups=64)
            self.pw = nn.Conv2d(64, 64, 1)

        def forward(self, x):
            return self.pw(torch.relu(self.dw(x)))

    path = _export(Pair(), (1, 64, 160, 160), tmp_path / "pair.onnx")
    report = lint.lint_model(path, cost_source=source)
    pair = [f for f in report.findings if f.kind == "dma_pair"]
    assert len(pair) == 1 and "CMX" in pair[0].message
    plain = float(source.latency_ms([ops.Conv2d(64, 64, 3, 1, 160, 160)])[0])
    assert pair[0].replacement_ms == pytest.approx(plain)
    dw, pw = (it.ms for it in report.items)
    assert pair[0].current_ms > dw + pw  # the DDR round trip of the intermediate tensor is added
    small = lint.lint_model(_export(Pair(), (1, 64, 16, 16), tmp_path / "small.onnx"), cost_source=source)
    assert not [f for f in small.findings if f.kind == "dma_pair"]


# -------------------------------------------------------------------------------------------------- CLI
@pytest.fixture(autouse=False)
def lint_cli(monkeypatch):
    """`vpunas.cli.main` with only the lint command registered, so other commands' imports cannot interfere."""
    import vpunas.cli

    monkeypatch.setattr(vpunas.cli, "COMMAND_MODULES", ["vpunas.commands.lint"])
    return cli_main


def test_cli_text_json_png_and_fail_on(models, tmp_path, capsys, lint_cli):
    vpunn = str(model_path("vpu_2_7.vpunn"))
    assert cli_main(["lint", str(models["edsr"]), "--model", vpunn]) == 0
    out = capsys.readouterr().out
    assert "Total predicted latency" in out and "DepthToSpace" in out and "fps" in out
    png, js = tmp_path / "edsr.png", tmp_path / "edsr.json"
    assert cli_main(["lint", str(models["edsr"]), "--device", DEVICE, "--model", vpunn, "--json", str(js),
                     "--png", str(png)]) == 0
    capsys.readouterr()
    assert png.stat().st_size > 1000 and png.read_bytes()[:4] == b"\x89PNG"
    data = json.loads(js.read_text())
    assert data["format"] == "vpunas-lint" and data["device"] == DEVICE and not data["estimate"]
    assert sum(r["ms"] or 0 for r in data["layers"]) == pytest.approx(data["total_ms"])
    assert cli_main(["lint", str(models["edsr"]), "--model", vpunn, "--fail-on", "warning"]) == 1
    assert cli_main(["lint", str(models["edsr"]), "--model", vpunn, "--fail-on", "error"]) == 0
    capsys.readouterr()
    # No --model: the theoretical model, labelled as an estimate.
    assert cli_main(["lint", str(models["tfm"]), "--device", DEVICE, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["estimate"] and data["unknown"] == ["/ln/LayerNormalization", "/MatMul", "/MatMul_1"]


def test_cli_bad_input_exit_code_2(models, tmp_path, capsys, lint_cli):
    bad = tmp_path / "bad.onnx"
    bad.write_text("not a model")
    assert cli_main(["lint", str(bad), "--device", DEVICE]) == 2
    assert "not an ONNX model" in capsys.readouterr().err
    assert cli_main(["lint", str(models["dyn"]), "--device", DEVICE]) == 2
    assert "--input-shape" in capsys.readouterr().err
    assert cli_main(["lint", str(models["dyn"]), "--device", DEVICE, "--input-shape", "1,3,16,16"]) == 0
    capsys.readouterr()
    assert cli_main(["lint", str(models["mbv2"]), "--model", str(tmp_path / "nope.vpunn")]) == 2
    assert "model file not found" in capsys.readouterr().err
    assert cli_main(["lint", str(models["mbv2"])]) == 2
    assert "--device" in capsys.readouterr().err
    assert cli_main(["lint", str(models["mbv2"]), "--device", "VPU_9"]) == 2
    assert "VPU_2_7" in capsys.readouterr().err


def test_unusual_nodes_never_crash(tmp_path, source):
    """Asymmetric padding, grouped and dilated convs, odd pools, concat, slice, reshape: each becomes a
    DPU / DSP / free / unknown row; nothing raises."""
    f32 = np.float32
    inits = [numpy_helper.from_array(np.ones((32, 16, 3, 3), f32), "w"),
             numpy_helper.from_array(np.ones((32, 8, 3, 3), f32), "wg"),
             numpy_helper.from_array(np.ones((32, 16, 3, 3), f32), "wd"),
             numpy_helper.from_array(np.array([0, 0, 0, 0], np.int64), "starts"),
             numpy_helper.from_array(np.array([1, 8, 9, 9], np.int64), "ends"),
             numpy_helper.from_array(np.array([1, -1], np.int64), "shape")]
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["a"], pads=[0, 0, 1, 1], name="asym"),  # 16x16 -> 15x15
        helper.make_node("Conv", ["x", "wg"], ["b"], pads=[1, 1, 1, 1], group=2, name="grouped"),
        helper.make_node("Conv", ["x", "wd"], ["c"], pads=[2, 2, 2, 2], dilations=[2, 2], name="dilated"),
        helper.make_node("Concat", ["b", "c"], ["d"], axis=1, name="concat"),
        helper.make_node("MaxPool", ["d"], ["e"], kernel_shape=[3, 2], strides=[2, 2], name="oddpool"),
        helper.make_node("Slice", ["e", "starts", "ends"], ["f"], name="slice"),
        helper.make_node("Reshape", ["f", "shape"], ["g"], name="reshape"),
        helper.make_node("Sigmoid", ["a"], ["h"], name="sigmoid"),
    ]
    graph = helper.make_graph(nodes, "odd", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 16, 16])],
                              [helper.make_tensor_value_info("g", TensorProto.FLOAT, None),
                               helper.make_tensor_value_info("h", TensorProto.FLOAT, None)], inits)
    path = tmp_path / "odd.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    report = lint.lint_model(path, cost_source=source)
    rows = {it.node: it for it in report.items}
    assert isinstance(rows["asym"].spec, lint.RawOp) and rows["asym"].spec.layers[0].pad_b == 1
    assert rows["grouped"].unit == "DPU" and len(rows["grouped"].spec.layers) == 2
    assert rows["dilated"].unit == "unknown" and "dilat" in rows["dilated"].note
    assert rows["concat"].unit == "free" and rows["reshape"].unit == "free"
    assert rows["oddpool"].unit == "DPU" and rows["oddpool"].spec.layers[0].k_h == 3
    assert rows["slice"].unit == "unknown" and rows["sigmoid"].unit == "DSP"
    assert all(rows[n].ms is not None and rows[n].ms > 0 for n in ("asym", "grouped", "oddpool", "sigmoid"))
    assert "Total predicted latency" in report.to_text() and json.loads(report.to_json())["layers"]


def test_quantized_qdq_model_maps_like_float():
    """QuantizeLinear / DequantizeLinear (int8 models from NNCF / onnxruntime) vanish on the VPU: the conv,
    its fused ReLU and the add are found as in the float model."""
    i8, f32 = np.int8, np.float32
    inits = [numpy_helper.from_array(np.ones((16, 16, 3, 3), i8), "wq"),
             numpy_helper.from_array(np.array(0.1, f32), "sc"), numpy_helper.from_array(np.array(0, i8), "zp")]
    q = lambda a, b: helper.make_node("QuantizeLinear", [a, "sc", "zp"], [b])  # noqa: E731
    dq = lambda a, b: helper.make_node("DequantizeLinear", [a, "sc", "zp"], [b])  # noqa: E731
    nodes = [q("x", "xq"), dq("xq", "xd"), dq("wq", "w"),
             helper.make_node("Conv", ["xd", "w"], ["y"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("Relu", ["y"], ["r"], name="relu"), q("r", "rq"), dq("rq", "rd"),
             helper.make_node("Add", ["rd", "xd"], ["out"], name="add")]
    graph = helper.make_graph(nodes, "qdq", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 12, 12])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)], inits)
    items = lint.map_graph(_graph_from_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])))
    assert [(it.node, it.op, it.unit) for it in items] == [("conv", "Conv+Relu", "DPU"), ("add", "Add", "DPU")]
    assert items[0].spec == ops.Conv2d(16, 16, 3, 1, 12, 12, act="relu", bias=False)


def test_global_pool_too_large_for_one_kernel_is_staged(tmp_path, source):
    path = _export(TinyMobileNetV2(), (1, 3, 32, 32), tmp_path / "mbv2_32.onnx")  # global pool over 16x16
    report = lint.lint_model(path, cost_source=source)
    gap = _by_op(report.items, "GlobalAveragePool")[0]
    assert not gap.error and "8x8 then 2x2" in gap.note
    L = ops.DpuLayer
    stages = [L("AVEPOOL", 16, 16, 32, 2, 2, 32, 8, 8, 8, 8, device=DEVICE),
              L("AVEPOOL", 2, 2, 32, 1, 1, 32, 2, 2, 2, 2, device=DEVICE)]
    assert gap.dpu_ms == pytest.approx(_layer_ms(source, stages), rel=1e-12)
    assert report.worst_severity() != "error"
