"""`vpunas profile` (measure a LUT on a runtime) and `vpunas validate-lut` (LUT sum vs end-to-end latency)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vpunas.spaces import space_kwargs_from_cli


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "profile", help="measure a latency LUT on OpenVINO / onnxruntime by operator stacking",
        description="Time every distinct op of a search space on a runtime (op stacked N times, or a "
                    "shape-changing op followed by N known fillers) and write a measured LUT JSON. "
                    "Rerunning with the same -o resumes an interrupted run.")
    p.add_argument("--space", default="mbconv", help="search space name (see vpunas.spaces.list_spaces)")
    p.add_argument("--preset", default=None,
                   help="space preset; for 'mbconv' the default is mobilenetv2-224 for --input >= 112, else small-32")
    p.add_argument("--input", default=None, help="input resolution of the space: N or HxW (e.g. 224, 360x640)")
    _runtime_args(p)
    p.add_argument("--stack", type=int, default=8, help="stack size N (1 = naive single-op timing)")
    p.add_argument("--warmup", type=int, default=5, help="untimed calls per graph before the first round")
    p.add_argument("--repeats", type=int, default=3, help="timed calls per graph per round")
    p.add_argument("--rounds", type=int, default=10,
                   help="interleaved rounds: each round visits every graph of a batch (drift hits all alike)")
    p.add_argument("--batch", type=int, default=128,
                   help="ops timed together in one interleaved session (the file is checkpointed after each); "
                        "ops of different sessions see different host load, so keep a table in one where possible")
    p.add_argument("--cold-weights", choices=("auto", "on", "off"), default="auto",
                   help="add each op's measured weight-streaming cost; auto: when the space's median network has "
                        "more weights than stay cached (profiler.streams_weights)")
    p.add_argument("--max-spread", type=float, default=0.05,
                   help="relative IQR above which a graph is re-measured and then flagged noisy")
    p.add_argument("--retries", type=int, default=2)
    p.add_argument("--estimator", choices=("median", "min"), default="median",
                   help="per-graph statistic: median, or min (more reproducible on a shared, loaded host)")
    p.add_argument("--no-overhead", action="store_true", help="do not subtract the per-call overhead")
    p.add_argument("--overwrite", action="store_true", help="start afresh instead of resuming -o")
    p.add_argument("-o", "--output", required=True, help="LUT JSON to write (and to resume)")
    p.set_defaults(func=_run_profile)

    v = subparsers.add_parser(
        "validate-lut", help="compare a measured LUT's sums with end-to-end latency of random subnets",
        description="Sample random subnets of the LUT's search space, time each whole subnet on the LUT's "
                    "runtime / device, compare with the LUT sum: MAPE, max error, Pearson, Spearman and a "
                    "scatter PNG.")
    v.add_argument("lut", help="measured LUT JSON (from vpunas profile)")
    v.add_argument("--compare", nargs="*", default=[],
                   help="more LUTs scored on the same subnets (e.g. a naive --stack 1 table)")
    v.add_argument("--samples", type=int, default=50)
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--warmup", type=int, default=3)
    v.add_argument("--repeats", type=int, default=3, help="timed calls per subnet per round")
    v.add_argument("--rounds", type=int, default=10,
                   help="interleaved rounds over all subnets (combined per subnet); with >= 2 the table also "
                        "scores the odd rounds against the even ones: the noise ceiling of this machine")
    v.add_argument("--png", default=None, help="scatter plot path (default: LUT name + _validation.png)")
    v.add_argument("--csv", default=None, help="optional per-subnet CSV")
    v.set_defaults(func=_run_validate)


def _runtime_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runtime", default="openvino", help="openvino | onnxruntime")
    p.add_argument("--device", default="CPU", help="OpenVINO device (CPU, GPU, NPU, ...) or onnxruntime provider")
    p.add_argument("--precision", default=None, help="f32 | bf16 | f16 (OpenVINO INFERENCE_PRECISION_HINT); "
                                                       "default f32 for CPU")
    p.add_argument("--threads", type=int, default=None, help="inference threads (default: runtime's choice)")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="wall: wall-clock latency (dedicated machines, accelerators); cpu: process CPU time, "
                        "for --device CPU --threads 1 on a shared, loaded host")


def _run_profile(args) -> int:
    from vpunas.profiling import profiler, runners, validate
    from vpunas.spaces import get_space

    kw = space_kwargs_from_cli(args.space, args.preset, args.input)
    space = get_space(args.space, **kw)
    precision = args.precision or ("f32" if args.device.upper().startswith("CPU") else None)
    runner = runners.make_runner(args.runtime, args.device, precision, args.threads, args.clock)
    cold, network_mb = validate.cold_weights_setting(args.cold_weights, space)
    settings = profiler.ProfileSettings(stack=args.stack, warmup=args.warmup, repeats=args.repeats,
                                        rounds=args.rounds, batch=args.batch, max_spread=args.max_spread, retries=args.retries,
                                        subtract_overhead=not args.no_overhead, estimator=args.estimator,
                                        cold_weights=cold)
    ops = validate.space_ops(space)
    extra = {"space": args.space, "space_kwargs": kw, "space_name": getattr(space, "name", args.space),
             "network_weight_mb": round(network_mb, 3)}
    try:
        table = profiler.profile_ops(ops, runner, settings, args.output, extra_source=extra,
                                     overwrite=args.overwrite, space_meta=profiler.space_meta(space),
                                     network_io=validate.network_io(space))
    except KeyboardInterrupt:
        print(f"\ninterrupted: the entries measured so far are in {args.output}; "
              "rerun the same command to resume", file=sys.stderr)
        return 130
    src = table["source"]
    entries = table["entries"]
    print(f"wrote {args.output}: {len(entries)} entries ({src['noisy']} noisy, {src['failed']} failed), "
          f"{src['runtime']} {src['device']} precision {src['precision']} threads {src['threads']} "
          f"stack {src['stack']} "
          f"clock {src['clock']}")
    asked = src.get("precision_requested")
    if asked and asked != src["precision"]:
        print(f"note: precision {asked} was requested but the device compiled {src['precision']} "
              "(the table records the precision actually used)")
    for e in entries:
        if e.get("status") == "failed":
            print(f"  failed: {e['key']}: {e.get('error')}")
    return 1 if src["failed"] else 0


def _run_validate(args) -> int:
    from vpunas.profiling import profiler, runners, validate
    from vpunas.spaces import get_space

    main = profiler.read_lut_json(args.lut)
    src = main["source"]
    if src.get("kind") != "measured":
        raise ValueError(f"{args.lut} is a {src.get('kind')!r} LUT; validate-lut checks measured LUTs against "
                         "the runtime they were measured on")
    if not src.get("complete", False):
        raise ValueError(f"{args.lut} is a partial LUT (profiling was interrupted); rerun `vpunas profile` "
                         "with the same -o to finish it")
    if "space" not in src:
        raise ValueError(f"{args.lut} does not record its search space (source.space)")
    tables = {validate.table_label(main, Path(args.lut).stem): main}
    for path in args.compare:
        other = profiler.read_lut_json(path)
        label = validate.table_label(other, Path(path).stem)
        tables[label if label not in tables else f"{label} ({Path(path).stem})"] = other
    space = get_space(src["space"], **src.get("space_kwargs", {}))
    runner = runners.make_runner(runners.runtime_from_label(src["runtime"]), src["device"],
                                 src.get("precision_requested"), src.get("threads_requested"),
                                 src.get("clock", "wall"))
    settings = profiler.ProfileSettings(warmup=args.warmup, repeats=args.repeats, rounds=args.rounds, max_spread=0.05,
                                        retries=1, seed=args.seed, estimator=src.get("estimator", "median"))
    result = validate.validate_tables(space, tables, runner, args.samples, args.seed, settings)
    print(result.table_text())
    png = args.png or str(Path(args.lut).with_suffix("")) + "_validation.png"
    validate.scatter_png(result, png, f"{src['runtime']} {src['device']} {src.get('precision')}, "
                                      f"{getattr(space, 'name', src['space'])}")
    print(f"scatter plot: {png}")
    if args.csv:
        result.write_csv(args.csv)
        print(f"per-subnet CSV: {args.csv}")
    return 0

