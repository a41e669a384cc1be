"""LayerCostModel API: defaults, errors, details, batching, robustness on hostile input (no crash)."""
from __future__ import annotations

import numpy as np
import pytest

from vpunas import _core
from vpunas.costmodel import ENUM_NAMES, TheoreticalCostModel, Workload, is_error, workloads_array
from vpunas.layercost import LayerCostModel, default_hardware, error_name, valid_strategies


def _conv(device="VPU_2_7", c_in=32, c_out=64, hw=28, k=3):
    layout = "ZMAJOR" if device == "VPU_2_0" else "ZXY"
    return Workload(device=device, op="CONVOLUTION", in_w=hw, in_h=hw, in_c=c_in, out_w=hw, out_h=hw, out_c=c_out,
                    k_w=k, k_h=k, pad_t=k // 2, pad_b=k // 2, pad_l=k // 2, pad_r=k // 2, in_layout=layout,
                    out_layout=layout)


def test_defaults_and_strategies():
    assert default_hardware("VPU_2_0") == (5, 1)
    assert default_hardware("VPU_2_7") == (1, 2)
    assert default_hardware("VPU_4_0") == (1, 6)
    assert valid_strategies("VPU_2_7") == ["NONE", "SOHO", "SOK"]
    assert "SOHO_K_SWITCH" in valid_strategies("VPU_4_0")
    m = LayerCostModel(TheoreticalCostModel("VPU_4_0"))
    assert (m.n_dpu, m.n_tiles) == (1, 6) and "6 tile" in m.describe()


def test_best_is_min_over_strategies_and_details():
    m = LayerCostModel(TheoreticalCostModel("VPU_2_7"))
    layers = workloads_array([_conv(), _conv(c_in=64, c_out=64, hw=56, k=1)])
    best = m.layer_cycles(layers)
    per = np.stack([m.layer_cycles(layers, strategy=s) for s in m.strategies])
    assert (best == per.min(axis=0)).all()
    cycles, names = m.best_strategies(layers)
    assert (cycles == best).all() and all(n in m.strategies for n in names)
    det = m.layer_details(layers[:1])
    assert det[0]["cycles"] == best[0] and det[0]["best_strategy"] == names[0]
    s = next(d for d in det[0]["strategies"] if d["strategy"] == names[0])
    assert max(s["tile_cycles"]) == best[0]
    tile = s["tiles"][0]
    assert len(tile["workloads"]) == len(tile["workload_cycles"]) >= 1 and tile["n_candidate_splits"] >= 1
    ms = m.latency_ms(best)
    assert np.allclose(ms, best / 1300e3)


def test_ddr_and_prefetch_add_dma_terms():
    m = LayerCostModel(TheoreticalCostModel("VPU_2_7"))
    layers = workloads_array([_conv()])
    base = int(m.layer_cycles(layers, strategy="SOHO")[0])
    ddr = int(m.layer_cycles(layers, strategy="SOHO", input_in_ddr=True, output_in_ddr=True, prefetching=False)[0])
    det = m.layer_details(layers, strategy="SOHO", input_in_ddr=True, output_in_ddr=True, prefetching=False)[0]
    s = det["strategies"][0]
    assert ddr == base + s["w_fetch_cycles"] + s["ddr_io_dma_cycles"] and s["w_fetch_cycles"] > 0


def test_refusals_are_error_codes():
    m = LayerCostModel(TheoreticalCostModel("VPU_2_7"))
    layers = workloads_array([_conv(c_in=24, c_out=40), _conv(hw=1000, c_in=512, c_out=512)])
    c = m.layer_cycles(layers)
    assert is_error(c).all()
    assert error_name(int(c[0])) == "ERROR_INVALID_LAYER_CONFIGURATION"
    assert error_name(int(c[1])) == "ERROR_INPUT_TOO_BIG"


def test_pad_channels():
    m = LayerCostModel(TheoreticalCostModel("VPU_2_7"))
    odd = workloads_array([_conv(c_in=24, c_out=40)])
    assert is_error(m.layer_cycles(odd)).all()
    padded = m.layer_cycles(odd, pad_channels=True)
    assert not is_error(padded).any()
    assert padded[0] == m.layer_cycles(workloads_array([_conv(c_in=32, c_out=48)]))[0]


def test_bad_arguments_raise_value_error():
    m = LayerCostModel(TheoreticalCostModel("VPU_2_7"))
    layers = workloads_array([_conv()])
    with pytest.raises(ValueError, match="tiling strategy"):
        m.layer_cycles(layers, strategy="SOX")
    with pytest.raises(ValueError, match="n_tiles"):
        m.layer_cycles(layers, n_tiles=0)
    with pytest.raises(ValueError, match="device"):
        m.layer_cycles(workloads_array([_conv(device="VPU_4_0")]))
    with pytest.raises(ValueError, match="dpu_model"):
        LayerCostModel(object())


def test_python_cost_model_and_batch_dedup():
    calls = []

    class Counting:
        device = "VPU_2_7"

        def predict(self, workloads, threads=0):
            calls.append(len(workloads))
            return np.full(len(workloads), 1000, dtype=np.uint32)

    m = LayerCostModel(Counting())
    layers = workloads_array([_conv()] * 5)
    c = m.layer_cycles(layers)
    assert len(calls) == 1 and (c == c[0]).all()  # one batched call, identical layers share workloads
    single = calls[0]
    m.layer_cycles(layers[:1])
    assert calls[1] == single


def test_hostile_records_do_not_crash():
    rng = np.random.default_rng(0)
    for device in ("VPU_2_0", "VPU_2_7", "VPU_4_0"):
        m = LayerCostModel(TheoreticalCostModel(device))
        recs = workloads_array([_conv(device=device)] * 300)
        dev = ENUM_NAMES["device"].index(device)
        for name in ("in_w", "in_h", "in_c", "out_w", "out_h", "out_c", "k_w", "k_h", "s_w", "s_h", "pad_t",
                     "pad_l", "owt", "op", "in_dtype", "exec_mode", "isi"):
            recs[name] = rng.integers(-3, 70, size=len(recs))
        recs["device"] = dev
        c = m.layer_cycles(recs)  # must return (cycles or error codes), never crash
        assert c.dtype == np.uint32 and len(c) == len(recs)
        for s in m.strategies:
            m.layer_cycles(recs[:50], strategy=s)
    with pytest.raises(ValueError):
        _core.layer_split_tiles(workloads_array([_conv()]), "SOHO", 10**6)
