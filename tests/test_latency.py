"""Expected-latency kernel (C++ + autograd) and discrete architecture queries."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from vpunas import _core
from vpunas.latency import (ExpectedLatency, _torch_forward, count_within, discrete_latency, expected_latency,
                            expected_latency_and_grad, expected_latency_torch)


def _problem(n=21, m=7, dtype=torch.float64, seed=0, ragged=True):
    g = torch.Generator().manual_seed(seed)
    alpha = torch.randn(n, m, generator=g, dtype=dtype)
    F = torch.rand(n, m, generator=g, dtype=dtype) * 3 + 0.1
    mask = torch.ones(n, m, dtype=torch.bool)
    if ragged:
        mask = torch.rand(n, m, generator=g) > 0.3
        mask[:, 0] = True
        F = F.masked_fill(~mask, float("nan"))  # padding may hold anything
    return alpha, F, mask


def _reference(alpha, F, mask):
    """Independent float64 numpy evaluation of E and dE/dalpha straight from the definition."""
    a, f, mk = alpha.double().numpy(), F.double().numpy(), mask.numpy()
    E, grad = 0.0, np.zeros_like(a)
    for i in range(a.shape[0]):
        idx = np.nonzero(mk[i])[0]
        p = np.exp(a[i, idx] - a[i, idx].max())
        p /= p.sum()
        e_i = float(p @ f[i, idx])
        E += e_i
        grad[i, idx] = p * (f[i, idx] - e_i)
    return E, grad


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("ragged", [False, True])
def test_forward_backward_match_definition(dtype, tol, ragged):
    alpha, F, mask = _problem(dtype=dtype, ragged=ragged)
    alpha.requires_grad_(True)
    E = expected_latency(alpha, F, mask if ragged else None)
    E.backward()
    E_ref, g_ref = _reference(alpha.detach(), F, mask)
    assert E.dtype == dtype and E.dim() == 0
    assert abs(E.item() - E_ref) <= tol * abs(E_ref)
    np.testing.assert_allclose(alpha.grad.double().numpy(), g_ref, rtol=tol * 10, atol=tol)


def test_value_and_grad_without_autograd():
    alpha, F, mask = _problem(seed=2)
    E, grad = expected_latency_and_grad(alpha, F, mask)
    E_ref, g_ref = _reference(alpha, F, mask)
    assert isinstance(E, float) and E == pytest.approx(E_ref, rel=1e-12)
    np.testing.assert_allclose(grad.numpy(), g_ref, atol=1e-12)
    with pytest.raises(ValueError, match="no valid candidate"):
        expected_latency_and_grad(alpha, F, torch.zeros_like(mask))


def test_gradcheck_float64():
    alpha, F, mask = _problem(n=6, m=5, seed=3)
    alpha.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a: expected_latency(a, F, mask), (alpha,))
    F_dense = torch.rand(6, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, f: ExpectedLatency.apply(a, f, mask), (alpha, F_dense))


def test_matches_plain_torch_autograd_and_scales_upstream_grad():
    alpha, F, mask = _problem(seed=5)
    a1 = alpha.clone().requires_grad_(True)
    a2 = alpha.clone().requires_grad_(True)
    (3.0 * expected_latency(a1, F, mask)).backward()
    (3.0 * expected_latency_torch(a2, F, mask)).backward()
    torch.testing.assert_close(a1.grad, a2.grad)


def test_torch_fallback_equals_cpp_kernel():
    alpha, F, mask = _problem(seed=7)
    E_t, p_t, g_t = _torch_forward(alpha, F, mask)
    E_c, p_c, g_c = _core.expected_latency(alpha.numpy(), F.numpy(), mask.numpy(), True)
    assert abs(E_t.item() - E_c) < 1e-12
    np.testing.assert_allclose(p_t.numpy(), p_c, atol=1e-15)
    np.testing.assert_allclose(g_t.numpy(), g_c, atol=1e-14)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_gives_same_values():
    alpha, F, mask = _problem(seed=9)
    a_cpu = alpha.clone().requires_grad_(True)
    a_gpu = alpha.cuda().requires_grad_(True)
    e_cpu = expected_latency(a_cpu, F, mask)
    e_gpu = expected_latency(a_gpu, F.cuda(), mask.cuda())
    e_cpu.backward()
    e_gpu.backward()
    assert e_gpu.device.type == "cuda"
    assert abs(e_cpu.item() - e_gpu.item()) < 1e-10
    torch.testing.assert_close(a_gpu.grad.cpu(), a_cpu.grad)


def test_table_and_space_input():
    class Block:
        def __init__(self, cands):
            self.name, self.candidates = "b", cands

    class Table:
        def matrix(self, space):
            return np.array([[1.0, 2.0], [3.0, 0.0]]), np.array([[True, True], [True, False]])

    alpha = torch.zeros(2, 2, dtype=torch.float64)
    assert expected_latency(alpha, Table(), space=object()).item() == pytest.approx(1.5 + 3.0)
    with pytest.raises(ValueError, match="space="):
        expected_latency(alpha, Table())


def _set(t, i, j, v):
    t = t.clone()
    t[i, j] = v
    return t


@pytest.mark.parametrize("make, message", [
    (lambda a, F, m: (_set(a, 2, 0, float("nan")), F, m), r"alpha\[2, 0\] is NaN"),
    (lambda a, F, m: (a, _set(F, 1, 0, float("inf")), m), r"F\[1, 0\] is \+inf"),
    (lambda a, F, m: (a, F[:, :5], m), "shape"),
    (lambda a, F, m: (a, F, m[:3]), "mask has shape"),
    (lambda a, F, m: (a, F, m.index_fill(0, torch.tensor(4), False)), "block 4 has no valid candidate"),
    (lambda a, F, m: (a, F, m.to(torch.uint8)), "bool"),
    (lambda a, F, m: (a.to(torch.int64), F, m), "float32 or float64"),
    (lambda a, F, m: (a[0], F[0], None), r"\[N blocks, M candidates\]"),
])
@pytest.mark.parametrize("device", ["cpu", "torch-path"])
def test_bad_input_raises_clear_error(make, message, device):
    alpha, F, mask = _problem(seed=11)
    a, f, m = make(alpha.clone(), F, mask)
    with pytest.raises(ValueError, match=message):
        if device == "cpu":
            expected_latency(a, f, m)
        elif a.is_floating_point() and a.dim() == 2 and f.shape == a.shape and (m is None or m.shape == a.shape) \
                and (m is None or m.dtype == torch.bool):
            _torch_forward(a, f, m)
        else:
            expected_latency(a, f, m)


def test_masked_nan_padding_is_ignored():
    alpha, F, mask = _problem(seed=13)
    assert torch.isnan(F[~mask]).all()
    assert torch.isfinite(expected_latency(alpha, F, mask))


# ----- discrete queries --------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16, np.int32, np.int64])
def test_discrete_latency_matches_numpy(dtype):
    rng = np.random.default_rng(0)
    F = rng.random((21, 7)) * 2
    choices = rng.integers(0, 7, size=(5000, 21)).astype(dtype)
    want = F[np.arange(21), choices.astype(np.int64)].sum(axis=1)
    got = discrete_latency(choices, F)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    target = float(np.median(want))
    assert count_within(choices, F, target) == int((want <= target).sum())


def test_discrete_latency_threads_agree_on_big_batch():
    rng = np.random.default_rng(1)
    F = rng.random((21, 7))
    choices = rng.integers(0, 7, size=(300_000, 21)).astype(np.uint8)
    one = discrete_latency(choices, F, n_threads=1)
    many = discrete_latency(choices, F, n_threads=4)
    np.testing.assert_array_equal(one, many)
    assert count_within(choices, F, 10.0, n_threads=1) == count_within(choices, F, 10.0, n_threads=4)


def test_discrete_latency_accepts_torch_and_single_arch():
    F = torch.tensor([[1.0, 2.0], [10.0, 20.0]])
    assert discrete_latency(torch.tensor([[1, 0], [0, 1]]), F).tolist() == [12.0, 21.0]
    assert discrete_latency([1, 1], F).tolist() == [22.0]


@pytest.mark.parametrize("choices, message", [
    ([[0, 1, 2], [0, 7, 0]], r"architecture 1, block 1: candidate index 7 is out of range \[0, 3\)"),
    ([[0, -1, 2]], "candidate index -1 is out of range"),
    ([[0, 2, 2]], "architecture 0, block 1: candidate 2 is not a valid candidate"),
    ([[0.5, 1, 1]], "integer array"),
    ([[0, 1]], r"N = 2"),
])
def test_discrete_bad_choices(choices, message):
    F = np.arange(9, dtype=np.float64).reshape(3, 3)
    mask = np.ones((3, 3), dtype=bool)
    mask[1, 2] = False
    with pytest.raises(ValueError, match=message):
        discrete_latency(np.asarray(choices), F, mask)
    with pytest.raises(ValueError, match=message):
        count_within(np.asarray(choices), F, 5.0, mask)


def test_discrete_bad_matrix():
    with pytest.raises(ValueError, match=r"F\[0, 1\] is NaN"):
        discrete_latency([[0, 0]], np.array([[1.0, np.nan], [1.0, 1.0]]))
    with pytest.raises(ValueError, match="block 1 has no valid candidate"):
        discrete_latency([[0, 0]], np.ones((2, 2)), np.array([[True, True], [False, False]]))
    with pytest.raises(ValueError, match="target_ms is NaN"):
        count_within([[0, 0]], np.ones((2, 2)), float("nan"))
