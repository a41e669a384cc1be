"""Task-agnostic ProxylessNAS building blocks: mixed ops with binary gates and architecture parameters.

Nothing here keeps a mode: which paths run, and whether they are gated, is passed explicitly to every
forward call as a list of `PathSample` (one per mixed op), produced by `ArchParameters`:

* weight step: `arch.sample_single(gen)` -> one path per block, drawn from softmax(alpha); only that
  path runs, so only its weights receive gradients.
* architecture step: `arch.sample_binary(gen)` -> two paths per block drawn from softmax(alpha); one
  of them is made active with probability p restricted to the pair; the output is sum_j g_j * op_j(x)
  with the one-hot gates g produced by `BinaryGate`, whose backward gives the ProxylessNAS estimate
      dL/dalpha_i = sum_j dL/dg_j * p_j * (delta_ij - p_i)     (p = softmax over the sampled pair).
  After the optimiser step, `arch.rescale_(old_alpha, samples)` shifts the pair so that the
  probabilities of the paths not sampled stay unchanged (as in ProxylessNAS).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class PathSample:
    """Which candidates of one mixed op run: `indices`, and the gates over them (None: one ungated path)."""

    indices: tuple
    gates: torch.Tensor | None = None


class BinaryGate(torch.autograd.Function):
    """One-hot gates forward; softmax Jacobian (ProxylessNAS binarized-path estimate) backward."""

    @staticmethod
    def forward(ctx, logits: torch.Tensor, active: int) -> torch.Tensor:
        probs = torch.softmax(logits, dim=0)
        ctx.save_for_backward(probs)
        gates = torch.zeros_like(logits)
        gates[active] = 1.0
        return gates

    @staticmethod
    def backward(ctx, grad_gates: torch.Tensor):
        (probs,) = ctx.saved_tensors
        # dL/dalpha_i = sum_j dL/dg_j p_j (delta_ij - p_i) = p_i (dL/dg_i - sum_j dL/dg_j p_j)
        grad = probs * (grad_gates - (grad_gates * probs).sum())
        return grad, None


class ZeroOp(nn.Module):
    """The 'zero' candidate: outputs zeros, so a residual block reduces to its shortcut (a skipped block)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


class MixedOp(nn.Module):
    """A choice among candidate modules; `forward(x, sample)` runs the sampled ones only."""

    def __init__(self, candidates: list[nn.Module]):
        super().__init__()
        if not candidates:
            raise ValueError("MixedOp needs at least one candidate")
        self.candidates = nn.ModuleList(candidates)

    def forward(self, x: torch.Tensor, sample: PathSample) -> torch.Tensor:
        if sample.gates is None:
            if len(sample.indices) != 1:
                raise ValueError(f"an ungated PathSample must name exactly one path, got {sample.indices}")
            return self.candidates[sample.indices[0]](x)
        out = None
        for gate, idx in zip(sample.gates, sample.indices):
            y = self.candidates[idx](x) * gate
            out = y if out is None else out + y
        return out


class SearchBlock(nn.Module):
    """A mixed op, with an identity shortcut around it when the block keeps its shape."""

    def __init__(self, mixed: MixedOp, residual: bool):
        super().__init__()
        self.mixed = mixed
        self.residual = residual

    def forward(self, x: torch.Tensor, sample: PathSample) -> torch.Tensor:
        y = self.mixed(x, sample)
        return x + y if self.residual else y


class SequentialSuperNet(nn.Module):
    """stem -> search blocks -> head; `forward(x, samples)` with one PathSample per block."""

    def __init__(self, stem: nn.Module, blocks: list[SearchBlock], head: nn.Module):
        super().__init__()
        self.stem = stem
        self.blocks = nn.ModuleList(blocks)
        self.head = head

    def forward(self, x: torch.Tensor, samples: list[PathSample]) -> torch.Tensor:
        if len(samples) != len(self.blocks):
            raise ValueError(f"got {len(samples)} path samples for {len(self.blocks)} search blocks")
        x = self.stem(x)
        for block, sample in zip(self.blocks, samples):
            x = block(x, sample)
        return self.head(x)


class ArchParameters(nn.Module):
    """alpha [N blocks, M candidates] with a validity mask (blocks may have fewer candidates)."""

    def __init__(self, mask: torch.Tensor):
        super().__init__()
        mask = torch.as_tensor(mask, dtype=torch.bool)
        if mask.ndim != 2 or not bool(mask.any(dim=1).all()):
            raise ValueError("the candidate mask must be [N, M] with at least one valid candidate per block")
        self.register_buffer("mask", mask)
        self.alpha = nn.Parameter(torch.zeros(mask.shape, dtype=torch.float32))

    def masked_logits(self) -> torch.Tensor:
        return self.alpha.masked_fill(~self.mask, float("-inf"))

    def probs(self) -> torch.Tensor:
        return torch.softmax(self.masked_logits(), dim=1)

    def argmax(self) -> list[int]:
        return [int(i) for i in self.masked_logits().argmax(dim=1)]

    @torch.no_grad()
    def sample_single(self, gen: torch.Generator) -> list[PathSample]:
        # Sampling happens on the CPU with the caller's generator: identical draws on every rank/device.
        idx = torch.multinomial(self.probs().cpu(), 1, generator=gen)[:, 0]
        return [PathSample((int(i),)) for i in idx]

    def sample_binary(self, gen: torch.Generator) -> list[PathSample]:
        with torch.no_grad():
            probs = self.probs().cpu()
            n_valid = self.mask.sum(dim=1).cpu()
        samples = []
        for b in range(probs.shape[0]):
            k = 2 if int(n_valid[b]) >= 2 else 1
            pair = torch.multinomial(probs[b], k, replacement=False, generator=gen).tolist()
            logits = self.alpha[b, pair]
            with torch.no_grad():
                pair_probs = torch.softmax(logits, dim=0).cpu()
                active = int(torch.multinomial(pair_probs, 1, generator=gen))
            samples.append(PathSample(tuple(pair), BinaryGate.apply(logits, active)))
        return samples

    @torch.no_grad()
    def rescale_(self, old_alpha: torch.Tensor, samples: list[PathSample]) -> None:
        """Shift each updated pair so sum(exp) over it is unchanged: unsampled paths keep their probability."""
        for b, s in enumerate(samples):
            idx = list(s.indices)
            if len(idx) < 2:
                continue
            offset = torch.logsumexp(self.alpha[b, idx], 0) - torch.logsumexp(old_alpha[b, idx], 0)
            self.alpha[b, idx] -= offset
