"""Layer costs vs VPUNN's own layer cost model (golden layer_<model>.csv).

Every row (each strategy and the BEST row of every layer and hardware configuration) is recomputed with
LayerCostModel on the same .vpunn file. Prints per device / configuration: MAPE on the rows both sides
cost, Spearman rank correlation, exact matches (within max(2 cycles, 1e-5 relative), the tolerance the
golden README gives for float summation order) and identical values, and error-code agreement. Fails
above 10 % MAPE.
"""
from __future__ import annotations

import numpy as np
import pytest

from vpunas.costmodel import VPUNN
from vpunas.layercost import error_name, golden_layer_parity, spearman

from conftest import model_path

MODELS = ["vpu_2_0", "vpu_2_7", "vpu_2_7.fast", "vpu_4_0"]


def test_spearman_definition():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 2, 3], [1, 2, 2, 3]) == pytest.approx(1.0)


@pytest.mark.parametrize("stem", MODELS)
def test_layer_parity(stem, golden_dir, capsys):
    res = golden_layer_parity(golden_dir / f"layer_{stem}.csv", VPUNN(model_path(f"{stem}.vpunn")))
    stats, golden, ours, rows, col = res["stats"], res["golden"], res["ours"], res["rows"], res["columns"]
    with capsys.disabled():
        print(f"\nlayer parity {stem}:")
        print(f"  {'config':<24}{'rows':>6}{'costed':>8}{'MAPE%':>8}{'Spearman':>10}{'exact':>7}{'identical':>10}"
              f"{'err ok':>8}/{'err':<5}{'status!=':>9}")
        for config, s in stats.items():
            print(f"  {config:<24}{s['rows']:>6}{s['costed_both']:>8}{s['mape']:>8.3f}{s['spearman']:>10.5f}"
                  f"{s['exact']:>7}{s['identical']:>10}{s['errors_match']:>8}/{s['errors_golden']:<5}"
                  f"{s['status_mismatch']:>9}")
        for i in np.nonzero(golden != ours)[0][:5]:
            r = rows[i]
            print(f"  e.g. row {i} {r[col['source']]} {r[col['op']]} {r[col['in_w']]}x{r[col['in_h']]}x"
                  f"{r[col['in_c']]}->{r[col['out_c']]} k{r[col['k_w']]} s{r[col['s_w']]} {r[col['in_dtype']]} "
                  f"{r[col['config']]}/{r[col['strategy']]}: golden {golden[i]} {error_name(int(golden[i]))} "
                  f"ours {ours[i]} {error_name(int(ours[i]))}")
    for config, s in stats.items():
        if s["costed_both"]:
            assert s["mape"] <= 10.0, f"{stem}/{config}: MAPE {s['mape']:.2f} % above 10 %"
