"""Measured LUT on this machine's CPU + validation against end-to-end subnet latency (whitepaper Fig. 7).

Steps (all on one runtime / device / precision / thread count):
  1. profile every op of the MBConv space with operator stacking (N = --stack, default 8);
  2. profile the same ops naively (N = 1, each op alone), with and without the call overhead removed;
  3. time --samples random subnets end to end and compare each LUT's sum with the measurement:
     MAPE, max error, share within +-10 %, Pearson, Spearman; scatter PNG with y = x.

Both profiling runs resume from their JSON files in --out-dir, so an interrupted run continues.
Usage:  python benchmarks/profile_cpu_lut.py [--input 224] [--samples 50] [--runtime openvino] [--threads 1]

Timing: every graph is timed in --rounds interleaved rounds (round-robin visits, 1 untimed + --repeats
timed calls each); a profiling session holds --batch ops with their overhead / boundary / filler graphs,
validation holds all subnets. Why: on this host the background load moves an op's latency by 30-40 %
on scales from 0.1 s to tens of seconds; timed one graph after another, that drift landed on some
graphs and not others (the earlier Spearman 0.92-0.96 and a pass-to-pass "noise ceiling" of 0.74-0.95).

Figures from the development machine (2-core AMD EPYC VM, L2 1 MiB/core, L3 32 MiB shared; this job
pinned to core 0 with taskset, core 1 busy with another engineer's work; OpenVINO 2026.4.1 CPU f32,
1 thread, cpu clock, min estimator, 20 rounds x 3 repeats, 50 subnets, --batch 128).
Default settings now (--cold-weights auto: on at 224 px, median net 14.6 MB of weights; off at 32 px, 1.7 MB),
fresh runs 2026-11-28 07:35-07:55, pinned to core 0, the other core mostly idle:
                                                run  MAPE   max err  bias    Pearson  Spearman
  224 px  stacked N=8                            C   3.43%   4.94%  -3.43%  0.9975   0.9915
                                                 D   4.08%   5.81%  -4.08%  0.9985   0.9936
          naive N=1, call overhead subtracted    C   1.79%   5.68%  +1.79%  0.9969   0.9898
                                                 D   2.02%   4.04%  +2.02%  0.9977   0.9930
          naive N=1, raw                         C   3.35%   7.73%  +3.35%  0.9960   0.9890
                                                 D   3.14%   5.48%  +3.14%  0.9970   0.9910
          odd vs even rounds (noise ceiling)     C   2.16%   8.42%  +0.18%  0.9731   0.9599
                                                 D   2.12%   8.73%  +0.87%  0.9784   0.9760
          profiling 83 s (stacked) + 25 s (naive), validation 167 s per run.
  32 px   stacked N=8 (term off)                     1.35%   3.25%  +1.23%  0.9991   0.9982
          naive N=1, call overhead subtracted       30.72%  47.75% +30.72%  0.9972   0.9932
          naive N=1, raw                            61.25%  91.71% +61.25%  0.9897   0.9852
          odd vs even rounds (noise ceiling)        20.62%  51.77% +19.40%  0.7908   0.7844 (a noisy session)
  The stacked LUT still under-predicts 224 px nets by a near-constant ~0.4-0.6 ms (bias -3.4 to -4.1 %), not
  yet explained (next suspect: per-node dispatch in a full net).

Earlier runs, for reference.
With the cold-weight term (--cold-weights on; profiler.py, 97aaa98): Linear stacks measured in the profiling session
cost 23 us/MB of weights with 4-8 MB in the graph and 53-55 us/MB with 32-64 MB (from memory), so each
entry gets +29-32 us per MB of its own weights (0.15 ms for the 1280x1000 classifier, ~0.4-0.5 ms per
subnet). Two runs of input 224 (subnets 10.1-19.9 ms):
                                                run  MAPE   max err  bias    Pearson  Spearman
    stacked N=8                                  A   4.06%   7.08%  -4.06%  0.9970   0.9969
                                                 B   4.57%   7.06%  -4.57%  0.9978   0.9946
    naive N=1, call overhead subtracted          A   2.16%   4.06%  +2.11%  0.9977   0.9968
                                                 B   2.20%   4.35%  +2.20%  0.9971   0.9953
    naive N=1, raw                               A   3.30%   5.75%  +3.30%  0.9968   0.9960
                                                 B   3.55%   5.98%  +3.55%  0.9964   0.9955
    odd vs even rounds (noise ceiling)           A   4.09%  26.14%  +1.09%  0.8841   0.8479
                                                 B   1.62%   3.81%  +0.74%  0.9914   0.9882
    MAPE target (<= 5 %) met in both, but the stacked table still under-predicts by 4-4.6 %: the residual
    measured - stacked is now 0.57 / 0.64 ms per subnet with no dependence left on the net's parameters
    (fit over the 50 subnets: -0.09 / +0.005 ms per M params, was +0.03-0.05). Naive N=1 now over-predicts
    (+2.1-2.2 %), as it should: it counts every op's boundary conversions. Prefix graphs of two subnets
    (T(ops[:k]) - T(ops[:k-1])) put the remaining gap in the 28x28 and 14x14 stages, not in the stem /
    first block (stem + first block in the net 0.74 ms = their stacked entries).
    input 32 with the term (subnets 0.36-0.86 ms): stacked 8.60 % MAPE, bias +8.60 %, Spearman 0.9925 (was
    1.69 %); naive 40.3 %; noise ceiling 1.42 %. The 32 px nets hold 1.5 MB of weights, which stay
    cached, yet the term adds 0.044 ms per net (7 %): the streaming cost depends on the whole net's
    weights, not on each op's; so the term is opt-in, and a net-level version is the open fix.
Before the cold-weight term (and the default now), method since 6acf546: shape-changing ops sit between N/2 fillers on each side, the stem keeps the
network's input conversion (stacking.py). Two runs of input 224 (subnets 9.9-19.7 ms):
                                                run  MAPE   max err  bias    Pearson  Spearman
    stacked N=8                                  A   5.42%   7.55%  -5.42%  0.9983   0.9962
                                                 B   6.72%   9.82%  -6.72%  0.9976   0.9894
    naive N=1, call overhead subtracted          A   1.81%   3.89%  -1.81%  0.9978   0.9941
                                                 B   1.93%   5.15%  -1.89%  0.9964   0.9870
    naive N=1, raw                               A   3.16%   5.09%  +3.16%  0.9976   0.9952
                                                 B   3.05%   6.11%  +3.04%  0.9959   0.9867
    odd vs even rounds (noise ceiling)           A   2.07%   8.80%  +0.30%  0.9762   0.9767
                                                 B   1.50%   4.99%  +0.48%  0.9898   0.9838
    profiling 80 s (stacked) + 20 s (naive), validation 172-180 s per run. MAPE target (<= 5 %) NOT met.
    The fixed ops are now positive and no entry is clamped (GlobalAvgPool 0.014-0.016 ms, was 0 clamped;
    stem 0.47 / 0.26 ms in A / B vs naive 0.56-0.58 incl. its 32x112x112 output conversion): the stem
    is T(stem A^8) - 8 F(A) with F(A) the 112x112 filler slope (0.181 / 0.212 ms in A / B), so its
    noise is amplified 8x. The bias is not from the boundary ops: the residual measured - stacked is
    a near-constant 0.55-0.80 ms per subnet (+0.03-0.05 ms per M params; fit over the 50 subnets), and
    even naive N=1, which counts every conversion, under-predicts. OpenVINO's compiled subnet has only 2
    reorders (input -> nhwc, GAP -> flatten), so no hidden inner conversion; the likely cause is cold
    weights: a 3-4.5 M-param net streams 12-18 MB of weights per inference, while a stack of a small op
    keeps its weights in L2/L3. Stacks keep distinct weights per copy (as a real net): the 7x7x192
    e6 blocks, whose 8 copies (14.5 MB) do not stay in cache, come out 8-15 % above naive, closer to a
    real net's cost; shrinking N for them would lower the prediction and widen the bias.
  input 32 (small-32 space, subnets 0.36-0.87 ms; one run)
    stacked N=8                                           1.69%   4.36%  +1.67%  0.9991   0.9980
    naive N=1, call overhead subtracted                  29.08%  44.84% +29.08%  0.9980   0.9963
    naive N=1, raw                                       58.91%  87.62% +58.91%  0.9915   0.9882
    odd vs even rounds (noise ceiling)                    0.80%   2.49%  +0.04%  0.9984   0.9978
    Stacking's reason to exist: naive timing counts the boundary layout conversion once per op.
  Before 6acf546 (filler after the op only, io(s_in) / 2 subtracted from every op): 224 px stacked
  5.67 % (bias -5.67 %), 1.61 % in another run; 32 px 2.43 %. onnxruntime was not re-measured with
  interleaved timing (earlier, sequential: 32 px stacked 6.6-10.6 %).
Reproduce: taskset -c 0 python benchmarks/profile_cpu_lut.py --input 224 --out-dir /tmp/out224 [--cold-weights auto|on|off]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from vpunas.spaces import space_kwargs_from_cli as space_kwargs
from vpunas.profiling import profiler, runners, validate
from vpunas.spaces import get_space


def naive_raw_table(naive: dict) -> dict:
    """The N = 1 table without overhead subtraction: each entry's raw single-op graph time."""
    entries = [dict(e, latency_ms=e.get("graph_ms", e["latency_ms"])) for e in naive["entries"]]
    return dict(naive, source=dict(naive["source"], overhead_subtracted=False), entries=entries)


def spread_summary(table: dict) -> str:
    sp = np.array([e["spread"] for e in table["entries"] if "spread" in e])
    st = table["source"]
    return (f"{len(table['entries'])} entries, {st['noisy']} noisy, {st['failed']} failed; per-graph spread "
            f"(IQR/median) median {np.median(sp) * 100:.1f}%, p90 {np.percentile(sp, 90) * 100:.1f}%")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--space", default="mbconv")
    ap.add_argument("--input", type=int, default=224)
    ap.add_argument("--runtime", default="openvino")
    ap.add_argument("--device", default="CPU")
    ap.add_argument("--precision", default="f32")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--clock", choices=("wall", "cpu"), default="cpu",
                    help="cpu (default here: process CPU time, immune to other processes on a shared host) or wall")
    ap.add_argument("--estimator", choices=("median", "min"), default="min")
    ap.add_argument("--stack", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3, help="timed calls per graph per round")
    ap.add_argument("--rounds", type=int, default=20, help="interleaved rounds (profiling and validation)")
    ap.add_argument("--batch", type=int, default=128, help="ops per interleaved profiling session")
    ap.add_argument("--cold-weights", choices=("auto", "on", "off"), default="auto",
                    help="add each op's measured weight streaming cost (profiler.WEIGHT_PROBE_*); auto: when the "
                         "space's median network has more weights than stay cached")
    ap.add_argument("--samples", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out-dir", default="profile_cpu_out")
    args = ap.parse_args()

    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    kw = space_kwargs(args.space, None, args.input)
    space = get_space(args.space, **kw)
    ops = validate.space_ops(space)
    runner = runners.make_runner(args.runtime, args.device, args.precision, args.threads, args.clock)
    cold, network_mb = validate.cold_weights_setting(args.cold_weights, space)
    extra = {"space": args.space, "space_kwargs": kw, "space_name": space.name, "network_weight_mb": round(network_mb, 3)}
    print(f"space {space.name}: {len(profiler.unique_ops(ops))} distinct ops; {args.runtime} {args.device} "
          f"{args.precision} threads={args.threads} clock={args.clock} "
          f"estimator={args.estimator}; median network {network_mb:.1f} MB of weights -> cold-weight term "
          f"{'on' if cold else 'off'} ({args.cold_weights})")

    tables = {}
    for label, stack in ((f"stacked N={args.stack}", args.stack), ("naive N=1", 1)):
        t0 = time.perf_counter()
        settings = profiler.ProfileSettings(stack=stack, warmup=5, repeats=args.repeats, rounds=args.rounds,
                                            batch=args.batch, max_spread=0.05, retries=2, estimator=args.estimator,
                                            cold_weights=cold)
        path = out / (f"{args.runtime}_{args.device}_{args.input}_{args.clock}_{args.estimator}_r{args.rounds}"
                      f"_b{args.batch}_stack{stack}{'_cw' if cold else ''}.json")
        tables[label] = profiler.profile_ops(ops, runner, settings, path, extra_source=extra,
                                             space_meta=profiler.space_meta(space),
                                             network_io=validate.network_io(space))
        print(f"{label}: {path} in {time.perf_counter() - t0:.0f} s; {spread_summary(tables[label])}")
    tables["naive N=1, raw"] = naive_raw_table(tables["naive N=1"])
    src = tables[f"stacked N={args.stack}"]["source"]
    print(f"runtime {src['runtime']}, device {src['device']}, precision used {src['precision']}, "
          f"threads {src['threads']}")

    t0 = time.perf_counter()
    vsettings = profiler.ProfileSettings(warmup=3, repeats=args.repeats, rounds=args.rounds, max_spread=0.05,
                                         retries=1, seed=args.seed, estimator=args.estimator)
    result = validate.validate_tables(space, tables, runner, args.samples, args.seed, vsettings)
    print(f"validation on {args.samples} subnets in {time.perf_counter() - t0:.0f} s")
    print(result.table_text())
    png = out / f"validation_{args.runtime}_{args.device}_{args.input}_{args.clock}_{args.estimator}.png"
    validate.scatter_png(result, png, f"{src['runtime']} {src['device']} {src['precision']} "
                                      f"{src['threads']} thr {args.clock} clock, {space.name}")
    result.write_csv(out / f"validation_{args.runtime}_{args.device}_{args.input}_{args.clock}_{args.estimator}.csv")
    print(f"scatter plot: {png}")
    m = result.metrics[f"stacked N={args.stack}"]
    print(f"target (MAPE <= 5 %, Spearman >= 0.95): MAPE {m['mape_pct']:.2f} %, Spearman {m['spearman']:.3f} -> "
          f"{'met' if m['mape_pct'] <= 5 and m['spearman'] >= 0.95 else 'NOT met'}")


if __name__ == "__main__":
    main()
