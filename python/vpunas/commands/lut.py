"""`vpunas lut build` (cost a search space's ops with VPUNN into a LUT JSON) and `vpunas lut show`."""
from __future__ import annotations

from pathlib import Path

from vpunas.spaces import space_kwargs_from_cli

_MBCONV_NAMES = ("mbconv", "small-32", "mobilenetv2-224")


def register(subparsers) -> None:
    p = subparsers.add_parser("lut", help="build / show latency look-up tables (LUT)",
                              description="Latency look-up tables: every distinct op of a search space costed once.")
    sub = p.add_subparsers(dest="lut_command", metavar="SUBCOMMAND")

    b = sub.add_parser("build", help="cost every op of a search space with VPUNN (or the theoretical estimate)",
                       description="Collect every distinct (op, shape) of a search space, cost them in one batched "
                                   "call (whole layers split over tiles, best strategy; DSP kernels by VPUNN's SHAVE "
                                   "models) and write a versioned LUT JSON. Without --model the numbers are VPUNN's "
                                   "theoretical estimate, labelled so in the file.")
    _space_args(b)
    b.add_argument("--device", default=None, help="VPU_2_0 | VPU_2_7 | VPU_4_0 (default: the model file's device)")
    b.add_argument("--model", default=None,
                   help="VPUNN .vpunn file (path, or a name found in $VPUNAS_MODEL_DIR); omit for the theoretical estimate")
    b.add_argument("--dtype", default="UINT8", help="UINT8 | INT8 | FLOAT16 | BFLOAT16 (default UINT8)")
    b.add_argument("--shave-params", default=None,
                   help="folder with VPUNN's SHAVE parameter CSVs (default: $VPUNAS_SHAVE_DIR, <model dir>/shave, "
                        "$VPUNAS_MODEL_DIR/shave)")
    b.add_argument("-o", "--output", required=True, help="LUT JSON to write")
    b.add_argument("--no-progress", action="store_true")
    b.set_defaults(func=_run_build)

    s = sub.add_parser("show", help="print a LUT as a table (block, candidate, ms)",
                       description="Print a LUT. With the search space it was built for (recorded in the file, or "
                                   "given with --space/--input) the rows are block, candidate, ms; otherwise key, ms.")
    s.add_argument("lut", help="LUT JSON file")
    _space_args(s, required=False)
    s.add_argument("--flat", action="store_true", help="list entries by key instead of by block")
    s.add_argument("--png", default=None, help="also draw the block x candidate latency matrix to this PNG")
    s.set_defaults(func=_run_show)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _space_args(p, required: bool = True) -> None:
    p.add_argument("--space", default="mbconv" if required else None,
                   help="search space name (mbconv, small-32, mobilenetv2-224, edsr)")
    p.add_argument("--preset", default=None, help="space preset (mbconv: mobilenetv2-224 for --input >= 112, else small-32)")
    p.add_argument("--input", default=None, help="input size: 224 (square) or HxW, e.g. 360x640 for edsr")


def _run_build(args) -> int:
    from vpunas.costmodel import VPUNN, find_model
    from vpunas.lut import LatencyTable, VpuCostSource
    from vpunas.spaces import get_space

    kw = space_kwargs_from_cli(args.space, args.preset, args.input)
    space = get_space(args.space, **kw)
    model = VPUNN(find_model(args.model)) if args.model else None
    device = args.device or (model.device if model else None)
    if device is None:
        raise ValueError("give --device (VPU_2_0, VPU_2_7, VPU_4_0) or --model FILE.vpunn")
    source = VpuCostSource(device, model=model, dtype=args.dtype.upper(), shave_params=args.shave_params)
    table = LatencyTable.build(space, source, progress=not args.no_progress)
    table.space = {**(table.space or {}), "registry": args.space, "kwargs": kw}
    table.save(args.output)
    meta = table.source
    label = (f"{meta['model']} (sha256 {meta['sha256'][:12]}...)" if meta["kind"] == "vpunn"
             else "THEORETICAL ESTIMATE (no .vpunn model given)")
    print(f"wrote {args.output}: {len(table)} ops of {getattr(space, 'name', args.space)} on {device} {args.dtype}, "
          f"{label}, built in {table.build_seconds * 1e3:.0f} ms")
    notes = sum(1 for e in table.entries.values() if e.get("notes"))
    if notes:
        print(f"  {notes} entries carry notes (layers streamed as strips, SHAVE proxies); see `vpunas lut show`")
    for e in table.failed():
        print(f"  failed: {e['key']}: {e.get('error')}")
    return 1 if table.failed() else 0


def _show_space(args, table):
    from vpunas.spaces import get_space

    if args.flat:
        return None
    if args.space:
        return get_space(args.space, **space_kwargs_from_cli(args.space, args.preset, args.input))
    recorded = table.space or {}
    if recorded.get("registry"):
        return get_space(recorded["registry"], **recorded.get("kwargs", {}))
    src = table.source
    if src.get("space"):  # measured LUTs record their space in the source
        return get_space(src["space"], **src.get("space_kwargs", {}))
    return None


def _run_show(args) -> int:
    from vpunas.lut import LatencyTable

    table = LatencyTable.load(args.lut)
    src = table.source
    kind = src.get("kind", "?")
    what = {"vpunn": f"VPUNN {src.get('model')} sha256 {str(src.get('sha256'))[:12]}...",
            "theoretical": "THEORETICAL ESTIMATE (no trained cost model)",
            "measured": f"measured on {src.get('runtime')} {src.get('device')} {src.get('precision')}"}.get(kind, kind)
    print(f"{args.lut}: {len(table)} entries, device {table.device}, dtype {table.dtype}, {what}")
    space = _show_space(args, table)
    rows = table.to_rows(space)
    if space is not None:
        _print_table(rows, ["block", "candidate", "ms", "key"])
        F, mask = table.matrix(space) if not table.missing(space) else (None, None)
        if F is not None:
            print(f"fixed ops: {table.fixed_latency_ms(space):.4f} ms; fastest net "
                  f"{table.fixed_latency_ms(space) + sum(min(r[m]) for r, m in zip(F, mask)):.4f} ms, slowest "
                  f"{table.fixed_latency_ms(space) + sum(max(r[m]) for r, m in zip(F, mask)):.4f} ms")
        else:
            print(f"missing for this space: {', '.join(table.missing(space)[:8])}")
        if args.png and F is not None:
            _plot(F, mask, space, table, args.png)
            print(f"wrote {args.png}")
    else:
        _print_table(rows, ["key", "ms", "status", "error"])
    notes = [(k, e["notes"]) for k, e in sorted(table.entries.items()) if e.get("notes")]
    if notes:
        print("notes:")
        for k, n in notes:
            print(f"  {k}: {'; '.join(n)}")
    return 0


def _print_table(rows, columns) -> None:
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) if rows else len(c) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    print("  ".join("-" * widths[c] for c in columns))
    for r in rows:
        print("  ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns))


def _plot(F, mask, space, table, png) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    data = np.where(mask, F, np.nan)
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * F.shape[1], 1.0 + 0.32 * F.shape[0]))
    im = ax.imshow(data, aspect="auto", cmap="viridis")
    ax.set_yticks(range(len(space.blocks)), [getattr(b, "name", str(i)) for i, b in enumerate(space.blocks)], fontsize=7)
    widest = next(b for b in space.blocks if len(b.candidates) == F.shape[1])
    names = getattr(widest, "choice_names", None)
    if names:
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=7)
    ax.set_xlabel("candidate")
    fig.colorbar(im, ax=ax, label="latency (ms)")
    ax.set_title(f"{Path(png).stem}: {table.device} {table.source.get('kind')}", fontsize=9)
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    plt.close(fig)
