"""`vpunas predict --model vpu_2_7.vpunn workloads.csv -o out.csv` end to end."""
from __future__ import annotations

import csv

from conftest import model_path
from vpunas.cli import main


def _subset(golden_dir, tmp_path, stem, n):
    lines = (golden_dir / f"dpu_{stem}.csv").read_text().splitlines()
    keep = [lines[0]] + lines[1:n + 1] + [l for l in lines[1:] if ",invalid_" in l or ",edge_" in l]
    p = tmp_path / "in.csv"
    p.write_text("\n".join(keep) + "\n")
    return p, list(csv.DictReader(keep))


def test_predict_writes_cycles_matching_vpunn(golden_dir, tmp_path, capsys):
    src, gold = _subset(golden_dir, tmp_path, "vpu_2_7", 60)
    out = tmp_path / "out.csv"
    rc = main(["predict", "--model", str(model_path("vpu_2_7.vpunn")), str(src), "-o", str(out)])
    assert rc == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == len(gold)
    for g, r in zip(gold, rows):
        assert r["op"] == g["op"] and r["isi"] == g["isi"]
        if g["cycles"]:
            assert int(r["cycles"]) == int(g["cycles"]) and r["cycles_error"] == g["cycles_error"]
            if not g["cycles_error"]:
                assert abs(float(r["latency_ms"]) - int(g["cycles"]) / 1300e3) < 1e-9
    assert "refused" in capsys.readouterr().err  # summary table


def test_predict_without_model_uses_the_estimate(golden_dir, tmp_path, capsys):
    src, gold = _subset(golden_dir, tmp_path, "vpu_4_0", 10)
    rc = main(["predict", "--device", "VPU_4_0", str(src)])
    assert rc == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("id,device,op,") and "analytic estimate" in captured.err


def test_predict_reports_missing_model(golden_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("VPUNAS_MODEL_DIR", raising=False)
    src, _ = _subset(golden_dir, tmp_path, "vpu_2_7", 3)
    rc = main(["predict", "--model", str(tmp_path / "missing.vpunn"), str(src)])
    assert rc == 2
    assert "intel/npu-nn-cost-model" in capsys.readouterr().err
