"""Latency look-up tables: build, file format, lookups, and parity of LUT entries with VPUNN's golden data."""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field

import numpy as np
import pytest

from vpunas import ops
from vpunas.lut import CostResult, LatencyTable, VpuCostSource, split_h, split_k
from tests.conftest import model_path

CLOCK_MHZ = {"VPU_2_0": 700.0, "VPU_2_7": 1300.0, "VPU_4_0": 1700.0}
MODEL_SHA256 = {"vpu_2_0": "afb764be0083ec64c2a12f2dc839f8745f9e49dbedc79b544e925d6fc14b774c",
                "vpu_2_7": "53317a0e3d92551a0d63e67b2ddd0ecb74761f8220d5d9cdf2772f45a4c9d9cf",
                "vpu_4_0": "2f6e9eb57b13982c719b44321b2d5b49ea2df34571a871cc2759afe555cf7eba"}


# ----- a tiny space and a stand-in cost source (format / lookup tests need no model files) -----------
@dataclass
class Block:
    name: str
    candidates: list


@dataclass
class TinySpace:
    name: str = "tiny"
    input_size: tuple = (16, 8, 8)
    blocks: list = field(default_factory=lambda: [
        Block("b0", [ops.MBConv(16, 32, 3, 3, 2, 8, 8), ops.MBConv(16, 32, 5, 6, 2, 8, 8)]),
        Block("b1", [ops.MBConv(32, 32, 3, 3, 1, 4, 4), ops.MBConv(32, 32, 5, 3, 1, 4, 4), ops.Skip(32, 4, 4)]),
    ])
    fixed_ops: list = field(default_factory=lambda: [ops.Conv2d(3, 16, 3, 1, 8, 8), ops.Linear(32, 10)])


class FakeSource:
    """Latency = MACs / 1e6 ms; ops whose key contains `fail` are refused. Records every call."""

    device, dtype = "VPU_2_7", "UINT8"

    def __init__(self, fail=()):
        self.fail, self.calls = set(fail), []

    def cost(self, items):
        self.calls.append([o.key for o in items])
        return [CostResult(float("nan"), error="ERROR_INPUT_TOO_BIG") if o.key in self.fail
                else CostResult(o.macs / 1e6, dpu_ms=o.macs / 1e6) for o in items]

    def metadata(self):
        return {"kind": "fake", "device": self.device, "dtype": self.dtype}


def test_build_dedups_and_costs_in_one_call():
    space = TinySpace()
    space.blocks.append(Block("b2", list(space.blocks[1].candidates)))  # same ops again
    src = FakeSource()
    table = LatencyTable.build(space, src, progress=False)
    assert len(src.calls) == 1
    keys = src.calls[0]
    assert len(keys) == len(set(keys)) == 2 + 3 + 2
    F, mask = table.matrix(space)
    assert F.shape == (3, 3) and mask.tolist() == [[True, True, False], [True, True, True], [True, True, True]]
    assert F[0, 1] == pytest.approx(space.blocks[0].candidates[1].macs / 1e6)
    assert F[1, 2] == 0.0 and F[0, 2] == 0.0  # skip costs nothing; padding is 0
    assert table.fixed_latency_ms(space) == pytest.approx(sum(o.macs for o in space.fixed_ops) / 1e6)
    assert table[space.fixed_ops[1].key] == table.latency_ms(space.fixed_ops[1])


def test_save_load_round_trip(tmp_path):
    space = TinySpace()
    table = LatencyTable.build(space, FakeSource(), progress=False)
    path = table.save(tmp_path / "lut.json")
    data = json.loads(path.read_text())
    assert (data["format"], data["version"], data["unit"], data["device"]) == ("vpunas-lut", 1, "ms", "VPU_2_7")
    assert {"key", "op", "latency_ms", "std_ms", "n"} <= set(data["entries"][0])
    loaded = LatencyTable.load(path)
    assert loaded.entries == table.entries and loaded.source == table.source
    F1, m1 = table.matrix(space)
    F2, m2 = loaded.matrix(space)
    np.testing.assert_array_equal(F1, F2)
    np.testing.assert_array_equal(m1, m2)
    # every stored op description rebuilds the op with the same key
    for e in data["entries"]:
        assert ops.op_from_dict(e["op"]).key == e["key"] == ops.op_from_key(e["key"]).key


def test_failed_entries_never_enter_a_matrix(tmp_path):
    space = TinySpace()
    bad = space.blocks[1].candidates[1].key
    table = LatencyTable.build(space, FakeSource(fail={bad}), progress=False)
    assert [e["key"] for e in table.failed()] == [bad]
    assert table.missing(space) == [bad]
    with pytest.raises(ValueError, match=bad):
        table.matrix(space)
    with pytest.raises(ValueError, match="failed to cost: ERROR_INPUT_TOO_BIG"):
        table.latency_ms(bad)
    loaded = LatencyTable.load(table.save(tmp_path / "t.json"))  # null latency survives strict JSON
    assert loaded.failed()[0]["error"] == "ERROR_INPUT_TOO_BIG"


def test_missing_ops_are_named():
    space = TinySpace()
    table = LatencyTable.build(space.blocks[0].candidates, FakeSource(), progress=False)
    missing = table.missing(space)
    assert space.blocks[1].candidates[0].key in missing and space.fixed_ops[0].key in missing
    assert space.blocks[1].candidates[2].key not in missing  # skip needs no entry
    with pytest.raises(ValueError, match=r"lacks 4 op\(s\).*" + space.blocks[1].candidates[0].key):
        table.matrix(space)
    with pytest.raises(ValueError, match="has no entry for op"):
        table.latency_ms(space.fixed_ops[0])


@pytest.mark.parametrize("content, message", [
    ('{"format": "vpunas-lut", "version": 1, "source": {}, "entries": [{"key": "a", "lat', "not valid JSON"),
    ('[1, 2]', "not a vpunas LUT"),
    ('{"format": "other"}', "not a vpunas LUT"),
    ('{"format": "vpunas-lut", "version": 7, "source": {}, "entries": []}', "version 7"),
    ('{"format": "vpunas-lut", "version": 1, "entries": []}', "'source'"),
    ('{"format": "vpunas-lut", "version": 1, "source": {}, "entries": [{"latency_ms": 1}]}', "entry 0 is malformed"),
    ('{"format": "vpunas-lut", "version": 1, "source": {}, "entries": [{"key": "a", "latency_ms": -1}]}',
     "invalid latency_ms -1"),
    ('{"format": "vpunas-lut", "version": 1, "source": {}, "entries": [{"key": "a", "latency_ms": 1}, '
     '{"key": "a", "latency_ms": 2}]}', "repeats key"),
    ('{"format": "vpunas-lut", "version": 1, "unit": "us", "source": {}, "entries": []}', "unit"),
])
def test_bad_files_raise_value_error_naming_the_file(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as info:
        LatencyTable.load(path)
    assert str(path) in str(info.value)


def test_reads_measured_tables():
    data = {"format": "vpunas-lut", "version": 1, "device": "CPU", "unit": "ms",
            "source": {"kind": "measured", "runtime": "openvino 2026.4.1", "device": "CPU"},
            "entries": [{"key": "add_c16_4x4", "op": {"type": "Add", "ch": 16, "h": 4, "w": 4}, "latency_ms": 0.01,
                         "std_ms": 0.001, "n": 20}]}
    table = LatencyTable.from_json(data)
    assert table.latency_ms(ops.Add(16, 4, 4)) == 0.01


def test_split_helpers_cover_the_layer():
    layer = ops.Conv2d(64, 96, 3, 2, 57, 40).dpu_layers("VPU_2_0")[0]
    for n in (2, 3, 5):
        strips = split_h(layer, n)
        assert sum(s.out_h for s in strips) == layer.out_h
        assert strips[0].pad_t == 1 and strips[-1].pad_b == layer.pad_b and strips[0].pad_b == 0
        assert all((s.in_h + s.pad_t + s.pad_b - 3) // 2 + 1 == s.out_h for s in strips)
        groups = split_k(layer, n)
        assert sum(g.out_c for g in groups) == 96 and all(g.out_c % 16 == 0 and g.in_c == 64 for g in groups)
    assert split_h(ops.Linear(64, 64).dpu_layers("VPU_2_7")[0], 2) is None


# ----- real cost models: LUT entries agree with VPUNN's golden layer / SHAVE answers ------------------
def _golden_layer_ops(path, device):
    """(op, golden cycles) for UINT8 'natural' BEST rows that one of our op specs produces exactly."""
    out = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            if (r["config"], r["strategy"], r["in_dtype"], r["activation"]) != ("natural", "BEST", "UINT8", "NONE"):
                continue
            if r["cycles_error"] or r["source"] not in ("mbconv_expand", "mbconv_project", "mbconv_dw",
                                                        "mbconv_add", "stem_head", "edsr_conv"):
                continue
            g = {k: int(r[k]) for k in ("in_w", "in_h", "in_c", "out_c", "k_w", "s_w", "pad_t", "pad_l")}
            if r["op"] == "CONVOLUTION":
                op = ops.Conv2d(g["in_c"], g["out_c"], g["k_w"], g["s_w"], g["in_h"], g["in_w"], padding=g["pad_t"])
            elif r["op"] == "DW_CONVOLUTION":
                op = ops.DepthwiseConv2d(g["in_c"], g["k_w"], g["s_w"], g["in_h"], g["in_w"])
            elif r["op"] == "ELTWISE":
                op = ops.Add(g["in_c"], g["in_h"], g["in_w"])
            elif r["op"] == "MAXPOOL":
                op = ops.Pool("max", g["in_c"], g["k_w"], g["s_w"], g["in_h"], g["in_w"], g["pad_t"])
            else:
                continue
            layer = op.dpu_layers(device, "UINT8")[0]
            same = all(str(getattr(layer, k)) == r[k] for k in ("op", "in_w", "in_h", "in_c", "out_w", "out_h", "out_c",
                                                                 "k_w", "k_h", "s_w", "s_h", "pad_t", "pad_b", "pad_l",
                                                                 "pad_r"))
            if same:
                out.append((op, int(r["cycles"])))
    return out


@pytest.mark.parametrize("stem, device", [("vpu_2_0", "VPU_2_0"), ("vpu_2_7", "VPU_2_7"), ("vpu_4_0", "VPU_4_0")])
def test_lut_entries_equal_golden_layer_costs(golden_dir, stem, device):
    pairs = _golden_layer_ops(golden_dir / f"layer_{stem}.csv", device)
    assert len(pairs) >= 40, f"only {len(pairs)} golden layers map onto op specs"
    source = VpuCostSource(device, model=str(model_path(f"{stem}.vpunn")))
    table = LatencyTable.build([op for op, _ in pairs], source, progress=False)
    assert not table.failed()
    for op, cycles in pairs:
        assert table.latency_ms(op) == pytest.approx(cycles / (CLOCK_MHZ[device] * 1e3), rel=1e-12), op.key
    meta = table.source
    assert meta["kind"] == "vpunn" and meta["model"] == f"{stem}.vpunn" and meta["device"] == device
    assert meta["sha256"] == MODEL_SHA256[stem]  # the hashes the golden README lists


def test_mbconv_entry_is_the_sum_of_its_layers(golden_dir):
    source = VpuCostSource("VPU_2_7", model=str(model_path("vpu_2_7.vpunn")))
    block = ops.MBConv(32, 32, 3, 6, 1, 28, 28)
    parts = block.parts()
    table = LatencyTable.build([block, *parts], source, progress=False)
    assert table.latency_ms(block) == pytest.approx(sum(table.latency_ms(p) for p in parts), rel=1e-12)


def test_shave_entry_equals_golden(golden_dir, shave_dir):
    # golden: legacy SHAVE DepthToSpace, UINT8, input 112x112x64 -> output 224x224x16 on VPU_2_7
    with open(golden_dir / "shave_vpu_2_7.csv", newline="") as f:
        row = next(r for r in csv.DictReader(f) if r["op_name"] == "DepthToSpace" and r["in_dtype"] == "UINT8"
                   and r["in_c"] == "64" and r["in_w"] == "112" and r["api"] == "SHAVE")
    source = VpuCostSource("VPU_2_7", model=str(model_path("vpu_2_7.vpunn")), shave_params=shave_dir)
    table = LatencyTable.build([ops.DepthToSpace(64, 2, 112, 112)], source, progress=False)
    assert table.latency_ms("d2s_b2_c64_112x112") == pytest.approx(int(row["cycles"]) / 1.3e6, rel=1e-12)


def test_theoretical_source_is_labelled_an_estimate():
    table = LatencyTable.build(TinySpace().blocks[0].candidates, VpuCostSource("VPU_2_7"), progress=False)
    assert table.source["kind"] == "theoretical" and "estimate" in table.source["note"]
    assert table.source["model"] is None and not table.failed()


def test_device_mismatch_is_an_error():
    with pytest.raises(ValueError, match="does not match"):
        VpuCostSource("VPU_4_0", model=str(model_path("vpu_2_7.vpunn")))


# ----- CLI ---------------------------------------------------------------------------------------------
def _cli(argv):
    import argparse

    from vpunas.commands import lut as lut_cmd

    parser = argparse.ArgumentParser(prog="vpunas")
    lut_cmd.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_build_and_show(tmp_path, capsys):
    out = tmp_path / "small.json"
    rc = _cli(["lut", "build", "--space", "mbconv", "--preset", "small-32", "--input", "32", "--device", "VPU_2_7",
               "--no-progress", "-o", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "THEORETICAL ESTIMATE" in printed and str(out) in printed
    table = LatencyTable.load(out)
    assert table.source["kind"] == "theoretical" and table.space["registry"] == "mbconv"
    assert _cli(["lut", "show", str(out), "--png", str(tmp_path / "m.png")]) == 0
    shown = capsys.readouterr().out
    assert "stage1.block1" in shown and "ir_k3_e3" in shown and "fixed ops:" in shown
    assert (tmp_path / "m.png").stat().st_size > 1000
    assert _cli(["lut", "show", str(out), "--flat"]) == 0
    assert "mbconv_k3_e3_s2_i16_o32_32x32_act-relu6" in capsys.readouterr().out


def test_cli_input_parsing():
    from vpunas.spaces import parse_input_size
    from vpunas.spaces import space_kwargs_from_cli as space_kwargs

    assert parse_input_size("224") == (224, 224) and parse_input_size("360x640") == (360, 640)
    assert space_kwargs("mbconv", None, "224") == {"preset": "mobilenetv2-224", "resolution": 224}
    assert space_kwargs("mbconv", None, "32")["preset"] == "small-32"
    assert space_kwargs("edsr", None, "90x160") == {"input_hw": [90, 160]}
    with pytest.raises(ValueError, match="224 or 360x640"):
        parse_input_size("big")
    with pytest.raises(ValueError, match="square"):
        space_kwargs("mbconv", None, "32x48")


def test_shave_proxy_is_recorded_and_uses_golden_kernel_cost(golden_dir, shave_dir):
    # VPUNN has no leaky-ReLU kernel model on VPU 2.7: the entry uses the legacy Clamp kernel and says so
    with open(golden_dir / "shave_vpu_2_7.csv", newline="") as f:
        row = next(r for r in csv.DictReader(f) if r["api"] == "SHAVE" and r["op_name"] == "Clamp"
                   and r["in_dtype"] == "UINT8" and (r["in_w"], r["in_h"], r["in_c"]) == ("112", "112", "16"))
    source = VpuCostSource("VPU_2_7", model=str(model_path("vpu_2_7.vpunn")), shave_params=shave_dir)
    op = ops.Activation("leaky_relu", 16, 112, 112)
    table = LatencyTable.build([op], source, progress=False)
    assert table.latency_ms(op) == pytest.approx(int(row["cycles"]) / 1.3e6, rel=1e-12)
    assert "Clamp" in table.entries[op.key]["notes"][0]
