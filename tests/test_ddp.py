"""Two CPU processes (gloo) search a tiny space: every rank samples the same paths and ends with identical
alpha and weights (the rank-divergence bug other NAS tools have)."""
from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    import sys

    sys.path.insert(0, os.path.dirname(__file__))
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        from _nas_tiny import macs_latency, tiny_data, tiny_space
        from vpunas.search import ClassificationTask, ProxylessSearch, SearchConfig

        space = tiny_space()
        torch.manual_seed(100 + rank)  # different initial weights: DDP must broadcast rank 0's
        net = space.build_supernet()
        cfg = SearchConfig(epochs=2, warmup_epochs=0, batch_size=8, seed=3, a_lr=0.05, lambda_lat=1.0)
        tr = ProxylessSearch(net, space.candidate_mask(), ClassificationTask(), tiny_data(64), tiny_data(32, seed=1),
                             macs_latency(space), cfg, out_dir=os.path.join(out_dir, "run") if rank == 0 else None,
                             progress=False)
        paths = []
        orig = tr.arch.sample_single

        def recording(gen):
            s = orig(gen)
            paths.append([x.indices for x in s])
            return s

        tr.arch.sample_single = recording
        res = tr.run()
        torch.save({"alpha": tr.arch.alpha.detach().clone(), "paths": paths, "choices": res.choices,
                    "weights": {k: v.clone() for k, v in tr.net.state_dict().items()}},
                   os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed not available")
def test_two_ranks_hold_identical_alpha_and_paths(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=False)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=False)
    assert r0["paths"] == r1["paths"] and len(r0["paths"]) == 2 * 4  # 64 / 2 ranks / batch 8 = 4 steps
    assert torch.equal(r0["alpha"], r1["alpha"])
    assert not torch.equal(r0["alpha"], torch.zeros_like(r0["alpha"]))  # alpha did move
    assert r0["choices"] == r1["choices"]
    for k, v in r0["weights"].items():
        torch.testing.assert_close(v, r1["weights"][k], msg=f"weights {k} diverged across ranks")
    assert (tmp_path / "run" / "search_log.json").is_file()
