"""`vpunas bench MODEL.onnx|MODEL.xml`: batch-1 fps with OpenVINO and onnxruntime (median after warm-up)."""
from __future__ import annotations

import argparse
import json


def _run(args) -> int:
    from ..bench import benchmark, format_table

    runtimes = ["openvino", "onnxruntime"] if args.runtime == "both" else [args.runtime]
    results = []
    for path in args.models:
        results += benchmark(path, runtimes=runtimes, device=args.ov_device, precision=args.precision,
                             threads=args.threads, warmup=args.warmup, repeats=args.repeats)
    print(format_table(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("bench", help="measure batch-1 fps of ONNX / OpenVINO IR models",
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("models", nargs="+", help=".onnx or OpenVINO .xml files")
    p.add_argument("--runtime", choices=("openvino", "onnxruntime", "both"), default="both",
                   help="onnxruntime only reads .onnx files")
    p.add_argument("--ov-device", default="CPU", help="OpenVINO device (CPU, GPU, NPU, AUTO)")
    p.add_argument("--precision", default="f32", help="OpenVINO INFERENCE_PRECISION_HINT (f32, bf16, f16)")
    p.add_argument("--threads", type=int, default=None, help="inference threads (default: runtime's choice)")
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--repeats", type=int, default=200)
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    p.set_defaults(func=_run)
