"""Parity of vpunas.VPUNN with Intel's VPUNN library on the golden DPU workload files.

Reads ../shared/vpunn/golden/dpu_<stem>.csv (or $VPUNAS_GOLDEN_DIR) and demands, row by row:
descriptors equal to VPUNN's NN input vector (and no descriptor where VPUNN could not build one), cycle
counts equal (within max(2 cycles, 1e-5 relative) only for float summation order), error codes equal,
NN raw output within 1e-5 relative, VPUNN's analytic estimate and value source equal.
"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import model_path
from vpunas import costmodel as cm

STEMS = ["vpu_2_0", "vpu_2_7", "vpu_2_7.fast", "vpu_4_0"]


def _load(golden_dir, stem):
    arr, header, rows = cm.read_workloads_csv(golden_dir / f"dpu_{stem}.csv", return_header=True)
    col = {h: i for i, h in enumerate(header)}
    return arr, rows, lambda name: [r[col[name]] for r in rows]


@pytest.fixture(scope="module", params=STEMS)
def case(request, golden_dir):
    stem = request.param
    model = cm.VPUNN(model_path(f"{stem}.vpunn"))
    arr, rows, column = _load(golden_dir, stem)
    return stem, model, arr, column


def _expected_cycles(column):
    exp = []
    for c, e in zip(column("cycles"), column("cycles_error")):
        if c == "":
            assert e.startswith("EXCEPTION"), e
            exp.append(cm.ERROR_CODES["ERROR_ENCODING_EXCEPTION"])  # VPUNN's single call threw
        else:
            exp.append(int(c))
    return np.array(exp, dtype=np.uint64)


def test_descriptors_equal(case):
    stem, model, arr, column = case
    desc, ok = model.descriptors(arr)
    assert desc.shape == (len(arr), model.descriptor_size)
    bad = []
    for i, text in enumerate(column("descriptor")):
        if text == "":
            if ok[i]:
                bad.append(i)
        else:
            gold = np.array(text.split(), dtype=np.float32)
            if not ok[i] or gold.shape[0] != desc.shape[1] or not np.array_equal(gold, desc[i]):
                bad.append(i)
    print(f"{stem}: descriptors equal {len(arr) - len(bad)} / {len(arr)}")
    assert not bad, f"{stem}: {len(bad)} descriptors differ, first rows {bad[:10]}"


def test_cycles_and_error_codes(case):
    stem, model, arr, column = case
    got = model.predict(arr).astype(np.uint64)
    exp = _expected_cycles(column)
    err_g, err_o = cm.is_error(exp), cm.is_error(got)
    exact = int((got == exp).sum())
    both_ok = ~err_g & ~err_o
    diff = np.abs(got.astype(np.int64) - exp.astype(np.int64))
    tol = np.maximum(2, 1e-5 * exp.astype(np.float64))
    within = int((both_ok & (got != exp) & (diff <= tol)).sum())
    code_bad = np.flatnonzero((err_g | err_o) & (got != exp))
    value_bad = np.flatnonzero(both_ok & (diff > tol))
    print(f"{stem}: rows {len(arr)}, cycles exact {exact}, within tolerance {within}, "
          f"mismatches {len(value_bad)}, error codes equal {int((err_g & (got == exp)).sum())} / {int(err_g.sum())}")
    assert len(code_bad) == 0, f"{stem}: error codes differ on rows {code_bad[:10].tolist()}"
    assert len(value_bad) == 0, f"{stem}: cycles differ beyond tolerance on rows {value_bad[:10].tolist()}"
    # error names as VPUNN prints them
    for i in np.flatnonzero(err_g & (column_nonempty := np.array([c != "" for c in column("cycles")]))):
        assert cm.error_name(int(got[i])) == column("cycles_error")[i]


def test_nn_raw_theoretical_and_value_source(case):
    stem, model, arr, column = case
    det = model.predict_detail(arr)
    assert np.array_equal(det["cycles"], model.predict(arr))
    raw = column("nn_raw")
    has = np.array([r != "" for r in raw])
    gold_raw = np.array([float(r) if r else np.nan for r in raw], dtype=np.float32)
    ours = det["nn_raw"]
    assert np.isnan(ours[~has]).all(), "NN evaluated where VPUNN did not"
    rel = np.abs(ours[has].astype(np.float64) - gold_raw[has]) / np.maximum(1.0, np.abs(gold_raw[has]))
    print(f"{stem}: nn_raw bit-equal {int((ours[has] == gold_raw[has]).sum())} / {int(has.sum())}, max rel {rel.max():.2e}")
    assert rel.max() <= 1e-5
    theo = column("theoretical_cycles")
    idx = [i for i, t in enumerate(theo) if t != ""]
    assert [int(theo[i]) for i in idx] == det["theoretical_cycles"][idx].tolist()
    src = [cm.VALUE_SOURCES[v] for v in det["value_source"]]
    bad = [i for i, (a, b) in enumerate(zip(src, column("value_source"))) if a != b]
    assert not bad, f"{stem}: value source differs on rows {bad[:10]}"


def test_single_call_equals_batch_and_threads(case):
    stem, model, arr, column = case
    batch = model.predict(arr)
    rng = np.random.default_rng(0)
    for i in rng.choice(len(arr), size=40, replace=False):
        assert model.predict(arr[i:i + 1])[0] == batch[i]
    big = np.resize(arr, 9000)  # large enough for the multi-threaded path
    assert np.array_equal(model.predict(big, threads=2), np.resize(batch, 9000))
    assert np.array_equal(model.predict(big, threads=1), np.resize(batch, 9000))
