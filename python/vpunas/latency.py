"""Differentiable expected latency over a LUT, and fast discrete-architecture latency queries.

For N searchable blocks with up to M candidates each (ragged lists: `mask` marks the valid ones),
architecture logits alpha [N, M] and the LUT matrix F [N, M] in ms:

    E[lat] = sum_i sum_j p_ij F_ij,   p_i = softmax(alpha_i) over the valid candidates of block i
    dE/dalpha_ij = p_ij (F_ij - E_i),  E_i = sum_j p_ij F_ij

CPU tensors run the C++ kernel (vpunas._core.expected_latency, which computes the gradient in the
same pass); CUDA tensors run the same formulas in torch ops on the device. NaN / inf in alpha or in a
valid F entry, shape mismatches and blocks without a valid candidate raise ValueError.
"""
from __future__ import annotations

import numpy as np
import torch

from vpunas import _core

__all__ = ["ExpectedLatency", "expected_latency", "expected_latency_and_grad", "expected_latency_torch",
           "discrete_latency", "count_within"]


def _check_shapes(alpha: torch.Tensor, F: torch.Tensor, mask: torch.Tensor | None):
    if alpha.dim() != 2:
        raise ValueError(f"expected_latency: alpha must be [N blocks, M candidates], got shape {tuple(alpha.shape)}")
    if tuple(F.shape) != tuple(alpha.shape):
        raise ValueError(f"expected_latency: F has shape {tuple(F.shape)} but alpha has {tuple(alpha.shape)}; "
                         "they must match (one row per searchable block, one column per candidate)")
    if mask is not None and tuple(mask.shape) != tuple(alpha.shape):
        raise ValueError(f"expected_latency: mask has shape {tuple(mask.shape)} but alpha has {tuple(alpha.shape)}")


def _first_bad(bad: torch.Tensor) -> tuple:
    i, j = (int(v) for v in torch.nonzero(bad)[0])
    return i, j


def _describe(v: float) -> str:
    return "NaN" if v != v else ("+inf" if v > 0 else "-inf")  # same words as the C++ kernel


def _torch_forward(alpha: torch.Tensor, F: torch.Tensor, mask: torch.Tensor | None):
    """Same computation as the C++ kernel, in torch ops (any device). Returns (E, probs, grad)."""
    valid = torch.ones_like(alpha, dtype=torch.bool) if mask is None else mask
    empty = ~valid.any(dim=1)
    if bool(empty.any()):
        raise ValueError(f"expected_latency: block {int(torch.nonzero(empty)[0])} has no valid candidate "
                         "(its mask row is all false)")
    bad_alpha = valid & ~torch.isfinite(alpha)
    if bool(bad_alpha.any()):
        i, j = _first_bad(bad_alpha)
        raise ValueError(f"expected_latency: alpha[{i}, {j}] is {_describe(float(alpha[i, j]))}; "
                         "architecture logits must be finite")
    bad_f = valid & ~torch.isfinite(F)
    if bool(bad_f.any()):
        i, j = _first_bad(bad_f)
        raise ValueError(f"expected_latency: latency F[{i}, {j}] is {_describe(float(F[i, j]))}; every valid candidate needs a "
                         "finite latency (mask out missing candidates)")
    logits = alpha.masked_fill(~valid, float("-inf"))
    probs = torch.softmax(logits, dim=1)
    f = F.masked_fill(~valid, 0.0)
    e_block = (probs * f).sum(dim=1, keepdim=True)
    grad = probs * (f - e_block)
    return e_block.sum(), probs, grad


class ExpectedLatency(torch.autograd.Function):
    """E[lat](alpha; F, mask) with dE/dalpha (and dE/dF = p) from one fused forward pass."""

    @staticmethod
    def forward(ctx, alpha: torch.Tensor, F: torch.Tensor, mask: torch.Tensor | None = None):
        if alpha.device.type == "cpu":
            a = alpha.detach()
            a = a if a.is_contiguous() else a.contiguous()
            f = F.detach()
            if f.dtype != a.dtype or not f.is_contiguous():
                f = f.to(a.dtype).contiguous()
            m = None if mask is None else mask.numpy()
            total, probs, grad = _core.expected_latency(a.numpy(), f.numpy(), m, True)
            probs, grad = torch.from_numpy(probs), torch.from_numpy(grad)
            result = torch.scalar_tensor(total, dtype=alpha.dtype)
        else:
            with torch.no_grad():
                result, probs, grad = _torch_forward(alpha.detach(), F.detach().to(alpha.dtype), mask)
        ctx.save_for_backward(grad, probs)
        return result

    @staticmethod
    def backward(ctx, grad_out):
        grad, probs = ctx.saved_tensors
        grad_alpha = grad * grad_out if ctx.needs_input_grad[0] else None
        grad_f = probs * grad_out if ctx.needs_input_grad[1] else None  # autograd casts to F's dtype
        return grad_alpha, grad_f, None


def _as_tensor(x, like: torch.Tensor, dtype=None) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.to(device=like.device, dtype=dtype or x.dtype)
    return torch.as_tensor(np.asarray(x), dtype=dtype, device=like.device)


def _as_mask(mask, like: torch.Tensor) -> torch.Tensor | None:
    if mask is None:
        return None
    m = _as_tensor(mask, like)
    if m.dtype != torch.bool:
        raise ValueError(f"expected_latency: mask must be a bool array, got {m.dtype}")
    return m if m.is_contiguous() else m.contiguous()


def expected_latency(alpha: torch.Tensor, table_or_F, mask=None, space=None) -> torch.Tensor:
    """Expected latency (ms, scalar tensor) of the architecture distribution softmax(alpha).

    `table_or_F`: a LUT matrix F [N, M] (tensor or numpy; `mask` marks valid candidates), or a
    `LatencyTable` together with `space=` (then F and mask come from `table.matrix(space)`; build them
    once with `table.matrix(space)` when calling this every step).
    """
    if not isinstance(alpha, torch.Tensor):
        raise ValueError(f"expected_latency: alpha must be a torch.Tensor, got {type(alpha).__name__}")
    if hasattr(table_or_F, "matrix"):
        if space is None:
            raise ValueError("expected_latency: pass space= together with a LatencyTable (or pass its F matrix)")
        F_np, mask_np = table_or_F.matrix(space)
        F, mask = torch.from_numpy(F_np), mask_np if mask is None else mask
    else:
        F = table_or_F
    if not alpha.is_floating_point():
        raise ValueError(f"expected_latency: alpha must be float32 or float64, got {alpha.dtype}")
    F = _as_tensor(F, alpha)
    m = _as_mask(mask, alpha)
    _check_shapes(alpha, F, m)
    if alpha.dtype not in (torch.float32, torch.float64):
        alpha_c = alpha.to(torch.float32)
        return ExpectedLatency.apply(alpha_c, F, m).to(alpha.dtype)
    return ExpectedLatency.apply(alpha, F, m)


def expected_latency_and_grad(alpha: torch.Tensor, F, mask=None) -> tuple:
    """(E[lat] as a float, dE/dalpha as a tensor like alpha) in one fused kernel call, without autograd.

    For training loops that add the latency term's gradient themselves (alpha.grad += lam * grad):
    it skips PyTorch's autograd bookkeeping, which costs far more than the kernel at search-space sizes.
    """
    if not isinstance(alpha, torch.Tensor) or alpha.dtype not in (torch.float32, torch.float64):
        raise ValueError("expected_latency_and_grad: alpha must be a float32 / float64 torch.Tensor")
    F = _as_tensor(F, alpha, dtype=alpha.dtype)
    m = _as_mask(mask, alpha)
    _check_shapes(alpha, F, m)
    if alpha.device.type != "cpu":
        total, _, grad = _torch_forward(alpha.detach(), F, m)
        return float(total), grad
    a = alpha.detach()
    total, _, grad = _core.expected_latency(a.contiguous().numpy(), F.contiguous().numpy(),
                                            None if m is None else m.numpy(), True)
    return total, torch.from_numpy(grad)


def expected_latency_torch(alpha: torch.Tensor, F: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Reference: the same expectation written in plain differentiable torch ops (autograd does the backward)."""
    valid = torch.ones_like(alpha, dtype=torch.bool) if mask is None else mask
    probs = torch.softmax(alpha.masked_fill(~valid, float("-inf")), dim=1)
    return (probs * F.masked_fill(~valid, 0.0)).sum()


def _choices_array(choices) -> np.ndarray:
    if isinstance(choices, torch.Tensor):
        choices = choices.detach().cpu().numpy()
    arr = np.asarray(choices)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.dtype.kind not in "iu":
        raise ValueError(f"choices must be an integer array [B architectures, N blocks], got {arr.dtype} "
                         f"with shape {arr.shape}")
    if arr.dtype not in (np.int8, np.uint8, np.int16, np.int32, np.int64):
        arr = arr.astype(np.int64)
    return np.ascontiguousarray(arr)


def _matrix_and_mask(F, mask, n_blocks: int):
    if hasattr(F, "detach"):
        F = F.detach().cpu().numpy()
    F = np.ascontiguousarray(F, dtype=np.float64)
    if F.ndim != 2 or F.shape[0] != n_blocks:
        raise ValueError(f"F must be [N blocks, M candidates] with N = {n_blocks} (the columns of choices), "
                         f"got shape {F.shape}")
    if mask is not None:
        if hasattr(mask, "detach"):
            mask = mask.detach().cpu().numpy()
        mask = np.ascontiguousarray(mask)
        if mask.dtype != np.bool_:
            raise ValueError(f"mask must be a bool array, got {mask.dtype}")
    return F, mask


def discrete_latency(choices, F, mask=None, n_threads: int = 0) -> np.ndarray:
    """Latencies (ms, float64 [B]) of B architectures given as chosen candidate indices [B, N].

    Index dtype int8/uint8/int16/int32/int64 is used as is (uint8 is the fastest for big batches).
    An index out of range or pointing to a masked candidate raises ValueError naming it.
    """
    arr = _choices_array(choices)
    F, mask = _matrix_and_mask(F, mask, arr.shape[1])
    return _core.discrete_latency(arr, F, mask, n_threads)


def count_within(choices, F, target_ms: float, mask=None, n_threads: int = 0) -> int:
    """How many of the B architectures [B, N] have latency <= target_ms.

    F covers the searchable blocks only: subtract the fixed ops (`table.fixed_latency_ms(space)`) from a
    whole-network target first."""
    arr = _choices_array(choices)
    F, mask = _matrix_and_mask(F, mask, arr.shape[1])
    return int(_core.count_within(arr, F, float(target_ms), mask, n_threads))
