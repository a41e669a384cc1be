"""SHAVE (DSP) kernel costs vs VPUNN's golden shave_<device>.csv: exact parity.

Rows under api=SHAVE (legacy per-operator table) and api=shave2 (fitted kernels from the parameter CSVs)
must match exactly, error codes included. Kernels whose parameters are built into VPUNN and not in the
files (MVN*, interpolatewh_1, softmax, gather, normalizel2onlyc, vpuem.*) must be refused with a clear
ValueError instead of a wrong number.
"""
from __future__ import annotations

import csv
from collections import Counter

import pytest

from vpunas.layercost import ShaveCostModel, error_name


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("device,stem", [("VPU_2_7", "vpu_2_7"), ("VPU_4_0", "vpu_4_0")])
def test_shave_parity(device, stem, golden_dir, shave_dir, capsys):
    model = ShaveCostModel(device, params_dir=shave_dir)
    counts = Counter()
    mismatches = []
    for r in _rows(golden_dir / f"shave_{stem}.csv"):
        api = r["api"]
        out_shape = (int(r["out_b"]), int(r["out_c"]), int(r["out_h"]), int(r["out_w"]))
        in_shape = (int(r["in_b"]), int(r["in_c"]), int(r["in_h"]), int(r["in_w"]))
        name = r["op_name"]
        if api == "shave2" and model._m.is_builtin_without_params(name):
            with pytest.raises(ValueError, match="not in the parameter files"):
                model.cycles(name, in_shape, out_shape, dtype=r["out_dtype"], api=api)
            counts[(api, "unsupported")] += 1
            continue
        assert r["in_layout"] == r["out_layout"]
        ours = model.cycles(name, in_shape, out_shape, dtype=r["out_dtype"], api=api, layout=r["in_layout"])
        golden = int(r["cycles"])
        if ours == golden:
            counts[(api, "exact")] += 1
        else:
            counts[(api, "mismatch")] += 1
            mismatches.append((r["id"], api, name, r["out_dtype"], out_shape, golden, ours, error_name(ours)))
    with capsys.disabled():
        print(f"\nSHAVE parity {device}: " + ", ".join(f"{a}/{k}={v}" for (a, k), v in sorted(counts.items())))
    assert not mismatches, f"{len(mismatches)} mismatches, e.g. {mismatches[:5]}"
    assert counts[("SHAVE", "exact")] > 1000 and counts[("shave2", "exact")] > 1000


def test_shave_api_and_errors(shave_dir, tmp_path):
    m = ShaveCostModel("VPU_2_7", params_dir=shave_dir)
    assert "sigmoid" in m.operators("shave2") and "Sigmoid" in m.operators("SHAVE")
    assert m.runs_on_dsp("sigmoid") and m.runs_on_dsp("HardSwish")
    assert not m.runs_on_dsp("relu") and not m.runs_on_dsp("ReLU6")
    assert m.runs_on_dsp("prelu") and m.runs_on_dsp("interpolate_nearest")  # DSP, even without a VPU 2.7 model
    # VPUNN's interpolation model reads the input width for W and H; only the strict XYZ layout is accepted
    up = m.cycles("interpolatewh_1", (16, 90, 160), (16, 180, 320))
    assert up == m.cycles("interpolatewh_1", (16, 160, 160), (16, 180, 320)) and up < 4294966295
    assert error_name(m.cycles("interpolatewh_1", (16, 7, 7), (16, 14, 14), layout="ZXY")) == "ERROR_SHAVE_PARAMS"
    with pytest.raises(ValueError, match="unknown operator"):
        m.runs_on_dsp("no_such_kernel")
    # names VPUNN does not know give its own error code
    assert error_name(m.cycles("Relu", (16, 7, 7), (16, 7, 7), api="SHAVE")) == "ERROR_SHAVE_OPERATOR_MISSING"
    batch = m.cycles_batch([("sigmoid", (16, 14, 14), (16, 14, 14)), ("hswish", (32, 7, 7), (32, 7, 7))])
    assert batch.dtype.name == "uint32" and len(batch) == 2 and (batch > 0).all()
    with pytest.raises(ValueError, match="out_shape"):
        m.cycles("sigmoid", (16, 7, 7), (16, 7))
    with pytest.raises(ValueError, match="api"):
        m.cycles("sigmoid", (16, 7, 7), (16, 7, 7), api="shave3")
    with pytest.raises(ValueError, match="params_dir"):
        ShaveCostModel("VPU_2_7", params_dir=tmp_path)  # folder without the files
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "layers_perf.csv").write_text("Layer Category, Kernel Name, Kernel Efficiency, Kernel Latency\n"
                                         "ACTIVATION, Sigmoid, abc, 12\n")
    with pytest.raises(ValueError, match="bad number"):
        ShaveCostModel("VPU_2_7", params_dir=bad)
