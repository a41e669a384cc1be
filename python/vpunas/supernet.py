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

`FactorizedArchParameters` builds the candidate logits from shared factor logits instead (kernel, width,
activation, skip ... each learned once per block, `ArchFactors`): with dozens of candidates per block, a
free logit per candidate is sampled too rarely to learn anything in a short search.
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


def _checked_mask(mask) -> torch.Tensor:
    mask = torch.as_tensor(mask, dtype=torch.bool)
    if mask.ndim != 2 or not bool(mask.any(dim=1).all()):
        raise ValueError("the candidate mask must be [N, M] with at least one valid candidate per block")
    return mask


class _CandidateLogits(nn.Module):
    """Sampling, probabilities and argmax over per-block candidate logits [N, M] (masked entries invalid);
    subclasses say how the logits are parameterised (`logits()`)."""

    mask: torch.Tensor

    def logits(self) -> torch.Tensor:
        raise NotImplementedError

    def masked_logits(self) -> torch.Tensor:
        return self.logits().masked_fill(~self.mask, float("-inf"))

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
        logits_all = self.logits()
        with torch.no_grad():
            probs = self.probs().cpu()
            n_valid = self.mask.sum(dim=1).cpu()
        samples = []
        for b in range(probs.shape[0]):
            k = 2 if int(n_valid[b]) >= 2 else 1
            pair = torch.multinomial(probs[b], k, replacement=False, generator=gen).tolist()
            logits = logits_all[b, pair]
            with torch.no_grad():
                pair_probs = torch.softmax(logits, dim=0).cpu()
                active = int(torch.multinomial(pair_probs, 1, generator=gen))
            samples.append(PathSample(tuple(pair), BinaryGate.apply(logits, active)))
        return samples

    def rescale_(self, old_logits: torch.Tensor, samples: list[PathSample]) -> None:
        """Hook after an optimiser step (see `ArchParameters.rescale_`); nothing to do by default."""


class ArchParameters(_CandidateLogits):
    """alpha [N blocks, M candidates]: one free logit per candidate, with a validity mask (blocks may have
    fewer candidates)."""

    def __init__(self, mask: torch.Tensor):
        super().__init__()
        mask = _checked_mask(mask)
        self.register_buffer("mask", mask)
        self.alpha = nn.Parameter(torch.zeros(mask.shape, dtype=torch.float32))

    def logits(self) -> torch.Tensor:
        return self.alpha

    @torch.no_grad()
    def rescale_(self, old_logits: torch.Tensor, samples: list[PathSample]) -> None:
        """Shift each updated pair so sum(exp) over it is unchanged: unsampled paths keep their probability."""
        for b, s in enumerate(samples):
            idx = list(s.indices)
            if len(idx) < 2:
                continue
            offset = torch.logsumexp(self.alpha[b, idx], 0) - torch.logsumexp(old_logits[b, idx], 0)
            self.alpha[b, idx] -= offset


@dataclass(frozen=True)
class ArchFactors:
    """How a space's candidates decompose into shared choices: candidate j of block n has the logit
    sum_k basis[n, j, k] * theta[n, k], where k runs over factor values (e.g. 'skip', 'k1=3', 'mid=64').
    `init` is theta's starting value, `names` [N][K] the factor values' names (logs). Build it with
    `from_candidates`."""

    basis: torch.Tensor
    init: torch.Tensor
    names: list

    def __post_init__(self):
        basis = torch.as_tensor(self.basis, dtype=torch.float32)
        init = torch.as_tensor(self.init, dtype=torch.float32)
        if basis.ndim != 3 or init.shape != (basis.shape[0], basis.shape[2]):
            raise ValueError(f"factor basis must be [N, M, K] with init [N, K]; got {tuple(basis.shape)} and "
                             f"{tuple(init.shape)}")
        if not bool(torch.isfinite(basis).all()):
            raise ValueError("factor basis has non-finite entries")
        if len(self.names) != basis.shape[0] or any(len(n) > basis.shape[2] for n in self.names):
            raise ValueError("factor names must list at most K names for each of the N blocks")
        object.__setattr__(self, "basis", basis)
        object.__setattr__(self, "init", init)

    @classmethod
    def from_candidates(cls, blocks: list, num_choices: int) -> "ArchFactors":
        """blocks[n][j]: the factor values of candidate j of block n, each 'group=value' ('k1=3', 'mid=64')
        or a bare flag ('skip'). A group's logits are centred (basis 1 - 1/|group| on its own value,
        -1/|group| on the others), so they only say how its values compare: a change common to all of
        them, e.g. 'this block costs too much', is carried by the flag ('skip') alone. Uncentred, Adam's
        per-parameter step sizes would move every kernel of a costly block down at the same pace and the
        kernels would never separate. For a full Cartesian product, softmax over the candidates is the
        product of one softmax per group. theta starts at 0: uniform over the candidates."""
        names = []
        for cands in blocks:
            seen: dict = {}
            for values in cands:
                for v in values:
                    seen.setdefault(v, None)
            names.append(list(seen))
        k = max(len(n) for n in names)
        basis = torch.zeros(len(blocks), num_choices, k)
        for b, (cands, block_names) in enumerate(zip(blocks, names)):
            groups: dict = {}
            for i, v in enumerate(block_names):
                if "=" in v:
                    groups.setdefault(v.split("=", 1)[0], []).append(i)
            for j, values in enumerate(cands):
                for v in values:
                    i = block_names.index(v)
                    if "=" in v:
                        members = groups[v.split("=", 1)[0]]
                        basis[b, j, members] -= 1.0 / len(members)
                    basis[b, j, i] += 1.0
        return cls(basis, torch.zeros(len(blocks), k), names)


class FactorizedArchParameters(_CandidateLogits):
    """Candidate logits built from factor logits theta [N, K] (`ArchFactors`). There is no rescaling
    after a step: a factor value is shared by many candidates, and moving all of them is the point."""

    def __init__(self, mask: torch.Tensor, factors: ArchFactors):
        super().__init__()
        mask = _checked_mask(mask)
        if tuple(factors.basis.shape[:2]) != tuple(mask.shape):
            raise ValueError(f"factor basis {tuple(factors.basis.shape)} does not fit the candidate mask "
                             f"{tuple(mask.shape)}")
        self.register_buffer("mask", mask)
        self.register_buffer("basis", factors.basis.clone())
        self.theta = nn.Parameter(factors.init.clone())
        self.factor_names = [list(n) for n in factors.names]

    def logits(self) -> torch.Tensor:
        return torch.einsum("nk,nmk->nm", self.theta, self.basis)

    @torch.no_grad()
    def factor_logits(self) -> list[dict]:
        """Per block, {factor value name: theta} (what the search is deciding; for logs)."""
        return [{name: float(t) for name, t in zip(names, row)} for names, row in zip(self.factor_names, self.theta)]
