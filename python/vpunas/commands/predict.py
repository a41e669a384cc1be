"""`vpunas predict`: DPU cycles / latency of workloads in VPUNN's CSV column format."""
from __future__ import annotations

import sys
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "predict", help="DPU cycles of workloads (CSV with VPUNN's column names) with a VPUNN model",
        description="Predict DPU cycles and latency for every workload row of a CSV that uses VPUNN's "
                    "golden column names (device, op, in_w, ... isi). Refused workloads get VPUNN's error "
                    "code and name. Without --model, VPUNN's analytic estimate is used (an estimate).")
    p.add_argument("workloads", help="input CSV (VPUNN column names; extra columns are ignored)")
    p.add_argument("--model", default=None,
                   help=".vpunn file (path, or a name found in $VPUNAS_MODEL_DIR), e.g. vpu_2_7.vpunn")
    p.add_argument("--device", default=None,
                   help="device for the clock (and for the analytic model): VPU_2_0, VPU_2_7, VPU_4_0; "
                        "default: the model's device")
    p.add_argument("-o", "--output", default=None, help="output CSV (default: standard output)")
    p.add_argument("--threads", type=int, default=0, help="worker threads (0 = all cores)")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from vpunas.costmodel import run_predict

    summary = run_predict(Path(args.workloads), model=args.model, device=args.device,
                          output=Path(args.output) if args.output else None, threads=args.threads)
    print(summary, file=sys.stderr)
    return 0
