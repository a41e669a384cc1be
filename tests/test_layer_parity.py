"""Layer costs vs VPUNN's own layer cost model (golden layer_<model>.csv).

Every row (each strategy and the BEST row of every layer and hardware configuration) is recomputed with
LayerCostModel on the same .vpunn file. Prints per device / configuration: MAPE on the rows both sides
cost, Spearman rank correlation, exact matches (within max(2 cycles, 1e-5 relative), the tolerance the
golden README gives for float summation order), and error-code agreement. Fails above 10 % MAPE.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from vpunas.costmodel import VPUNN, error_name, is_error, read_workloads_csv
from vpunas.layercost import LayerCostModel

from conftest import model_path

MODELS = ["vpu_2_0", "vpu_2_7", "vpu_2_7.fast", "vpu_4_0"]


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="stable")
    r = np.empty(len(x), dtype=np.float64)
    r[order] = np.arange(len(x))
    # average ranks of ties
    vals, inv, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.zeros(len(vals))
    np.add.at(sums, inv, r)
    return (sums / counts)[inv]


def spearman(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(a) < 3:
        return float("nan")
    ra, rb = _ranks(a), _ranks(b)
    return float(np.corrcoef(ra, rb)[0, 1])


def layer_parity(golden_csv, model_file):
    """Recomputes every row of a golden layer file; returns {config: stats} and the per-row results."""
    layers, header, rows = read_workloads_csv(golden_csv, return_header=True)
    col = {n: i for i, n in enumerate(header)}
    model = LayerCostModel(VPUNN(model_file))
    groups = defaultdict(list)
    for i, r in enumerate(rows):
        key = (r[col["config"]], r[col["strategy"]], int(r[col["nDPU"]]), int(r[col["nTiles"]]),
               r[col["input_in_ddr"]] == "1", r[col["output_in_ddr"]] == "1", r[col["prefetching"]] == "1")
        groups[key].append(i)
    ours = np.zeros(len(rows), dtype=np.uint32)
    for (config, strategy, n_dpu, n_tiles, in_ddr, out_ddr, prefetch), idx in groups.items():
        idx = np.asarray(idx)
        ours[idx] = model.layer_cycles(layers[idx], strategy=None if strategy == "BEST" else strategy, n_dpu=n_dpu,
                                       n_tiles=n_tiles, input_in_ddr=in_ddr, output_in_ddr=out_ddr,
                                       prefetching=prefetch)
    golden = np.array([int(r[col["cycles"]]) for r in rows], dtype=np.uint64)
    stats = {}
    for config in sorted({r[col["config"]] for r in rows}):
        sel = np.array([r[col["config"]] == config for r in rows])
        g, o = golden[sel], ours[sel].astype(np.uint64)
        g_err, o_err = is_error(g), is_error(o)
        both = ~g_err & ~o_err
        tol = np.maximum(2.0, 1e-5 * g.astype(np.float64))
        exact = both & (np.abs(g.astype(np.float64) - o.astype(np.float64)) <= tol)
        rel = np.abs(o[both].astype(np.float64) - g[both].astype(np.float64)) / np.maximum(g[both], 1)
        stats[config] = {
            "rows": int(sel.sum()),
            "costed_both": int(both.sum()),
            "mape": float(rel.mean() * 100) if both.any() else float("nan"),
            "spearman": spearman(g[both], o[both]),
            "exact": int(exact.sum()),
            "errors_golden": int(g_err.sum()),
            "errors_match": int((g_err & o_err & (g == o)).sum()),
            "status_mismatch": int((g_err != o_err).sum()),
        }
    return stats, golden, ours, rows, col


@pytest.mark.parametrize("stem", MODELS)
def test_layer_parity(stem, golden_dir, capsys):
    stats, golden, ours, rows, col = layer_parity(golden_dir / f"layer_{stem}.csv", model_path(f"{stem}.vpunn"))
    with capsys.disabled():
        print(f"\nlayer parity {stem}:")
        print(f"  {'config':<24}{'rows':>6}{'costed':>8}{'MAPE%':>8}{'Spearman':>10}{'exact':>7}"
              f"{'err ok':>8}/{'err':<5}{'status!=':>9}")
        for config, s in stats.items():
            print(f"  {config:<24}{s['rows']:>6}{s['costed_both']:>8}{s['mape']:>8.3f}{s['spearman']:>10.5f}"
                  f"{s['exact']:>7}{s['errors_match']:>8}/{s['errors_golden']:<5}{s['status_mismatch']:>9}")
        bad = [i for i in range(len(rows)) if golden[i] != ours[i]][:5]
        for i in bad:
            r = rows[i]
            print(f"  e.g. row {i} {r[col['source']]} {r[col['op']]} {r[col['in_w']]}x{r[col['in_h']]}x"
                  f"{r[col['in_c']]}->{r[col['out_c']]} k{r[col['k_w']]} s{r[col['s_w']]} {r[col['in_dtype']]} "
                  f"{r[col['config']]}/{r[col['strategy']]}: golden {golden[i]} {error_name(int(golden[i]))} "
                  f"ours {ours[i]} {error_name(int(ours[i]))}")
    for config, s in stats.items():
        if s["costed_both"]:
            assert s["mape"] <= 10.0, f"{stem}/{config}: MAPE {s['mape']:.2f} % above 10 %"
