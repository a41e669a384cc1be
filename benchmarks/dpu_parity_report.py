"""Parity report of vpunas.VPUNN against VPUNN's golden DPU files: a markdown table and a PNG.

Usage: python benchmarks/dpu_parity_report.py [golden_dir] [-o dpu_parity.png]
Counts per file: descriptors equal, cycles exact / within max(2, 1e-5 rel) / mismatched, error codes
equal, NN outputs bit-equal. The PNG plots our cycles against VPUNN's (log-log) for every file.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from vpunas import costmodel as cm

STEMS = ["vpu_2_0", "vpu_2_7", "vpu_2_7.fast", "vpu_4_0"]


def parity(golden: Path, model_dir: Path, stem: str) -> dict:
    arr, header, rows = cm.read_workloads_csv(golden / f"dpu_{stem}.csv", return_header=True)
    col = {h: i for i, h in enumerate(header)}
    m = cm.VPUNN(model_dir / f"{stem}.vpunn")
    desc, ok = m.descriptors(arr)
    det = m.predict_detail(arr)
    got = det["cycles"].astype(np.int64)
    exp = np.array([int(r[col["cycles"]]) if r[col["cycles"]] else cm.ERROR_CODES["ERROR_ENCODING_EXCEPTION"]
                    for r in rows], dtype=np.int64)
    d_eq = sum(
        (bool(ok[i]) and np.array_equal(np.array(r[col["descriptor"]].split(), np.float32), desc[i]))
        if r[col["descriptor"]] else not ok[i] for i, r in enumerate(rows))
    err = cm.is_error(exp) | cm.is_error(got)
    tol = np.maximum(2, 1e-5 * exp)
    raw = [(float(r[col["nn_raw"]]), det["nn_raw"][i]) for i, r in enumerate(rows) if r[col["nn_raw"]]]
    return {
        "file": f"dpu_{stem}.csv", "rows": len(rows), "descriptors equal": d_eq,
        "cycles exact": int((got == exp).sum()),
        "within tolerance": int((~err & (got != exp) & (np.abs(got - exp) <= tol)).sum()),
        "mismatches": int(((~err & (np.abs(got - exp) > tol)) | (err & (got != exp))).sum()),
        "error codes equal": f"{int((cm.is_error(exp) & (got == exp)).sum())} / {int(cm.is_error(exp).sum())}",
        "nn_raw bit-equal": f"{sum(np.float32(a) == b for a, b in raw)} / {len(raw)}",
        "_xy": (exp[~err], got[~err]),
    }


def main() -> None:
    here = Path(__file__).resolve().parents[2] / "shared" / "vpunn"
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("golden", nargs="?", default=os.environ.get("VPUNAS_GOLDEN_DIR", here / "golden"))
    ap.add_argument("--models", default=os.environ.get("VPUNAS_MODEL_DIR", here))
    ap.add_argument("-o", "--output", default="dpu_parity.png")
    args = ap.parse_args()
    results = [parity(Path(args.golden), Path(args.models), s) for s in STEMS]
    keys = [k for k in results[0] if not k.startswith("_")]
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in results:
        print("| " + " | ".join(str(r[k]) for k in keys) + " |")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(4 * len(results), 4))
    for ax, r in zip(axes, results):
        x, y = r["_xy"]
        ax.loglog(x, y, ".", ms=2)
        lim = [max(1, min(x.min(), y.min())), max(x.max(), y.max())]
        ax.plot(lim, lim, "k-", lw=0.5)
        ax.set_title(f"{r['file']}\nexact {r['cycles exact']} / {r['rows']}", fontsize=9)
        ax.set_xlabel("VPUNN cycles")
        ax.set_ylabel("vpunas cycles")
    fig.tight_layout()
    fig.savefig(args.output, dpi=120)
    print(f"plot: {args.output}")


if __name__ == "__main__":
    main()
