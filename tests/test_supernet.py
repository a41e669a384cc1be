"""Supernet mechanics: the binarized-gate gradient estimate, path sampling, rescaling, the MBConv space."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from vpunas.supernet import (ArchFactors, ArchParameters, BinaryGate, FactorizedArchParameters, MixedOp, PathSample,
                             SearchBlock)
from _nas_tiny import tiny_space, one_thread

_one_thread = pytest.fixture(autouse=True)(one_thread)


def test_binary_gate_gradient_matches_proxylessnas_formula():
    torch.manual_seed(0)
    cands = [nn.Conv2d(4, 4, 3, padding=1) for _ in range(3)]
    mixed = MixedOp(cands)
    x = torch.randn(2, 4, 5, 5)
    alpha = torch.randn(3, requires_grad=True)
    pair = [2, 0]
    logits = alpha[pair]
    gates = BinaryGate.apply(logits, 1)
    assert gates.tolist() == [0.0, 1.0]
    gates.retain_grad()
    out = mixed(x, PathSample(tuple(pair), gates))
    loss = (out ** 2).mean()
    loss.backward()
    dg = gates.grad
    p = torch.softmax(alpha.detach()[pair], 0)
    # dL/dalpha_i = sum_j dL/dg_j p_j (delta_ij - p_i)
    expected = torch.zeros(3)
    for i in range(2):
        expected[pair[i]] = sum(dg[j] * p[j] * ((1.0 if i == j else 0.0) - p[i]) for j in range(2))
    torch.testing.assert_close(alpha.grad, expected)
    # the gate gradients are the path outputs' contribution dL/dout . op_j(x): non-zero for both paths
    assert (dg.abs() > 0).all()
    assert alpha.grad[1] == 0.0  # not sampled


def test_gated_forward_equals_active_path():
    torch.manual_seed(0)
    mixed = MixedOp([nn.Conv2d(2, 2, 1), nn.Conv2d(2, 2, 3, padding=1)])
    x = torch.randn(1, 2, 4, 4)
    gates = BinaryGate.apply(torch.zeros(2, requires_grad=True), 0)
    torch.testing.assert_close(mixed(x, PathSample((1, 0), gates)), mixed.candidates[1](x))
    with pytest.raises(ValueError, match="exactly one path"):
        mixed(x, PathSample((0, 1)))


def test_only_sampled_paths_receive_weight_gradients():
    space = tiny_space()
    net = space.build_supernet()
    arch = ArchParameters(space.candidate_mask())
    samples = arch.sample_single(torch.Generator().manual_seed(3))
    x = torch.randn(4, 1, 8, 8)
    net(x, samples).sum().backward()
    for block, s in zip(net.blocks, samples):
        for j, cand in enumerate(block.mixed.candidates):
            grads = [p.grad for p in cand.parameters()]
            if j == s.indices[0]:
                assert all(g is not None for g in grads)
            else:
                assert all(g is None for g in grads), f"unsampled candidate {j} got a gradient"
    assert arch.alpha.grad is None  # weight steps never touch alpha


def test_rescale_keeps_unsampled_probabilities():
    arch = ArchParameters(torch.ones(2, 4, dtype=torch.bool))
    with torch.no_grad():
        arch.alpha.copy_(torch.randn(2, 4))
    gen = torch.Generator().manual_seed(0)
    samples = arch.sample_binary(gen)
    before = arch.probs().detach().clone()
    old = arch.alpha.detach().clone()
    with torch.no_grad():
        for b, s in enumerate(samples):
            arch.alpha[b, s.indices[0]] += 0.7
            arch.alpha[b, s.indices[1]] -= 0.2
    arch.rescale_(old, samples)
    after = arch.probs().detach()
    for b, s in enumerate(samples):
        others = [j for j in range(4) if j not in s.indices]
        torch.testing.assert_close(after[b, others], before[b, others])
        assert after[b, s.indices[0]] > before[b, s.indices[0]]


def test_sampling_respects_mask_and_is_reproducible():
    mask = torch.tensor([[True, True, False], [True, False, False]])
    arch = ArchParameters(mask)
    a = [s.indices for _ in range(20) for s in arch.sample_single(torch.Generator().manual_seed(1))]
    b = [s.indices for _ in range(20) for s in arch.sample_single(torch.Generator().manual_seed(1))]
    assert a == b
    for _ in range(30):
        s = arch.sample_binary(torch.Generator().manual_seed(_))
        assert set(s[0].indices) == {0, 1} and s[1].indices == (0,)
    with pytest.raises(ValueError, match="at least one valid"):
        ArchParameters(torch.tensor([[True], [False]]))


def test_mbconv_space_shapes_skip_and_derive_round_trip():
    space = tiny_space()
    assert space.input_size == (1, 8, 8)
    names = [b.choice_names for b in space.blocks]
    # skip only where the block keeps its shape (stage 1 keeps 16 channels at stride 1; stage 2 changes it)
    assert [("skip" in n) for n in names] == [True, True, False]
    assert all(op.out_ch % 16 == 0 for b in space.blocks for op in b.candidates if hasattr(op, "out_ch"))
    mask = space.candidate_mask()
    assert mask.shape == (3, 5) and mask.sum() == 5 + 5 + 4
    rng = np.random.default_rng(0)
    for _ in range(5):
        choices = space.sample_arch(rng)
        arch = space.derive(choices)
        assert space.choices_from_arch(arch) == choices
        assert len(arch["blocks"]) == len(space.blocks) + 1
    with pytest.raises(ValueError, match="out of range"):
        space.derive([0, 9, 0])
    with pytest.raises(ValueError, match="unknown MBConv preset"):
        tiny_space(preset="nope")


def test_presets_and_registry():
    from vpunas.spaces import get_space, list_spaces

    assert {"mbconv", "small-32", "mobilenetv2-224"} <= set(list_spaces())
    big = get_space("mobilenetv2-224")
    assert big.input_size == (3, 224, 224) and len(big.blocks) == 21
    assert big.fixed_ops[-1].out_f == 1000
    with pytest.raises(ValueError, match="unknown search space"):
        get_space("no-such-space")
    # the supernet runs a forward on each preset's small variant
    small = get_space("small-32", width_mult=0.5)
    net = small.build_supernet()
    arch = ArchParameters(small.candidate_mask())
    out = net(torch.randn(1, 1, 32, 32), arch.sample_single(torch.Generator().manual_seed(0)))
    assert out.shape == (1, 10)


def test_search_block_residual():
    blk = SearchBlock(MixedOp([nn.Identity()]), residual=True)
    x = torch.ones(1, 1, 2, 2)
    torch.testing.assert_close(blk(x, PathSample((0,))), 2 * x)


def _edsr_space():
    from vpunas.spaces.edsr import EdsrSpace

    return EdsrSpace(width=16, max_blocks=2, kernels=(1, 3), mids=(16, 32), input_hw=(8, 8))


def test_factorized_logits_give_a_product_of_factor_softmaxes():
    space = _edsr_space()
    arch = FactorizedArchParameters(space.candidate_mask(), space.arch_factors())
    torch.testing.assert_close(arch.probs()[0], torch.full((17,), 1 / 17))  # theta = 0: uniform, like alpha = 0
    with torch.no_grad():
        arch.theta.normal_()
    raw = {n: float(t) for n, t in zip(arch.factor_names[0], arch.theta[0].detach())}
    groups = {"k1": (1, 3), "k2": (1, 3), "mid": (16, 32), "act": ("relu", "leaky_relu")}
    # a group's effective logits are centred: theta_v - mean over the group
    theta = {"skip": raw["skip"]}
    for g, vals in groups.items():
        mean = sum(raw[f"{g}={v}"] for v in vals) / len(vals)
        theta.update({f"{g}={v}": raw[f"{g}={v}"] - mean for v in vals})
    p = arch.probs().detach()[0]
    p_res = 1 - p[0]
    assert float(p[0]) == pytest.approx(
        math.exp(theta["skip"]) / (math.exp(theta["skip"]) + math.prod(
            sum(math.exp(theta[f"{f}={v}"]) for v in vals)
            for f, vals in (("k1", (1, 3)), ("k2", (1, 3)), ("mid", (16, 32)), ("act", ("relu", "leaky_relu"))))),
        rel=1e-5)

    def factor_softmax(name, vals):
        e = [math.exp(theta[f"{name}={v}"]) for v in vals]
        return [x / sum(e) for x in e]

    pk1, pk2 = factor_softmax("k1", (1, 3)), factor_softmax("k2", (1, 3))
    pm, pa = factor_softmax("mid", (16, 32)), factor_softmax("act", ("relu", "leaky_relu"))
    for j, c in enumerate(space.res_choices, start=1):
        want = pk1[(1, 3).index(c.k1)] * pk2[(1, 3).index(c.k2)] * pm[(16, 32).index(c.mid)] * \
            pa[("relu", "leaky_relu").index(c.act)]
        assert float(p[j] / p_res) == pytest.approx(want, rel=1e-5)
    # the upsampler block: (mode, width) candidates only; the padding columns stay masked
    n_up = len(space.up_choices)
    up = arch.probs().detach()[-1]
    assert bool((up[n_up:] == 0).all()) and float(up.sum()) == pytest.approx(1.0)


def test_factorized_gate_gradient_reaches_every_factor_of_the_sampled_pair():
    space = _edsr_space()
    arch = FactorizedArchParameters(space.candidate_mask(), space.arch_factors())
    samples = arch.sample_binary(torch.Generator().manual_seed(0))
    loss = sum(s.gates[0] * 1.0 + s.gates[-1] * 2.0 for s in samples)
    loss.backward()
    # chain rule: dL/dtheta = basis^T dL/dalpha, with dL/dalpha from the ProxylessNAS gate estimate
    alpha = arch.logits().detach().requires_grad_(True)
    gates = [BinaryGate.apply(alpha[b, list(s.indices)], int(s.gates.argmax())) for b, s in enumerate(samples)]
    sum(g[0] * 1.0 + g[-1] * 2.0 for g in gates).backward()
    torch.testing.assert_close(arch.theta.grad, torch.einsum("nm,nmk->nk", alpha.grad, arch.basis))
    # the pair's gate gradients sum to 0, so a factor both candidates share (same row entries) learns nothing
    # from the pair; only the factors in which the two candidates differ move
    for b, s in enumerate(samples):
        rows = arch.basis[b, list(s.indices)]
        shared = (rows[0] == rows[1])
        torch.testing.assert_close(arch.theta.grad[b][shared], torch.zeros(int(shared.sum())))
    assert float(arch.theta.grad.abs().sum()) > 0


def test_factor_basis_is_checked_and_centred():
    mask = torch.ones(1, 2, dtype=torch.bool)
    with pytest.raises(ValueError, match="does not fit"):
        FactorizedArchParameters(mask, ArchFactors(torch.ones(2, 2, 1), torch.zeros(2, 1), [["a"], ["a"]]))
    with pytest.raises(ValueError, match=r"\[N, M, K\]"):
        ArchFactors(torch.ones(2, 2), torch.zeros(2, 1), [["a"], ["a"]])
    with pytest.raises(ValueError, match="non-finite"):
        ArchFactors(torch.full((1, 2, 1), float("nan")), torch.zeros(1, 1), [["a"]])
    # the MBConv space factorises too: kernel, expand, skip; groups are centred, the skip flag is not
    f = tiny_space().arch_factors()
    assert sorted(f.names[0]) == ["e=1", "e=3", "k=3", "k=5", "skip"] and f.basis.shape == (3, 5, 5)
    n = f.names[0]
    row = f.basis[0, 0]  # k=3, e=1
    assert float(row[n.index("k=3")]) == 0.5 and float(row[n.index("k=5")]) == -0.5
    assert float(row[n.index("e=1")]) == 0.5 and float(row[n.index("skip")]) == 0.0
    skip_row = f.basis[0, 4]
    assert float(skip_row[n.index("skip")]) == 1.0 and float(skip_row.abs().sum()) == 1.0


def test_centred_factors_separate_values_under_a_common_push():
    """A cost pushing every kernel of a block down (the block is too slow) must still rank the kernels:
    with uncentred factors Adam moves them all by ~lr per step and they never separate."""
    space = tiny_space()
    arch = FactorizedArchParameters(space.candidate_mask(), space.arch_factors())
    opt = torch.optim.Adam(arch.parameters(), lr=0.05, betas=(0.0, 0.999))
    cost = torch.tensor([[1.0, 2.0, 3.0, 4.0, 0.0]] * 2 + [[1.0, 2.0, 3.0, 4.0, 0.0]])  # k3e1 < k3e3 < k5e1 < k5e3
    for _ in range(100):
        opt.zero_grad()
        (arch.probs() * cost).sum().backward()
        opt.step()
    n = arch.factor_names[0]
    theta = arch.theta.detach()[0]
    assert theta[n.index("skip")] > 0 and theta[n.index("k=3")] > theta[n.index("k=5")]
    assert theta[n.index("e=1")] > theta[n.index("e=3")]
