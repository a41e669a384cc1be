"""Tiling / splitting logic vs VPUNN's own splits, without any NN.

The golden layer files list, for every costed strategy row, the tiles VPUNN made (`split_detail`), the
workloads of the chosen split per tile with their single-call cycles, the number of candidate splits it
evaluated, and the DMA terms. Checked here:
  * our inter-tile split gives the same tiles (shapes, padding-derived input sizes, ISI, owt);
  * our intra-tile splitter proposes exactly as many candidate splits, and VPUNN's chosen split is one of
    ours (same workloads: shapes, padding, execution mode, ISI, owt, op);
  * VPUNN's greedy schedule of the listed cycles gives the listed tile cycles;
  * weight-fetch DMA per tile and the DDR in/out DMA term match.
"""
from __future__ import annotations

import csv
import re

import numpy as np
import pytest

from vpunas import _core
from vpunas.costmodel import ENUM_NAMES, WORKLOAD_DTYPE, read_workloads_csv

STEMS = ["vpu_2_0", "vpu_2_7", "vpu_4_0"]
TILE_RE = re.compile(r"T(\d+)\{(\d+)x(\d+)x(\d+)<(\d+)x(\d+)x(\d+)/(\w+)/owt(\d+)\}:(.*)")
WL_RE = re.compile(r"(\d+)x(\d+)x(\d+)<(\d+)x(\d+)x(\d+)/p(\d+)\.(\d+)\.(\d+)\.(\d+)/(\w+)/(\w+)/owt(\d+)/c(\d+)(.*)")
DPUS_PER_TILE = {"VPU_2_0": 5, "VPU_2_7": 1, "VPU_4_0": 1}


def _parse_detail(text):
    tiles = []
    for part in text.split(" ; "):
        m = TILE_RE.match(part.strip())
        assert m, part[:80]
        wls = []
        for tok in m.group(10).split():
            w = WL_RE.match(tok)
            assert w, tok
            extra = dict(kv.split("=", 1) for kv in w.group(15).split("/") if "=" in kv and not kv.startswith("halo"))
            wls.append({"out": tuple(map(int, w.group(1, 2, 3))), "in": tuple(map(int, w.group(4, 5, 6))),
                        "pad": tuple(map(int, w.group(7, 8, 9, 10))), "mode": w.group(11), "isi": w.group(12),
                        "owt": int(w.group(13)), "c": int(w.group(14)), "op": extra.get("op")})
        tiles.append({"out": tuple(map(int, m.group(2, 3, 4))), "in": tuple(map(int, m.group(5, 6, 7))),
                      "isi": m.group(8), "owt": int(m.group(9)), "workloads": wls})
    return tiles


def _wl_key(rec, layer_op):
    names = ENUM_NAMES
    op = names["op"][int(rec["op"])]
    return ((int(rec["out_w"]), int(rec["out_h"]), int(rec["out_c"])), (int(rec["in_w"]), int(rec["in_h"]), int(rec["in_c"])),
            (int(rec["pad_t"]), int(rec["pad_b"]), int(rec["pad_l"]), int(rec["pad_r"])),
            names["exec_mode"][int(rec["exec_mode"])], names["isi"][int(rec["isi"])], int(rec["owt"]),
            None if op == layer_op else op)


@pytest.mark.parametrize("stem", STEMS)
def test_split_matches_vpunn(stem, golden_dir, capsys):
    path = golden_dir / f"layer_{stem}.csv"
    layers, header, rows = read_workloads_csv(path, return_header=True)
    col = {n: i for i, n in enumerate(header)}
    dev = rows[0][col["device"]]
    dev_index = ENUM_NAMES["device"].index(dev)
    checked = {"rows": 0, "tiles": 0, "candidates": 0, "chosen_found": 0, "schedule": 0, "w_dma": 0, "ddr_io": 0}
    seen = set()
    cand_cache = {}
    for i, r in enumerate(rows):
        g = lambda name: r[col[name]]  # noqa: E731
        if g("strategy") == "BEST" or g("cycles_error") or not g("split_detail"):
            continue
        key = tuple(r[:col["source"]][2:]) + (g("strategy"), g("nDPU"), g("nTiles"), g("prefetching"))
        if key in seen:  # same layer/strategy/hardware under another config name: nothing new to check
            continue
        seen.add(key)
        checked["rows"] += 1
        n_dpu, n_tiles = int(g("nDPU")), int(g("nTiles"))
        golden_tiles = _parse_detail(g("split_detail"))
        err, tiles = _core.layer_split_tiles(layers[i:i + 1], g("strategy"), n_tiles)
        assert err == 0, f"row {i}: our layer check refused a layer VPUNN costed ({err})"
        assert len(tiles) == len(golden_tiles), f"row {i}: {len(tiles)} tiles, VPUNN {len(golden_tiles)}"
        n_cands = [int(x) for x in g("tile_n_candidate_splits").split(";")]
        tile_cycles = [int(x) for x in g("tile_cycles").split(";")]
        w_dma = [int(x) for x in g("tile_dma_w_cycles").split(";")]
        ours_w = _core.weight_bytes(tiles)
        for t, (tile, gt) in enumerate(zip(tiles, golden_tiles)):
            assert (int(tile["out_w"]), int(tile["out_h"]), int(tile["out_c"])) == gt["out"], f"row {i} tile {t}"
            assert (int(tile["in_w"]), int(tile["in_h"]), int(tile["in_c"])) == gt["in"], f"row {i} tile {t}"
            assert ENUM_NAMES["isi"][int(tile["isi"])] == gt["isi"] and int(tile["owt"]) == gt["owt"], f"row {i}"
            checked["tiles"] += 1
            ckey = (tiles[t:t + 1].tobytes(), n_dpu)
            if ckey not in cand_cache:  # identical tiles (clustering, equal slices) are split identically
                cand_cache[ckey] = _core.layer_tile_candidates(tiles[t:t + 1], n_dpu)
            cands = cand_cache[ckey]
            assert len(cands) == n_cands[t], f"row {i} tile {t}: {len(cands)} candidate splits, VPUNN {n_cands[t]}"
            checked["candidates"] += 1
            golden_keys = [(w["out"], w["in"], w["pad"], w["mode"], w["isi"], w["owt"], w["op"]) for w in gt["workloads"]]
            fkey = (ckey, tuple(golden_keys))
            if fkey not in cand_cache:
                cand_cache[fkey] = any(len(c) == len(golden_keys) and [_wl_key(w, g("op")) for w in c] == golden_keys
                                       for c in cands)
            found = cand_cache[fkey]
            assert found, f"row {i} tile {t}: VPUNN's chosen split is not among our candidates"
            checked["chosen_found"] += 1
            sched = _core.schedule_cycles([w["c"] for w in gt["workloads"]], DPUS_PER_TILE[dev])
            assert sched == tile_cycles[t], f"row {i} tile {t}: schedule {sched} != {tile_cycles[t]}"
            checked["schedule"] += 1
            if g("prefetching") == "0":
                assert _core.dma_cycles(dev_index, ours_w[t]) == w_dma[t], f"row {i} tile {t}: weight DMA"
                checked["w_dma"] += 1
        if g("input_in_ddr") == "1":
            in_b = 2 if g("in_dtype") in ("FLOAT16", "BFLOAT16") else 1
            out_b = 2 if g("out_dtype") in ("FLOAT16", "BFLOAT16") else 1
            io = (_core.dma_cycles(dev_index, int(g("in_w")) * int(g("in_h")) * int(g("in_c")) * in_b)
                  + _core.dma_cycles(dev_index, int(g("out_w")) * int(g("out_h")) * int(g("out_c")) * out_b))
            assert io == int(g("ddr_io_dma_cycles")), f"row {i}: DDR DMA {io} != {g('ddr_io_dma_cycles')}"
            checked["ddr_io"] += 1
    with capsys.disabled():
        print(f"\nsplit checks {stem}: " + ", ".join(f"{k}={v}" for k, v in checked.items()))
    assert checked["rows"] > 100


def test_refusals_match_layer_checks(golden_dir):
    """Layers VPUNN refuses before splitting (ERROR_INVALID_LAYER_CONFIGURATION) are refused by our checks."""
    for stem in STEMS:
        layers, header, rows = read_workloads_csv(golden_dir / f"layer_{stem}.csv", return_header=True)
        col = {n: i for i, n in enumerate(header)}
        for i, r in enumerate(rows):
            if r[col["strategy"]] == "BEST":
                continue
            err, _ = _core.layer_split_tiles(layers[i:i + 1], r[col["strategy"]], int(r[col["nTiles"]]))
            if r[col["cycles_error"]] == "ERROR_INVALID_LAYER_CONFIGURATION":
                assert err == 4294967287, f"{stem} row {i}: VPUNN refused the layer, we did not"
            elif r[col["n_split_tiles"]] not in ("", "0"):
                assert err == 0, f"{stem} row {i}: we refused a layer VPUNN split"


def test_split_api_errors():
    rec = np.zeros(1, dtype=WORKLOAD_DTYPE)
    with pytest.raises(ValueError, match="tiling strategy"):
        _core.layer_split_tiles(rec, "SOX", 2)
    with pytest.raises(ValueError, match="n_dpu"):
        _core.layer_tile_candidates(rec, 0)
    with pytest.raises(ValueError, match="WORKLOAD_DTYPE"):
        _core.layer_split_tiles(np.zeros(1, dtype=np.int32), "SOHO", 2)
