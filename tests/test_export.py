"""Derive -> plain nn.Module -> arch JSON round trip -> ONNX -> OpenVINO IR (outputs checked) -> bench, report."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from vpunas import export
from vpunas.models.mbconv_net import MBConvNet, parse_block_string
from vpunas.models.mobilenetv2 import mobilenetv2_arch
from _nas_tiny import one_thread, tiny_space

_one_thread = pytest.fixture(autouse=True)(one_thread)


def _randomize_bn(model: nn.Module) -> None:
    """Non-trivial BN statistics so that the exported outputs are not near zero."""
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.5, generator=g)


def test_block_strings():
    assert parse_block_string("ir_k5_e6_c48_s2") == {"op": "ir", "kernel": 5, "expand": 6, "out_ch": 48, "stride": 2}
    assert parse_block_string("skip") == {"op": "skip"}
    for bad in ("ir_k4_e6_c48_s2", "ir_k5_e6_c48", "conv3x3", "ir_k5_e6_c48_s3"):
        with pytest.raises(ValueError, match="block string"):
            parse_block_string(bad)


def test_derived_net_is_plain_and_matches_supernet_path(tmp_path):
    space = tiny_space()
    choices = [4, 1, 2]  # skip, k3_e3, k5_e1
    arch = space.derive(choices)
    assert arch["blocks"][1] == "skip" and arch["blocks"][2] == "ir_k3_e3_c16_s1"
    model = export.build_model(arch)
    assert not any("supernet" in type(m).__module__ for m in model.modules())
    # the derived net has the same parameter shapes as the supernet's chosen paths
    net = space.build_supernet()
    chosen = [p.numel() for blk, c in zip(net.blocks, choices) for p in blk.mixed.candidates[c].parameters()]
    derived = [p.numel() for p in model.blocks.parameters()]
    first = sum(p.numel() for p in net.stem[1].parameters())
    assert sum(derived) == sum(chosen) + first
    arch_path, weights = export.save_model(model, arch, tmp_path, "net")
    again = export.load_model(arch_path, weights)
    x = torch.randn(2, 1, 8, 8)
    torch.testing.assert_close(again(x), model.eval()(x))
    assert space.choices_from_arch(json.loads(arch_path.read_text())) == choices
    with pytest.raises(ValueError, match="not a vpunas arch"):
        (tmp_path / "bad.json").write_text("{}")
        export.load_arch(tmp_path / "bad.json")


def test_onnx_and_openvino_outputs_match_torch(tmp_path):
    space = tiny_space()
    model = export.build_model(space.derive([0, 4, 3]))
    _randomize_bn(model)
    info = export.export_onnx(model, space.input_size, tmp_path / "m.onnx")
    assert info["max_abs_err_vs_torch"] < 1e-4
    ir = export.export_openvino(tmp_path / "m.onnx", tmp_path / "m.xml", model, space.input_size)
    assert (tmp_path / "m.bin").is_file() and ir["max_abs_err_vs_torch"] < 1e-4
    # the check really compares: a different model must fail it
    other = export.build_model(space.derive([1, 4, 3]))
    _randomize_bn(other)
    with pytest.raises(RuntimeError, match="check failed"):
        export.export_openvino(tmp_path / "m.onnx", tmp_path / "m2.xml", other, space.input_size)

    from vpunas.bench import benchmark, format_table

    res = benchmark(tmp_path / "m.onnx", warmup=2, repeats=5)
    assert [r["runtime"] for r in res] == ["openvino", "onnxruntime"]
    assert all(r["fps"] > 0 and r["median_ms"] > 0 for r in res)
    assert "m.onnx" in format_table(res)
    assert benchmark(tmp_path / "m.xml", warmup=1, repeats=3)[0]["precision"] == "f32"
    with pytest.raises(FileNotFoundError):
        benchmark(tmp_path / "nope.onnx")


def test_baseline_is_mobilenetv2_style():
    space = tiny_space(expands=(3, 6))
    arch = mobilenetv2_arch(space)
    assert all(b.startswith("ir_k3_e6") for b in arch["blocks"][1:])
    model = MBConvNet(arch)
    assert model(torch.randn(1, 1, 8, 8)).shape == (1, 3)
    with pytest.raises(ValueError):
        mobilenetv2_arch(tiny_space())  # no e6 candidate in this space


def test_report_writes_markdown_and_png(tmp_path):
    from vpunas.report import write_report

    rows = [{"name": "searched", "top1": 90.1, "params": 1000, "macs": 20000, "lat_VPU_2_0_ms": 0.1,
             "lat_VPU_2_7_ms": 0.05, "fps_openvino_cpu": 2000.0},
            {"name": "baseline", "is_baseline": True, "top1": 90.3, "params": 2000, "macs": 40000,
             "lat_VPU_2_0_ms": 0.2, "lat_VPU_2_7_ms": 0.08, "fps_openvino_cpu": 1000.0}]
    hist = [{"epoch": 0, "expected_latency_ms": 0.2, "derived_latency_ms": 0.2},
            {"epoch": 1, "expected_latency_ms": 0.12, "derived_latency_ms": 0.1}]
    md = write_report(tmp_path, rows, history=hist)
    text = md.read_text()
    assert "| searched | 90.10 |" in text and "2.00x lower" in text and "-0.20 points" in text
    assert (tmp_path / "report.png").stat().st_size > 1000
