"""`vpunas lint model.onnx --device VPU_2_7 [--model vpu_2_7.vpunn]`: VPU-friendliness report of an ONNX model.

Exit codes: 0 = report written, 1 = a finding at or above --fail-on, 2 = bad input (not ONNX, dynamic shapes
without --input-shape, missing file, unknown device).
"""
from __future__ import annotations

import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "lint", help="per-layer predicted VPU latency of an ONNX model and VPU-friendliness findings",
        description="Map every node of an ONNX model onto the VPU (DPU layers through the layer cost model, "
                    "DSP ops through the SHAVE cost models), print a per-layer latency table with the total "
                    "and fps, and list findings (channels not a multiple of 16, DSP ops with a DPU-friendly "
                    "replacement, DMA-bound depthwise + pointwise pairs) with the predicted saving of each.",
        epilog="Severities: error = the cost model refused a layer; warning = an op with no cost model, or a "
               "finding whose predicted saving is at least 1%% of the total; info = the rest. Exit codes: 0 "
               "report written, 1 --fail-on triggered, 2 bad input.")
    p.add_argument("onnx", help="ONNX model file")
    p.add_argument("--device", default=None, type=str.upper, help="VPU_2_0 | VPU_2_7 | VPU_4_0 (default: the --model's device)")
    p.add_argument("--model", default=None,
                   help=".vpunn cost model file (default: theoretical model, numbers labelled as estimates)")
    p.add_argument("--shave-params", default=None, metavar="DIR",
                   help="VPUNN's SHAVE parameter folder (default: shave/ next to --model, or $VPUNAS_SHAVE_DIR)")
    p.add_argument("--dtype", default="UINT8", type=str.upper, help="UINT8 | INT8 | FLOAT16 | BFLOAT16 (default UINT8)")
    p.add_argument("--input-shape", action="append", default=[], metavar="[NAME=]N,C,H,W",
                   help="fix a dynamic input shape, e.g. 1,3,224,224 or input=1,3,224,224 (repeatable)")
    p.add_argument("--leaky-relu-on-dsp", action="store_true",
                   help="cost LeakyReLU as a DSP op instead of fusing it into the conv (what the whitepaper "
                        "observed with an older VPU 2.7 compiler)")
    p.add_argument("--json", nargs="?", const="-", default=None, metavar="PATH",
                   help="write the report as JSON (to PATH, or to stdout instead of the text table)")
    p.add_argument("--png", default=None, metavar="PATH", help="write a per-layer latency bar chart")
    p.add_argument("--fail-on", choices=("warning", "error"), default=None,
                   help="exit with code 1 when a finding has this severity or worse (for CI)")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from vpunas import lint

    report = lint.lint_model(args.onnx, device=args.device, model=args.model, dtype=args.dtype,
                             input_shapes=lint.parse_input_shapes(args.input_shape),
                             leaky_relu_on_dsp=args.leaky_relu_on_dsp, shave_params=args.shave_params)
    if args.json == "-":
        sys.stdout.write(report.to_json() + "\n")
    else:
        sys.stdout.write(report.to_text())
        if args.json:
            with open(args.json, "w", encoding="utf-8") as fh:
                fh.write(report.to_json() + "\n")
            print(f"JSON report written to {args.json}")
    if args.png:
        report.plot(args.png)
        print(f"bar chart written to {args.png}", file=sys.stderr if args.json == "-" else sys.stdout)
    if report.fails(args.fail_on):
        print(f"vpunas lint: findings at or above '{args.fail_on}' (worst: {report.worst_severity()})",
              file=sys.stderr)
        return 1
    return 0
