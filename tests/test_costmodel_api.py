"""Python API of the DPU cost models: workloads in / numpy out, clear errors, robustness."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import model_path
from vpunas import costmodel as cm
from vpunas import TheoreticalCostModel, VPUNN, Workload, read_workloads_csv

CONV = dict(op="CONVOLUTION", in_w=28, in_h=28, in_c=64, out_w=28, out_h=28, out_c=64)


@pytest.fixture(scope="module")
def fast27():
    return VPUNN(model_path("vpu_2_7.fast.vpunn"))


def test_workload_record_roundtrip():
    w = Workload(**CONV, isi="SplitOverK", owt=2, weight_dtype="UINT8", act_sparsity=0.25)
    rec = w.to_record()
    assert rec.dtype == cm.WORKLOAD_DTYPE and rec.dtype.itemsize == 160
    assert rec["isi"][0] == cm.ENUM_NAMES["isi"].index("SplitOverK")
    back = cm.to_workloads(rec)[0]
    assert back == w
    assert cm.to_workloads(Workload().to_record())[0].weight_dtype is None  # unset stays unset


def test_single_workload_and_batch_agree(fast27):
    one = fast27.predict(Workload(**CONV))
    assert one.dtype == np.uint32 and one.shape == (1,)
    batch = fast27.predict([Workload(**CONV), Workload(**{**CONV, "in_c": 32})])
    assert batch[0] == one[0] and not cm.is_error(batch).any()
    assert fast27.predict(cm.workloads_array(0)).shape == (0,)


def test_latency_uses_device_clock(fast27):
    assert fast27.device == "VPU_2_7"
    ms = fast27.latency_ms(np.array([1300, cm.ERROR_CODES["ERROR_INPUT_TOO_BIG"]], dtype=np.uint32))
    assert ms[0] == pytest.approx(1300 / 1300e3) and np.isnan(ms[1])
    assert TheoreticalCostModel("VPU_2_0").latency_ms([700])[0] == pytest.approx(0.001)


def test_descriptors_shape_and_error_codes(fast27):
    d, ok = fast27.descriptors(Workload(**CONV))
    assert d.shape == (1, 93) and ok[0] == 1 and d.dtype == np.float32
    bad = [Workload(**CONV, exec_mode="MATRIX"), Workload(**{**CONV, "in_c": 24}),
           Workload(**CONV, device="NPU_RESERVED_1"), Workload(**{**CONV, "op": "REDUCE_MS"})]
    got = [cm.error_name(c) for c in fast27.predict(bad)]
    assert got == ["ERROR_INVALID_INPUT_CONFIGURATION", "ERROR_INVALID_INPUT_CONFIGURATION",
                   "ERROR_INVALID_INPUT_DEVICE", "ERROR_INVALID_INPUT_OPERATION"]


def test_garbage_rows_give_error_codes_not_crashes(fast27):
    rng = np.random.default_rng(1)
    raw = rng.integers(-5, 2**31 - 1, size=(2000, 40), dtype=np.int64).astype(np.int32)
    arr = raw.view(cm.WORKLOAD_DTYPE).reshape(-1).copy()
    arr["act_sparsity"] = rng.normal(size=2000).astype(np.float32)
    small = arr.copy()
    for f in ("device", "op", "in_dtype", "out_dtype", "exec_mode", "in_layout", "isi", "in_swz0"):
        small[f] = rng.integers(-1, 12, size=2000)
    for a in (arr, small):
        c = fast27.predict(a)
        assert c.shape == (2000,)
        fast27.descriptors(a)
        cm.theoretical_cycles(a)


def test_missing_model_file_message(tmp_path, monkeypatch):
    monkeypatch.delenv("VPUNAS_MODEL_DIR", raising=False)
    with pytest.raises(FileNotFoundError) as e:
        VPUNN(tmp_path / "vpu_2_7.vpunn")
    assert "intel/npu-nn-cost-model" in str(e.value) and "VPUNAS_MODEL_DIR" in str(e.value)
    monkeypatch.setenv("VPUNAS_MODEL_DIR", str(model_path("vpu_2_7.fast.vpunn").parent))
    assert VPUNN("vpu_2_7.fast.vpunn").nn_name.startswith("VPUNN-11")


def test_unknown_device_lists_valid_names():
    with pytest.raises(ValueError, match="VPU_2_0, VPU_2_1, VPU_2_7, VPU_4_0"):
        TheoreticalCostModel("VPU_9_9")
    with pytest.raises(ValueError, match="valid names: VPU_2_0"):
        Workload(device="VPU_9_9").to_record()


def test_csv_errors_name_row_column_and_valid_names(tmp_path, golden_dir):
    src = (golden_dir / "dpu_vpu_2_7.csv").read_text().splitlines()
    lines = src[:4]
    lines[2] = lines[2].replace(",CONVOLUTION,", ",CONVOLUTON,", 1)
    p = tmp_path / "w.csv"
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError) as e:
        read_workloads_csv(p)
    msg = str(e.value)
    assert "row 2" in msg and "'op'" in msg and "DW_CONVOLUTION" in msg
    p.write_text("id,device\n0,VPU_2_7\n")
    with pytest.raises(ValueError, match="missing columns"):
        read_workloads_csv(p)


def test_wrong_dtype_array_is_rejected(fast27):
    with pytest.raises(ValueError, match="WORKLOAD_DTYPE"):
        fast27.predict(np.zeros(3, dtype=np.int32))
    with pytest.raises(ValueError, match="C-contiguous"):
        fast27.predict(cm.workloads_array(6)[::2])


def test_descriptor_size_mismatch_is_an_error(tmp_path):
    data = model_path("vpu_2_7.fast.vpunn").read_bytes()
    assert data.count(b"VPUNN-11-02") == 1
    p = tmp_path / "renamed.vpunn"
    p.write_bytes(data.replace(b"VPUNN-11-02", b"VPUNN-10-02"))  # interface 10 = 67 inputs, net takes 93
    with pytest.raises(ValueError, match="67 inputs|93 inputs"):
        VPUNN(p)


@pytest.mark.parametrize("name", ["vpu_4_0_cloned_from27.fast.vpunn", "vpu_40_159_strict.fast.vpunn",
                                  "vpu_2_7_159.fast.vpunn", "vpu_4_1.vpunn"])
def test_other_interface_versions_run(name):
    m = VPUNN(model_path(name))
    c = m.predict([Workload(**CONV, device=m.device)])
    assert not cm.is_error(c).any() and c[0] > 0


def test_unsupported_interface_is_a_clear_error():
    with pytest.raises(ValueError, match="interface"):
        VPUNN(model_path("vpu_5_1.vpunn"))


def test_theoretical_model_matches_vpunn_estimate(golden_dir):
    arr, header, rows = read_workloads_csv(golden_dir / "dpu_vpu_4_0.csv", return_header=True)
    col = {h: i for i, h in enumerate(header)}
    got = TheoreticalCostModel("VPU_4_0").predict(arr)
    for i, r in enumerate(rows):
        theo = int(r[col["theoretical_cycles"]]) if r[col["theoretical_cycles"]] else None
        if r[col["value_source"]] == "nn" and theo < cm.FIRST_ERROR:
            assert got[i] == theo
        elif r[col["value_source"]] == "sanitizer_rejected":
            assert got[i] == int(r[col["cycles"]])


def test_portable_kernel_gives_identical_values(golden_dir, monkeypatch, fast27):
    arr = read_workloads_csv(golden_dir / "dpu_vpu_2_7.fast.csv")
    monkeypatch.setenv("VPUNAS_EXACT_MLP_SCALAR", "1")  # read when the model is built
    scalar = VPUNN(model_path("vpu_2_7.fast.vpunn"))
    a, b = fast27.predict_detail(arr), scalar.predict_detail(arr)
    assert np.array_equal(a["cycles"], b["cycles"])
    assert np.array_equal(a["nn_raw"], b["nn_raw"], equal_nan=True)


def test_output_version_4_scales_npu40_depthwise():
    """VPUNN-11-04 (NPU 2.7 net used for 4.0): depthwise on NPU 4.0 is scaled by VPUNN's factor table."""
    m = VPUNN(model_path("vpu_4_0_cloned_from27.fast.vpunn"))
    assert m.interface_out == 4
    dw = dict(op="DW_CONVOLUTION", in_w=28, in_h=28, in_c=32, out_w=28, out_h=28, out_c=32, k_w=3, k_h=3,
              pad_t=1, pad_b=1, pad_l=1, pad_r=1)
    d40 = m.predict_detail([Workload(**dw, device="VPU_4_0")])
    d27 = m.predict_detail([Workload(**dw, device="VPU_2_7")])
    assert d40["cycles"][0] == np.ceil(np.float32(d40["nn_raw"][0]) * np.float32(0.44))  # 8-bit, 3x3, 32 ch
    assert d27["cycles"][0] == np.ceil(d27["nn_raw"][0])  # other devices: pass-through
