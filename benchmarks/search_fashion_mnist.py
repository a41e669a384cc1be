"""Full Fashion-MNIST search benchmark: ProxylessNAS on the small-32 MBConv space against a MobileNetV2-style
baseline trained with the same recipe and budget, at one or several VPU 2.0 latency targets.

Prints the report table and writes OUT/report.md + report.png (accuracy vs predicted latency, like the
whitepaper's Fig. 10 when several targets are given). Targets are fractions of the baseline's predicted
VPU 2.0 latency (`--target-fracs`) so the same command works with VPUNN or theoretical LUTs.

    python benchmarks/search_fashion_mnist.py --out runs/fmnist-bench            # default budget
    python benchmarks/search_fashion_mnist.py --target-fracs 0.5 0.65 0.8 ...     # several targets
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "python"))

from vpunas.classification import measure_fps, run_classification, vpunn_model_for  # noqa: E402
from vpunas.models.mobilenetv2 import mobilenetv2_arch  # noqa: E402
from vpunas.report import markdown_table, write_report  # noqa: E402
from vpunas.search import SearchConfig, TrainConfig, build_latency_terms  # noqa: E402
from vpunas.spaces import get_space  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/fmnist-bench")
    p.add_argument("--data", default=None)
    p.add_argument("--width-mult", type=float, default=0.5)
    p.add_argument("--vpunn-dir", default=str(REPO.parent / "shared" / "vpunn"),
                   help="VPUNN models (theoretical estimates when the directory is missing)")
    p.add_argument("--target-fracs", type=float, nargs="+", default=[0.6],
                   help="latency targets as fractions of the baseline's predicted VPU 2.0 latency")
    p.add_argument("--search-epochs", type=int, default=4)
    p.add_argument("--warmup-epochs", type=int, default=1)
    p.add_argument("--search-train-size", type=int, default=20000)
    p.add_argument("--valid-size", type=int, default=5000)
    p.add_argument("--train-epochs", type=int, default=3)
    p.add_argument("--train-size", type=int, default=None)
    p.add_argument("--test-size", type=int, default=None)
    p.add_argument("--a-lr", type=float, default=0.02)
    p.add_argument("--lambda-on", choices=("expected", "derived"), default="derived",
                   help="auto lambda steers E[lat] or the argmax net's latency to the target")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bench-repeats", type=int, default=300)
    p.add_argument("--merge", default=None,
                   help="report.json of an earlier run (same settings): its rows join this report and its "
                        "baseline is reused instead of retrained")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    out = Path(args.out)
    model_dir = args.vpunn_dir if Path(args.vpunn_dir).is_dir() else None
    space = get_space("mbconv", preset="small-32", resolution=28, in_ch=1, num_classes=10, width_mult=args.width_mult)
    base_ms = build_latency_terms(space, "VPU_2_0", vpunn_model_for("VPU_2_0", model_dir)).discrete(
        space.choices_from_arch(mobilenetv2_arch(space)))
    print(f"baseline predicted VPU 2.0 latency: {base_ms:.4f} ms ({'VPUNN' if model_dir else 'theoretical'})")
    train_cfg = TrainConfig(epochs=args.train_epochs, batch_size=128, lr=0.1, seed=args.seed)
    rows, history, t0 = [], None, time.time()
    if args.merge:
        rows = json.loads(Path(args.merge).read_text())["rows"]
        print(f"merged {len(rows)} rows from {args.merge}")
    have_baseline = any(r.get("is_baseline") for r in rows)
    for i, frac in enumerate(args.target_fracs):
        target = round(base_ms * frac, 5)
        cfg = SearchConfig(epochs=args.search_epochs, warmup_epochs=args.warmup_epochs, batch_size=64, w_lr=0.05,
                           a_lr=args.a_lr, loss="add", lambda_lat=0.1, target_ms=target,
                           auto_lambda=True, lambda_rate=0.1, lambda_on=args.lambda_on, seed=args.seed)
        res = run_classification(out / f"target_{frac:g}", data=args.data, preset="small-32", resolution=28, in_ch=1,
                                 width_mult=args.width_mult, device="VPU_2_0", model_dir=model_dir,
                                 search_cfg=cfg, train_cfg=train_cfg, search_train_size=args.search_train_size,
                                 valid_size=args.valid_size, train_size=args.train_size, test_size=args.test_size,
                                 baseline=(i == 0 and not have_baseline), bench_repeats=args.bench_repeats)
        for r in res["rows"]:
            r.pop("train_history", None)
            if not r["is_baseline"]:
                r["name"] = f"searched@{frac:g}x"
        rows += res["rows"]
        history = history or json.loads((out / f"target_{frac:g}" / "search" / "search_log.json").read_text())["epochs"]
    # Re-time every model together (interleaved rounds): fps from separate sessions are not comparable.
    for r in rows:
        r["_paths"] = (r["openvino_ir"]["path"], r["onnx"]["path"])
    measure_fps(rows, args.bench_repeats, quiet=False)
    for r in rows:
        r.pop("_paths")
    rows.sort(key=lambda r: (r.get("is_baseline", False), r["lat_VPU_2_0_ms"]))
    notes = [f"small-32 MBConv space, width x{args.width_mult}, 28x28 Fashion-MNIST; latency LUTs: "
             + (f"VPUNN models in {model_dir}" if model_dir else "theoretical"),
             f"targets: {args.target_fracs} x baseline VPU 2.0 latency ({base_ms:.4f} ms); auto lambda (add form)"
             + (f"; plus the rows of {args.merge}" if args.merge else ""),
             f"search: {args.search_epochs} epochs ({args.warmup_epochs} warm-up) on {args.search_train_size} images, "
             f"retrain: {args.train_epochs} epochs on {args.train_size or 'all 60000'} images, same for every net",
             "fps: all models re-timed together at the end in interleaved rounds (OpenVINO CPU f32, batch 1)",
             f"total wall time {time.time() - t0:.0f} s on this machine (shared, 2 cores)"]
    md = write_report(out, rows, title="Fashion-MNIST ProxylessNAS benchmark", notes=notes, history=history)
    print(markdown_table(rows))
    print(f"report: {md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
