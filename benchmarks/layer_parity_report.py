"""Layer-cost parity with VPUNN's golden layer files: a table per device / configuration and a PNG
(ours vs VPUNN, log-log, one panel per model; refused rows counted in the titles).

    python benchmarks/layer_parity_report.py [--model-dir DIR] [-o layer_parity.png]
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from vpunas.costmodel import VPUNN, is_error  # noqa: E402
from vpunas.layercost import golden_layer_parity  # noqa: E402

MODELS = ["vpu_2_0", "vpu_2_7", "vpu_2_7.fast", "vpu_4_0"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", default=os.environ.get("VPUNAS_MODEL_DIR", "../shared/vpunn"))
    ap.add_argument("-o", "--output", default="layer_parity.png")
    args = ap.parse_args()
    model_dir = Path(args.model_dir)
    fig, axes = plt.subplots(1, len(MODELS), figsize=(4.2 * len(MODELS), 4.2))
    print(f"{'model':<14}{'config':<24}{'rows':>6}{'costed':>8}{'MAPE%':>8}{'Spearman':>10}{'identical':>10}"
          f"{'errors ok':>11}")
    for ax, stem in zip(axes, MODELS):
        golden_csv = model_dir / "golden" / f"layer_{stem}.csv"
        res = golden_layer_parity(golden_csv, VPUNN(model_dir / f"{stem}.vpunn"))
        for config, s in res["stats"].items():
            print(f"{stem:<14}{config:<24}{s['rows']:>6}{s['costed_both']:>8}{s['mape']:>8.3f}{s['spearman']:>10.5f}"
                  f"{s['identical']:>10}{s['errors_match']:>6}/{s['errors_golden']:<5}")
        g, o = res["golden"], res["ours"].astype(np.uint64)
        ok = ~is_error(g) & ~is_error(o)
        ax.loglog(g[ok], o[ok], ".", ms=3, alpha=0.5)
        lim = [max(1, g[ok].min()), g[ok].max()]
        ax.plot(lim, lim, "k-", lw=0.8)
        refused = int((is_error(g) & (g == o)).sum())
        ax.set_title(f"{stem}: {int(ok.sum())} costed, {refused} refused alike")
        ax.set_xlabel("VPUNN layer cycles")
        ax.set_ylabel("vpunas layer cycles")
    fig.tight_layout()
    fig.savefig(args.output, dpi=110)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
