"""The .vpunn reader and the MLP engine (vpunas._core.MlpModel).

Parity: on every golden DPU row the NN evaluated (value_source == "nn"), our forward pass on the stored
descriptor must give VPUNN's nn_raw. We reproduce VPUNN's summation order, so we demand bit equality
(which implies the 1e-5 relative tolerance the golden README allows).
"""
from __future__ import annotations

import csv
import threading

import numpy as np
import pytest

import _vpunn_bytes as fb
from conftest import model_path
from vpunas import _core

# "scalar16" / "scalar16_sparse": the portable kernels with the AVX-512 width, so that layout is tested
# on any CPU. The "_sparse" kernels skip zero inputs (exact: see SparseSet in csrc/vpunn/gemm.h).
KERNELS = _core.available_mlp_kernels() + ["scalar16", "scalar16_sparse"]
SPARSE_KERNELS = [k for k in KERNELS if k.endswith("_sparse")]

# file -> (name stored inside, VI, VO, input width)
SHIPPED = {
    "vpu_2_0.vpunn": ("VPUNN-10-02", 10, 2, 67),
    "vpu_2_0.fast.vpunn": ("VPUNN-10-02", 10, 2, 67),
    "vpu_2_7.vpunn": ("VPUNN-11-02", 11, 2, 93),
    "vpu_2_7.fast.vpunn": ("VPUNN-11-02", 11, 2, 93),
    "vpu_4_0.vpunn": ("VPUNN-4011-05 $runs-MSPE_8192-model.pth$", 4011, 5, 93),
    "vpu_4_0_cloned_from27.vpunn": ("VPUNN-11-04", 11, 4, 93),
    "vpu_4_0_cloned_from27.fast.vpunn": ("VPUNN-11-04", 11, 4, 93),
    "vpu_2_7_159.vpunn": ("VPUNN-11-02", 11, 2, 93),
    "vpu_2_7_159.fast.vpunn": ("VPUNN-11-02", 11, 2, 93),
    "vpu_40_159.vpunn": ("VPUNN-11-02", 11, 2, 93),
    "vpu_40_159.fast.vpunn": ("VPUNN-11-02", 11, 2, 93),
    "vpu_40_159_strict.vpunn": ("VPUNN-89-02", 89, 2, 93),
    "vpu_4_1.vpunn": ("VPUNN-4111-05", 4111, 5, 93),
}


def _load(name: str, kernel: str = "auto") -> _core.MlpModel:
    return _core.MlpModel(str(model_path(name)), kernel=kernel)


def _reference(model: _core.MlpModel, x: np.ndarray) -> np.ndarray:
    """The same network in float64 numpy (W stored [out, in])."""
    h = x.astype(np.float64)
    for i, (_, _, act) in enumerate(model.layer_shapes):
        w, b = model.layer_weights(i)
        h = h @ w.astype(np.float64).T + b
        if act == "RELU":
            h = np.maximum(h, 0.0)
        elif act == "SIGMOID":
            with np.errstate(over="ignore"):
                h = 1.0 / (1.0 + np.exp(-h))
    return h


def _descriptor_like(n: int, width: int, seed: int) -> np.ndarray:
    """Inputs shaped like real descriptors: mostly one-hot 0/1 with a few sizes up to a few hundred."""
    rng = np.random.default_rng(seed)
    x = (rng.random((n, width)) < 0.3).astype(np.float32)
    big = rng.random((n, width)) < 0.15
    x[big] = rng.integers(1, 300, size=int(big.sum())).astype(np.float32)
    return x


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_reads_shipped_models(name):
    stored, vi, vo, width = SHIPPED[name]
    m = _load(name)
    assert m.name == stored
    assert (m.interface_in, m.interface_out) == (vi, vo)
    assert m.input_size == width and m.output_size == 1
    shapes = m.layer_shapes
    assert shapes[0][0] == width and shapes[-1][1] == 1
    for (a_in, a_out, _), (b_in, _, _) in zip(shapes, shapes[1:]):
        assert a_out == b_in
    for i, (n_in, n_out, act) in enumerate(shapes):
        w, b = m.layer_weights(i)
        assert w.shape == (n_out, n_in) and b.shape == (n_out,) and w.dtype == np.float32
        assert act in ("NOOP", "RELU", "SIGMOID")
        assert np.isfinite(w).all() and np.abs(w).max() > 0


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("name", ["vpu_2_0.vpunn", "vpu_2_7.vpunn", "vpu_4_0.vpunn"])
def test_forward_matches_float64_reference(name, kernel):
    m = _load(name, kernel)
    x = _descriptor_like(203, m.input_size, seed=1)  # 203: every register-tile tail size occurs
    y = m.forward(x)
    ref = _reference(m, x)
    assert y.shape == (203, 1) and y.dtype == np.float32
    scale = np.abs(ref).max()
    assert np.abs(y - ref).max() <= 1e-4 * scale


def _golden_nn_rows(golden_dir, stem):
    with open(golden_dir / f"dpu_{stem}.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["value_source"] == "nn"]
    x = np.array([[float(v) for v in r["descriptor"].split()] for r in rows], dtype=np.float32)
    nn_raw = np.array([float(r["nn_raw"]) for r in rows], dtype=np.float32)  # 9 digits: exact float32
    return x, nn_raw


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("stem", ["vpu_2_0", "vpu_2_7", "vpu_2_7.fast", "vpu_4_0"])
def test_golden_nn_raw_parity(golden_dir, stem, kernel):
    x, nn_raw = _golden_nn_rows(golden_dir, stem)
    assert len(x) > 1000
    m = _load(f"{stem}.vpunn", kernel)
    y = m.forward(x)[:, 0]
    rel = np.abs(y.astype(np.float64) - nn_raw) / np.abs(nn_raw)
    assert rel.max() <= 1e-5, f"worst row {int(rel.argmax())}: {y[rel.argmax()]} vs {nn_raw[rel.argmax()]}"
    mismatch = np.flatnonzero(y != nn_raw)
    assert mismatch.size == 0, f"{mismatch.size} rows not bit-identical to VPUNN, first {mismatch[:5]}"
    # The single-row path (no batching, stack scratch) gives the same bits.
    for i in range(0, len(x), 97):
        assert m.forward(x[i : i + 1])[0, 0] == nn_raw[i]


def test_kernels_batch_sizes_and_threads_agree():
    m = _load("vpu_2_7.fast.vpunn")
    x = _descriptor_like(1500, m.input_size, seed=2)
    expected = m.forward(x, threads=1)
    for kernel in KERNELS:
        mk = _load("vpu_2_7.fast.vpunn", kernel)
        for n in (1, 2, 3, 4, 5, 7, 8, 47, 48, 49, 97, 1500):
            np.testing.assert_array_equal(mk.forward(x[:n], threads=1), expected[:n])
        for threads in (0, 2, 3, 7):
            np.testing.assert_array_equal(mk.forward(x, threads=threads), expected)


def _sparse_mix(n: int, width: int, seed: int) -> np.ndarray:
    """Rows from all zeros to dense: +-0, negative, tiny and large values (bit patterns a skip could break)."""
    rng = np.random.default_rng(seed)
    density = rng.random((n, 1)) ** 2
    x = rng.standard_normal((n, width)).astype(np.float32) * rng.choice([1e-3, 1.0, 100.0], size=(n, width))
    x[rng.random((n, width)) >= density] = 0.0
    x[rng.random((n, width)) < 0.05] = -0.0
    x[0] = 0.0
    x[1] = -0.0
    return x.astype(np.float32)


@pytest.mark.parametrize("kernel", SPARSE_KERNELS)
@pytest.mark.parametrize("name", ["vpu_2_0.fast.vpunn", "vpu_2_7.fast.vpunn", "vpu_4_0.vpunn"])
def test_sparse_kernel_bit_identical_to_dense(name, kernel):
    dense = _load(name, "scalar")
    sparse = _load(name, kernel)
    assert sparse.kernel == kernel
    x = np.concatenate([_sparse_mix(300, dense.input_size, seed=5), _descriptor_like(200, dense.input_size, seed=6)])
    expected = dense.forward(x, threads=1)
    for threads in (1, 2):
        got = sparse.forward(x, threads=threads)
        np.testing.assert_array_equal(got.view(np.uint32), expected.view(np.uint32))
    for i in (0, 1, 2, 17, 299, 499):  # single rows (stack scratch)
        assert sparse.forward(x[i : i + 1])[0].view(np.uint32) == expected[i].view(np.uint32)


def test_concurrent_forward_from_python_threads():
    m = _load("vpu_2_7.vpunn")
    inputs = [_descriptor_like(n, m.input_size, seed=s) for s, n in enumerate((1, 7, 64, 300, 1000, 5))]
    expected = [m.forward(x, threads=1) for x in inputs]
    errors = []

    def worker(k):
        try:
            for rep in range(6):
                i = (k + rep) % len(inputs)
                np.testing.assert_array_equal(m.forward(inputs[i], threads=1 + rep % 2), expected[i])
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


def test_forward_validates_input():
    m = _load("vpu_2_7.fast.vpunn")
    with pytest.raises(ValueError, match="float32"):
        m.forward(np.zeros((2, 93), dtype=np.float64))
    with pytest.raises(ValueError, match=r"\[n, 93\]"):
        m.forward(np.zeros((2, 92), dtype=np.float32))
    with pytest.raises(ValueError, match=r"\[n, 93\]"):
        m.forward(np.zeros(93, dtype=np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        m.forward(np.zeros((93, 4), dtype=np.float32).T)
    assert m.forward(np.zeros((0, 93), dtype=np.float32)).shape == (0, 1)
    with pytest.raises(IndexError):
        m.layer_weights(len(m.layer_shapes))
    with pytest.raises(ValueError, match="kernel 'avx9000'"):
        _load("vpu_2_7.fast.vpunn", "avx9000")


# ---- bad files: each must raise ValueError naming the problem ----


@pytest.fixture(scope="module")
def fast_bytes():
    return model_path("vpu_2_7.fast.vpunn").read_bytes()


def test_missing_file(tmp_path):
    with pytest.raises(ValueError, match="cannot open"):
        _core.MlpModel(str(tmp_path / "nope.vpunn"))


def test_from_bytes_equals_file(fast_bytes):
    a = _core.MlpModel.from_bytes(fast_bytes)
    b = _load("vpu_2_7.fast.vpunn")
    x = _descriptor_like(10, 93, seed=3)
    np.testing.assert_array_equal(a.forward(x), b.forward(x))


def test_wrong_identifier(fast_bytes):
    bad = fast_bytes[:4] + b"ONNX" + fast_bytes[8:]
    with pytest.raises(ValueError, match="identifier"):
        _core.MlpModel.from_bytes(bad)


@pytest.mark.parametrize("keep", [0, 3, 7, 100, 5000, -1000, -4])
def test_truncated(fast_bytes, keep):
    with pytest.raises(ValueError, match="corrupt|too short|not a .vpunn"):
        _core.MlpModel.from_bytes(fast_bytes[:keep])


def test_inflated_buffer_length(fast_bytes):
    w = fb.layer_inputs(fast_bytes, 2)[1]
    pos = fb.buffer_data_length_pos(fast_bytes, fb.tensor_buffer_index(fast_bytes, w))
    for value in (0xFFFFFFFF, 0x40000000, fb.u32(fast_bytes, pos) + 4):
        with pytest.raises(ValueError, match="exceeds the file|buffer has"):
            _core.MlpModel.from_bytes(fb.patch_u32(fast_bytes, pos, value))


def test_inflated_tensor_count(fast_bytes):
    at, _, _ = fb.vector(fast_bytes, fb.model_table(fast_bytes), 1)
    with pytest.raises(ValueError, match="vector length exceeds the file"):
        _core.MlpModel.from_bytes(fb.patch_u32(fast_bytes, at, 0x7FFFFFFF))


def test_weight_shape_not_matching_buffer(fast_bytes):
    w = fb.layer_inputs(fast_bytes, 1)[1]
    _, n, start = fb.vector(fast_bytes, fb.tensor(fast_bytes, w), 1)
    assert n == 2
    bad = fb.patch_u32(fast_bytes, start + 4, fb.u32(fast_bytes, start + 4) + 1)  # out + 1
    with pytest.raises(ValueError, match="weight shape"):
        _core.MlpModel.from_bytes(bad)
    buf_len = fb.buffer_data_length_pos(fast_bytes, fb.tensor_buffer_index(fast_bytes, w))
    smaller = fb.patch_u32(fast_bytes, buf_len, fb.u32(fast_bytes, buf_len) - 4)
    with pytest.raises(ValueError, match="buffer has .* bytes but its shape needs"):
        _core.MlpModel.from_bytes(smaller)


@pytest.mark.parametrize("tag,name", [(2, "L2NormalizationLayer"), (3, "kNNLayer"), (9, r"unknown \(9\)")])
def test_unsupported_layer_type(fast_bytes, tag, name):
    pos = fb.field_pos(fast_bytes, fb.layer(fast_bytes, 3), 3)
    with pytest.raises(ValueError, match=f"layer 3 has layer type {name}"):
        _core.MlpModel.from_bytes(fb.patch_u8(fast_bytes, pos, tag))


def test_unsupported_activation(fast_bytes):
    pos = fb.field_pos(fast_bytes, fb.layer(fast_bytes, 0), 5)
    with pytest.raises(ValueError, match="activation function 7"):
        _core.MlpModel.from_bytes(fb.patch_u32(fast_bytes, pos, 7))


def test_non_finite_weight(fast_bytes):
    w = fb.layer_inputs(fast_bytes, 0)[1]
    pos = fb.buffer_data_length_pos(fast_bytes, fb.tensor_buffer_index(fast_bytes, w)) + 4
    with pytest.raises(ValueError, match="non-finite"):
        _core.MlpModel.from_bytes(fb.patch_u32(fast_bytes, pos, 0x7FC00000))  # NaN


def test_unsupported_interface_version(fast_bytes):
    i = fast_bytes.index(b"VPUNN-11-02")
    with pytest.raises(ValueError, match="descriptor interface version 77"):
        _core.MlpModel.from_bytes(fast_bytes[:i] + b"VPUNN-77-02" + fast_bytes[i + 11 :])
    with pytest.raises(ValueError, match="output interface version 9"):
        _core.MlpModel.from_bytes(fast_bytes[:i] + b"VPUNN-11-09" + fast_bytes[i + 11 :])
    with pytest.raises(ValueError, match="cannot read the input interface version"):
        _core.MlpModel.from_bytes(fast_bytes[:i] + b"VPUNN-xx-02" + fast_bytes[i + 11 :])
    # v10 needs 67 inputs; this network takes 93
    with pytest.raises(ValueError, match="needs 67 inputs"):
        _core.MlpModel.from_bytes(fast_bytes[:i] + b"VPUNN-10-02" + fast_bytes[i + 11 :])


@pytest.mark.parametrize("name", ["dma_2_7.vpunn", "vpu_5_1.vpunn"])
def test_other_interfaces_refused(name):
    with pytest.raises(ValueError, match="interface version (1|5114) is not supported"):
        _load(name)


# ---- activations and optional bias that no shipped model uses, made by patching a real file ----


def _patched_reference_check(data: bytes, kernel: str, scale: float = 1.0):
    m = _core.MlpModel.from_bytes(data, kernel=kernel)
    x = _descriptor_like(37, m.input_size, seed=4) * np.float32(scale)
    ref = _reference(m, x)
    y = m.forward(x)
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
    return m


@pytest.mark.parametrize("kernel", KERNELS)
def test_sigmoid_and_noop_activations(fast_bytes, kernel):
    # SIGMOID on the first layer, small inputs so its outputs are not all saturated at 0 or 1
    sig = fb.patch_u32(fast_bytes, fb.field_pos(fast_bytes, fb.layer(fast_bytes, 0), 5), 2)
    m = _patched_reference_check(sig, kernel, scale=0.02)
    assert m.layer_shapes[0][2] == "SIGMOID"
    noop = fb.patch_u32(fast_bytes, fb.field_pos(fast_bytes, fb.layer(fast_bytes, 1), 5), 0)
    assert _patched_reference_check(noop, kernel).layer_shapes[1][2] == "NOOP"


@pytest.mark.parametrize("kernel", KERNELS)
def test_layer_without_bias(fast_bytes, kernel):
    at, n, _ = fb.vector(fast_bytes, fb.layer(fast_bytes, 2), 1)
    assert n == 3
    m = _patched_reference_check(fb.patch_u32(fast_bytes, at, 2), kernel)  # inputs = [activation, weight]
    _, b = m.layer_weights(2)
    assert not b.any()


def test_cost_model_same_answers_with_every_mlp_kernel(golden_dir):
    """The full DPU path (descriptors + NN + post-processing) gives the same cycles and nn_raw bits with
    the zero-skipping default and the dense kernels."""
    from vpunas.costmodel import read_workloads_csv

    path = str(model_path("vpu_2_7.fast.vpunn"))
    wl = read_workloads_csv(golden_dir / "dpu_vpu_2_7.fast.csv")[:3000]
    default = _core.DpuCostModel(path)
    assert default.mlp_kernel == KERNELS[0]
    want = default.predict_detail(wl, 1)
    for kernel in ("scalar", KERNELS[0].removesuffix("_sparse")):
        got = _core.DpuCostModel(path, mlp_kernel=kernel).predict_detail(wl, 1)
        assert np.array_equal(got["cycles"], want["cycles"])
        assert np.array_equal(got["nn_raw"].view(np.uint32), want["nn_raw"].view(np.uint32))
    with pytest.raises(ValueError, match="not available"):
        _core.DpuCostModel(path, mlp_kernel="avx9000")


# ---- shortcuts of the zero-skipping kernels: near-zero outputs and diagonal layers (csrc/vpunn/gemm.h) ----


def test_shipped_models_use_the_shortcuts():
    m = _load("vpu_2_7.vpunn", SPARSE_KERNELS[0])
    assert m.near_zero_outputs == [0, 6, 64, 58, 120, 0]  # hidden neurons whose weights all have |w| <= 2^-30
    assert m.diagonal_layers == [True] + [False] * 5  # the first layer scales each descriptor input
    assert _load("vpu_2_7.vpunn", "scalar").near_zero_outputs == []  # dense kernels evaluate everything


def _with_scaled_weights(data: bytes, layer: int, rows, scale: float, bias=None, columns=False) -> bytes:
    """`data` with the weight rows (or columns) `rows` of `layer` multiplied by `scale` (and bias `bias`)."""
    m = _core.MlpModel.from_bytes(data, kernel="scalar")
    w, b = m.layer_weights(layer)
    if columns:
        w[:, rows] *= np.float32(scale)
    else:
        w[rows] *= np.float32(scale)
    if bias is not None:
        b[rows] = np.float32(bias)
    pos, n = fb.layer_param_pos(data, layer, 1)
    assert n == w.size
    data = fb.patch_floats(data, pos, w.ravel().tolist())
    pos, n = fb.layer_param_pos(data, layer, 2)
    assert n == b.size
    return fb.patch_floats(data, pos, b.tolist())


@pytest.mark.parametrize("kernel", SPARSE_KERNELS)
def test_near_zero_outputs_exact_where_the_proof_fails(fast_bytes, kernel):
    """Live neurons scaled down to near-zero (and their weights in the next layer up): for some rows their output
    is > 0 (tiny) and must be evaluated exactly, for others it is proven 0. Every output bit must equal the dense
    kernel's, which has no shortcut."""
    x = np.concatenate([_descriptor_like(300, 93, seed=11), _sparse_mix(200, 93, seed=12)])

    def layer2_pre_activation(model):
        h = x.astype(np.float64)
        for i in range(3):
            w, b = model.layer_weights(i)
            h = h @ w.astype(np.float64).T + b
            if i < 2:
                h = np.maximum(h, 0.0)
        return h

    # Four neurons that fire on some rows only; scaled down they stay positive exactly there.
    h = layer2_pre_activation(_core.MlpModel.from_bytes(fast_bytes, kernel="scalar"))
    rows = [int(o) for o in np.flatnonzero(((h > 0).mean(axis=0) > 0.02) & ((h > 0).mean(axis=0) < 0.3))[:4]]
    data = _with_scaled_weights(fast_bytes, 2, rows, 2.0**-34, bias=-(2.0**-100))
    data = _with_scaled_weights(data, 3, rows, 2.0**34, columns=True)  # so the tiny outputs matter downstream
    sparse = _core.MlpModel.from_bytes(data, kernel=kernel)
    dense = _core.MlpModel.from_bytes(data, kernel="scalar")
    assert sparse.near_zero_outputs[2] == _load("vpu_2_7.fast.vpunn", kernel).near_zero_outputs[2] + len(rows)
    positive = (layer2_pre_activation(dense)[:, rows] > 0).any(axis=1)
    assert len(rows) == 4 and 0 < positive.sum() < len(x)
    expected = dense.forward(x, threads=1)
    for threads in (1, 2):
        np.testing.assert_array_equal(sparse.forward(x, threads=threads).view(np.uint32), expected.view(np.uint32))
    for i in np.flatnonzero(positive)[:5]:
        assert sparse.forward(x[i : i + 1])[0].view(np.uint32) == expected[i].view(np.uint32)
    # Huge inputs: the scaled sums overflow (no proof then), some of the exact ones too.
    huge = np.concatenate([x[:30] * np.float32(1e12), x[30:60] * np.float32(1e30)])
    expected = dense.forward(huge, threads=1)
    got = sparse.forward(huge, threads=1)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    finite = ~np.isnan(expected)
    np.testing.assert_array_equal(got[finite].view(np.uint32), expected[finite].view(np.uint32))


@pytest.mark.parametrize("kernel", SPARSE_KERNELS)
def test_diagonal_layer_with_non_finite_inputs(fast_bytes, kernel):
    """inf * 0 = NaN: one inf or NaN input makes every output of VPUNN's diagonal layer NaN, and so the net's."""
    sparse = _core.MlpModel.from_bytes(fast_bytes, kernel=kernel)
    dense = _core.MlpModel.from_bytes(fast_bytes, kernel="scalar")
    assert sparse.diagonal_layers[0]
    x = _descriptor_like(64, sparse.input_size, seed=13)
    x[3, 5] = np.inf
    x[17, 0] = -np.inf
    x[40, 92] = np.nan
    x[41, 7] = 3e38  # finite, but x * w overflows
    expected = dense.forward(x, threads=1)
    assert np.isnan(expected[[3, 17, 40]]).all()
    got = sparse.forward(x, threads=1)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    finite = ~np.isnan(expected[:, 0])
    np.testing.assert_array_equal(got[finite].view(np.uint32), expected[finite].view(np.uint32))
