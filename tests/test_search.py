"""ProxylessNAS trainer: latency pressure, loss forms, auto lambda, logs, checkpoints and resume; data."""
from __future__ import annotations

import json
import math

import pytest
import torch

from vpunas.search import (ClassificationTask, LatencyTerms, ProxylessSearch, SearchConfig, latency_loss,
                           most_probable_within, train_network, TrainConfig)
from _nas_tiny import macs_latency, tiny_data, tiny_space, one_thread

_one_thread = pytest.fixture(autouse=True)(one_thread)


def _trainer(tmp_path=None, **cfg):
    space = tiny_space()
    torch.manual_seed(0)
    net = space.build_supernet()
    base = dict(epochs=2, warmup_epochs=0, batch_size=16, seed=0, a_lr=0.05)
    base.update(cfg)
    return space, ProxylessSearch(net, space.candidate_mask(), ClassificationTask(), tiny_data(64),
                                  tiny_data(32, seed=1), macs_latency(space), SearchConfig(**base),
                                  out_dir=tmp_path, progress=False, factors=space.arch_factors())


def test_alpha_moves_to_cheaper_ops_when_lambda_is_large():
    space, tr = _trainer(lambda_lat=50.0, epochs=3)
    before = tr.expected_latency_ms()
    res = tr.run()
    assert res.expected_latency_ms < 0.7 * before
    # in every block the cheapest candidate gained probability and the most expensive lost it
    probs = torch.tensor(res.probs)
    for i, b in enumerate(space.blocks):
        costs = [op.macs for op in b.candidates]
        n = len(costs)
        assert probs[i, costs.index(min(costs))] > 1.0 / n, b.name
        assert probs[i, costs.index(max(costs))] < 1.0 / n, b.name
        assert costs[res.choices[i]] <= sorted(costs)[1], (b.name, b.choice_names[res.choices[i]])
    assert res.derived_latency_ms == pytest.approx(tr.latency.discrete(res.choices))


def test_without_latency_pressure_alpha_is_not_pushed_to_cheapest():
    _, heavy = _trainer(lambda_lat=50.0, epochs=3)
    _, free = _trainer(lambda_lat=0.0, epochs=3)
    assert free.run().expected_latency_ms > heavy.run().expected_latency_ms


def test_loss_forms():
    ce = torch.tensor(2.0)
    lat = torch.tensor(3.0)
    assert latency_loss(ce, lat, SearchConfig(loss="add"), 0.5).item() == pytest.approx(3.5)
    cfg = SearchConfig(loss="mul", target_ms=1.5, beta=0.5)
    assert latency_loss(ce, lat, cfg, 0.0).item() == pytest.approx(2.0 * 2.0 ** 0.5)
    cfg = SearchConfig(loss="hinge", target_ms=2.0)
    assert latency_loss(ce, lat, cfg, 4.0).item() == pytest.approx(2.0 + 4.0 * 0.5)
    assert latency_loss(ce, torch.tensor(1.0), cfg, 4.0).item() == pytest.approx(2.0)
    cfg = SearchConfig(loss="abs", target_ms=2.0)  # below the target costs too
    assert latency_loss(ce, torch.tensor(1.0), cfg, 4.0).item() == pytest.approx(2.0 + 4.0 * 0.5)
    assert latency_loss(ce, lat, cfg, 4.0).item() == pytest.approx(2.0 + 4.0 * 0.5)
    with pytest.raises(ValueError, match="target"):
        SearchConfig(loss="abs").validate()
    with pytest.raises(ValueError, match="target"):
        SearchConfig(loss="mul").validate()
    with pytest.raises(ValueError, match="loss form"):
        SearchConfig(loss="sq").validate()


def test_auto_lambda_drives_expected_latency_to_target():
    space = tiny_space()
    lat = macs_latency(space)
    start = float(lat.expected(torch.zeros(space.candidate_mask().shape)))
    target = 0.6 * start
    _, tr = _trainer(loss="add", lambda_lat=1e-3, auto_lambda=True, target_ms=target, lambda_rate=0.5, epochs=4)
    res = tr.run()
    assert tr.initial_lambda == pytest.approx(1e-3 / target)
    assert tr.lam > tr.initial_lambda  # E[lat] above target pushed lambda up
    assert res.expected_latency_ms < start
    assert abs(res.expected_latency_ms - target) < abs(start - target)


def test_log_checkpoint_and_resume_reach_same_architecture(tmp_path):
    _, full = _trainer(tmp_path / "full", epochs=3, lambda_lat=2.0)
    res_full = full.run()
    _, part = _trainer(tmp_path / "part", epochs=3, lambda_lat=2.0)
    end_epoch = part._end_epoch

    def killed_after_second_epoch(epoch, stats):
        end_epoch(epoch, stats)  # writes the log and checkpoint
        if epoch == 1:
            raise KeyboardInterrupt

    part._end_epoch = killed_after_second_epoch
    with pytest.raises(KeyboardInterrupt):
        part.run()
    _, resumed = _trainer(tmp_path / "part", epochs=3, lambda_lat=2.0)
    res_resumed = resumed.run(resume=True)
    assert res_resumed.choices == res_full.choices
    torch.testing.assert_close(resumed.arch.alpha.detach(), full.arch.alpha.detach())
    log = json.loads((tmp_path / "part" / "search_log.json").read_text())
    assert [e["epoch"] for e in log["epochs"]] == [0, 1, 2]
    for key in ("alpha", "probs", "expected_latency_ms", "lambda", "argmax"):
        assert key in log["epochs"][-1]
    assert (tmp_path / "part" / "search_checkpoint.pt").is_file()
    _, other = _trainer(tmp_path / "part", epochs=3, lambda_lat=9.0)
    with pytest.raises(ValueError, match="different configuration"):
        other.run(resume=True)


def test_latency_terms_validation():
    with pytest.raises(ValueError, match="differ"):
        LatencyTerms(torch.zeros(2, 3), torch.ones(2, 2, dtype=torch.bool))
    lt = LatencyTerms(torch.tensor([[1.0, 2.0]]), torch.tensor([[True, False]]), fixed_ms=0.5)
    assert lt.discrete([0]) == pytest.approx(1.5)
    with pytest.raises(ValueError, match="do not fit"):
        lt.discrete([1])
    assert float(lt.expected(torch.zeros(1, 2))) == pytest.approx(1.5)


def test_train_network_learns_tiny_task():
    from vpunas.export import build_model

    space = tiny_space()
    model = build_model(space.derive([0, 0, 0]))
    res = train_network(model, ClassificationTask(), tiny_data(96), tiny_data(48, seed=5),
                        TrainConfig(epochs=4, batch_size=16, lr=0.05), progress=False)
    assert res["top1"] > 60.0  # 3 well-separated classes; chance is 33 %


def test_train_network_with_adam_and_unknown_optimizer():
    from vpunas.export import build_model

    model = build_model(tiny_space().derive([0, 0, 0]))
    res = train_network(model, ClassificationTask(), tiny_data(96), tiny_data(48, seed=5),
                        TrainConfig(epochs=4, batch_size=16, lr=0.01, optimizer="adam"), progress=False)
    assert res["top1"] > 60.0
    with pytest.raises(ValueError, match="unknown weight optimizer 'lamb'; use one of sgd, adam"):
        train_network(model, ClassificationTask(), tiny_data(16), tiny_data(16), TrainConfig(optimizer="lamb"),
                      progress=False)
    with pytest.raises(ValueError, match="unknown weight optimizer"):
        SearchConfig(optimizer="rmsprop").validate()


def test_fashion_mnist_reader(tmp_path):
    from vpunas.data.fashion_mnist import FASHION_MNIST_DIR, FashionMNIST, load_fashion_mnist

    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist("test", tmp_path)
    if not FASHION_MNIST_DIR.is_dir():
        pytest.skip("Debian package dataset-fashion-mnist not installed")
    images, labels = load_fashion_mnist("test")
    assert images.shape == (10000, 28, 28) and labels.shape == (10000,)
    assert set(labels.tolist()) == set(range(10))
    ds = FashionMNIST("test", resolution=32, in_ch=3)
    x, y = ds[0]
    assert x.shape == (3, 32, 32) and 0 <= y < 10
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03\x00\x00\x00\x05")
    with pytest.raises(ValueError, match="truncated"):
        load_fashion_mnist("test", tmp_path)


def test_image_folder_tree(tmp_path):
    import numpy as np
    from PIL import Image

    from vpunas.data.loaders import load_classification

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for cls in ("cat", "dog"):
            d = tmp_path / split / cls
            d.mkdir(parents=True)
            for i in range(2):
                Image.fromarray(rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)).save(d / f"{i}.png")
    train, test, n = load_classification(tmp_path, resolution=16, in_ch=3)
    assert n == 2 and len(train) == 4 and len(test) == 4
    x, y = train[3]
    assert x.shape == (3, 16, 16) and y == 1
    (tmp_path / "val" / "bird").mkdir()
    with pytest.raises(ValueError, match="class folders differ"):
        load_classification(tmp_path, resolution=16, in_ch=3)


def test_cli_missing_data_names_the_install_command(tmp_path, capsys):
    from vpunas.cli import main

    rc = main(["search", "classification", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert rc == 2
    assert "apt-get install dataset-fashion-mnist" in capsys.readouterr().err


def test_auto_lambda_on_derived_latency_keeps_the_argmax_net_near_target():
    space = tiny_space()
    lat = macs_latency(space)
    start = lat.discrete([0, 0, 0])
    target = 0.5 * start
    _, tr = _trainer(loss="add", lambda_lat=1e-2, auto_lambda=True, target_ms=target, lambda_rate=0.5,
                     lambda_on="derived", epochs=3)
    res = tr.run()
    assert any(abs(h["lambda"] - tr.initial_lambda) > 1e-12 for h in res.history)
    with pytest.raises(ValueError, match="lambda_on"):
        SearchConfig(lambda_on="argmax").validate()


def test_lambda_band_sets_how_far_off_target_lambda_moves_at_full_rate():
    space = tiny_space()
    lat = macs_latency(space)
    net_ms = lat.discrete(space.candidate_mask().shape[0] * [0])  # the argmax of all-zero logits

    def lambda_after_one_step(band):
        _, tr = _trainer(loss="add", lambda_lat=1e-2, auto_lambda=True, target_ms=net_ms / 0.98,
                         lambda_rate=0.5, lambda_on="derived", lambda_band=band, a_lr=0.0)
        x, y = next(iter(torch.utils.data.DataLoader(tiny_data(16), batch_size=16)))
        tr.arch_step(x, y)
        return tr.lam / tr.initial_lambda

    # 2 % under target: the default band (1.0) barely moves lambda, a 5 % band moves it at 40 % of the rate
    assert lambda_after_one_step(1.0) == pytest.approx(math.exp(-0.5 * 0.02))
    assert lambda_after_one_step(0.05) == pytest.approx(math.exp(-0.5 * 0.4))
    assert lambda_after_one_step(0.01) == pytest.approx(math.exp(-0.5))  # clipped at the full rate
    with pytest.raises(ValueError, match="lambda_band"):
        SearchConfig(lambda_band=0.0).validate()


def test_most_probable_within_budget_matches_brute_force():
    import itertools

    gen = torch.Generator().manual_seed(0)
    for trial in range(60):
        table = torch.rand(4, 5, generator=gen, dtype=torch.float64) * 10
        mask = torch.rand(4, 5, generator=gen) > 0.2
        mask[:, 0] = True
        lat = LatencyTerms(table, mask, fixed_ms=1.0)
        logp = torch.log_softmax(torch.randn(4, 5, generator=gen).masked_fill(~mask, float("-inf")), 1)
        budget = float(torch.rand(1, generator=gen)) * 30 + 1
        fits = [c for c in itertools.product(range(5), repeat=4)
                if all(mask[b, c[b]] for b in range(4)) and lat.discrete(c) <= budget]
        got = most_probable_within(logp, lat, budget, bins=100_000)
        if not fits:
            assert got is None
            continue
        score = lambda c: sum(float(logp[b, c[b]]) for b in range(4))  # noqa: E731
        assert got is not None and lat.discrete(got) <= budget
        assert score(got) == pytest.approx(max(score(c) for c in fits), abs=1e-12), trial
    # coarse bins round latencies up: the answer may be more cautious, never over budget
    got = most_probable_within(logp, lat, 20.0, bins=7)
    assert got is None or lat.discrete(got) <= 20.0


def test_budget_derive_keeps_the_final_net_within_target():
    space = tiny_space()
    lat = macs_latency(space)
    n = space.candidate_mask().shape[0]
    target = 0.8 * lat.discrete(n * [0])
    for derive in ("argmax", "budget"):
        # no architecture steps: the logits stay zero, so the argmax is candidate 0 everywhere (over target)
        _, tr = _trainer(loss="hinge", lambda_lat=1.0, target_ms=target, epochs=1, warmup_epochs=1, derive=derive)
        res = tr.run()
        assert res.argmax == n * [0]
        if derive == "argmax":
            assert res.choices == n * [0] and res.derived_latency_ms > target
        else:
            assert res.derived_latency_ms <= target and res.choices != n * [0]
    with pytest.raises(ValueError, match="derive='budget' needs"):
        SearchConfig(derive="budget").validate()
    with pytest.raises(ValueError, match="derive must be"):
        SearchConfig(derive="best").validate()


def test_factorized_search_moves_to_cheaper_factors_and_logs_them(tmp_path):
    space, tr = _trainer(tmp_path, lambda_lat=50.0, epochs=3, arch_params="factorized")
    before = tr.expected_latency_ms()
    res = tr.run()
    assert res.expected_latency_ms < 0.7 * before
    assert not hasattr(tr.arch, "alpha")  # the parameters are the factor logits
    factors = json.loads((tmp_path / "search_log.json").read_text())["epochs"][-1]["factors"]
    assert all(block["skip"] > 0 for block in factors[:2])  # the blocks that may be skipped: skip won
    last = factors[2]  # no skip there: the cheaper kernel and expand ratio won
    assert last["k=3"] > last["k=5"] and last["e=1"] > last["e=3"], last
    _, resumed = _trainer(tmp_path, lambda_lat=50.0, epochs=3, arch_params="factorized")
    assert resumed.run(resume=True).choices == res.choices  # theta checkpoints and resumes like alpha


def test_factorized_needs_factors():
    space = tiny_space()
    with pytest.raises(ValueError, match="factors"):
        ProxylessSearch(space.build_supernet(), space.candidate_mask(), ClassificationTask(), tiny_data(16),
                        tiny_data(16), macs_latency(space), SearchConfig(arch_params="factorized"), progress=False)
    with pytest.raises(ValueError, match="arch_params"):
        SearchConfig(arch_params="fancy").validate()


def test_train_largest_also_trains_every_blocks_most_expensive_candidate():
    space, tr = _trainer(train_largest=True)
    x, y = next(iter(torch.utils.data.DataLoader(tiny_data(16), batch_size=16)))
    tr.weight_step(x, y, lr=0.01)
    for block, big, b in zip(tr.net.blocks, tr.largest, space.blocks):
        costs = [op.macs for op in b.candidates]
        assert big.indices[0] == costs.index(max(costs))
        assert all(p.grad is not None for p in block.mixed.candidates[big.indices[0]].parameters()), b.name
    _, tr2 = _trainer(train_largest=False)
    tr2.weight_step(x, y, lr=0.01)
    trained = [j for blk in tr2.net.blocks for j, c in enumerate(blk.mixed.candidates)
               if any(p.grad is not None for p in c.parameters())]
    assert len(trained) <= len(tr2.net.blocks)  # without it: only the sampled path
