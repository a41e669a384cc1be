"""Cost-model throughput: vpunas full path vs. our MLP alone vs. a plain numpy MLP.

For each model (default vpu_2_7.vpunn and vpu_2_0.vpunn) and batch size (1, 64, 4096, 1,000,000) it
prints predictions per second of
  (a) full    vpunas.VPUNN(...).predict(workloads): descriptor building + MLP + post-processing
  (b) mlp     vpunas._core.MlpModel.forward on precomputed descriptors (our packed SIMD kernels)
              (a) and (b) both with the default zero-skipping kernel and with the dense kernel (before/after)
  (c) numpy   the same MLP in plain numpy float32 (x @ W.T + b, ReLU) on the same descriptors,
              in chunks of 65,536 rows to bound its memory (numpy's BLAS may use every core)
plus the time of one single-workload predict call from Python and the peak-RSS increase of the
1M-row full-path call. Every rate is given per wall second and per CPU-second (process_time, all
threads), since the development machine is shared. The full path runs on the sampled workloads, ~16 % of which
VPUNN refuses (no NN call); the MLP and numpy columns run on descriptors of workloads the NN evaluates. Workloads are rows drawn at random from the golden DPU CSV of the model
(valid, refused and unusual workloads mixed as in that file).

Usage: python benchmarks/bench_costmodel.py [--models vpu_2_7.vpunn ...] [--sizes 1 64 4096 1000000]
                                            [--threads 0] [--png out.png]
Timings on shared machines are noisy: every figure is the best of several repeats.

Measured on the 2-core development machine (AMD EPYC Zen 3, AVX2, shared with other jobs), --threads 1,
pinned to one core, one run each of the previous kernel (commit 6acf546) and the current block kernel
(42cf371) in the same session, predictions/s of wall time (previous -> current):
  vpu_2_7  full path 1M: 100k -> 139k; 4096: 106k -> 135k; MLP only 1M: 110k -> 123k (numpy 1 thread
           89k / 112k in the two runs); single VPUNN.predict call 14.9 us -> 7.7 us.
  vpu_2_0  full path 1M: 82k -> 142k; MLP only 1M: 94k -> 137k (numpy 116k / 131k); single call
           17.8 us -> 12.9 us.
Default run (2 threads, quiet machine, 2026-11-28 07:30, block kernel), predictions/s of wall time:
  vpu_2_7  full path 1M 274k (dense kernel 146k; numpy 172k -> 1.60x); 4096: 191k (numpy 254k);
           single VPUNN.predict call 10.5 us (12-16 us over other valid rows and runs; dense 24.8 us).
  vpu_2_0  full path 1M 231k (dense 130k; numpy 187k -> 1.24x); single call 16.1 us. Peak RSS +1 MiB.
  (session 1's kernel, same machine, quiet: vpu_2_7 223k at 1M, single call 11.8 us.)
Session 3 (one-output last layer by an hadd tree, lane sums fused into the output pass), quiet, 2 threads,
two runs: vpu_2_7 full path 1M 294k / 273k (numpy 166k / 178k -> 1.77x / 1.54x), single call 11.2 / 10.9 us;
  vpu_2_0 full path 1M 281k (numpy 184k -> 1.53x), single call 10.6 us.
Session 4 (1M: best of three calls for every column; the full path threads from 512 rows, was 8192), quiet,
2 threads: vpu_2_7 full path 1M 389k (numpy 244k -> 1.60x), 4096: 290k (was 198k single-threaded; numpy
283k); single call 6.6 us on the first workload, median 12.1 us over 100 (7.3-14.7); vpu_2_0 full path 1M
344k (numpy 268k -> 1.28x), 4096: 341k (numpy 322k).
Session 6 (same kernels), quiet, 2 threads: vpu_2_7 full path 1M 381k (numpy 235k -> 1.62x), 4096: 290k (numpy
227k); single call 7.0 us on the first workload, median 11.3 us over 100 (7.2-13.3); vpu_2_0 full path 1M 340k
(numpy 251k -> 1.36x).
Session 8 ran on another 2-core machine: Intel Xeon (Sapphire Rapids class, AVX-512, kernel avx512_sparse), where
every multiply with a subnormal operand or result costs a ~150-cycle microcode assist. vpu_2_7's 248 near-zero
hidden neurons (all |w| <= 2^-30) made ~56 of them per row, 40 % of its time. The near-zero proof, the diagonal
first layer and the AVX-512 one-output tree sum (csrc/vpunn/gemm.h), quiet, 2 threads, predictions/s of wall time:
  before (244bdf9, start of the session): vpu_2_7 full path 1M 460k (numpy 343k -> 1.34x), 4096: 438k (numpy
           439k); single call 4.7 us, median 7.3 us over 100; vpu_2_0 full path 1M 534k (numpy 451k).
  after, three runs (the first without the overflow check of the proof): vpu_2_7 full path 1M 712k / 731k /
           704k (numpy 345k / 335k / 331k -> 2.06x / 2.18x / 2.12x), 4096: 703k / 683k (numpy 434k / 439k);
           single call 3.4 / 3.0 / 3.3 us, median 4.8 / 4.6 / 4.2 us over 100; vpu_2_0 full path 1M 590k / 536k /
           594k (numpy 464k / 431k / 436k -> 1.27x / 1.25x / 1.36x). MLP alone, one thread pinned, 96k golden
           descriptors: vpu_2_7 4.95 -> 3.3-3.5 us/row.
"""
from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path

import numpy as np

from vpunas import _core

try:  # the full path (descriptor building + post-processing) lives in vpunas.costmodel
    from vpunas.costmodel import VALUE_SOURCES, VPUNN, read_workloads_csv
except ImportError:  # pragma: no cover - during development, before the cost model exists
    VPUNN = read_workloads_csv = VALUE_SOURCES = None

REPO = Path(__file__).resolve().parents[1]
MODEL_DIR = Path(os.environ.get("VPUNAS_MODEL_DIR", REPO.parent / "shared" / "vpunn"))
GOLDEN_DIR = Path(os.environ.get("VPUNAS_GOLDEN_DIR", MODEL_DIR / "golden"))
NUMPY_CHUNK = 65_536
SINGLE_CALL_SPREAD = 100  # workloads timed one by one for the single-call spread


class NumpyMlp:
    """The baseline: the same network in plain numpy float32."""

    def __init__(self, model: _core.MlpModel):
        self.layers = [(*model.layer_weights(i), act) for i, (_, _, act) in enumerate(model.layer_shapes)]
        self.layers = [(np.ascontiguousarray(w.T), b, act) for w, b, act in self.layers]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        outs = []
        for s in range(0, len(x), NUMPY_CHUNK):
            h = x[s : s + NUMPY_CHUNK]
            for wt, b, act in self.layers:
                h = h @ wt
                h += b
                if act == "RELU":
                    np.maximum(h, 0.0, out=h)
                elif act == "SIGMOID":
                    h = 1.0 / (1.0 + np.exp(-h))
            outs.append(h)
        return np.concatenate(outs) if len(outs) > 1 else outs[0]


def rss_bytes() -> int:
    """Current resident set size (Linux /proc; elsewhere the peak so far, a weaker stand-in)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def peak_rss_increase(fn) -> tuple[float, float]:
    """(seconds, MiB): run fn() while a thread samples the RSS every 2 ms; peak minus the RSS before."""
    import threading

    before = rss_bytes()
    peak = [before]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_bytes())
            done.wait(0.002)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    t0 = time.perf_counter()
    fn()
    dt = time.perf_counter() - t0
    done.set()
    t.join()
    return dt, (max(peak[0], rss_bytes()) - before) / 2**20


def _timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process, all threads) of one fn() call."""
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def best_rate(fn, n_items: int, min_time: float = 0.3, max_repeats: int = 7,
              huge_repeats: int = 3) -> tuple[float, float]:
    """(items per wall second, items per CPU second) of fn(), best of a few runs (of `huge_repeats` runs without
    a warm-up for huge batches)."""
    if n_items >= 500_000:
        runs = [_timed(fn) for _ in range(huge_repeats)]
        return n_items / min(w for w, _ in runs), n_items / max(min(c for _, c in runs), 1e-9)
    fn()  # warm-up
    best_wall = best_cpu = float("inf")
    total = 0.0
    repeats = 0
    while repeats < max_repeats and (total < min_time or repeats < 2):
        wall, cpu = _timed(fn)
        best_wall, best_cpu = min(best_wall, wall), min(best_cpu, cpu)
        total += wall
        repeats += 1
        if wall > 5.0:
            break
    return n_items / best_wall, n_items / max(best_cpu, 1e-9)


def loop_rate(fn, n_items: int, calls: int) -> tuple[float, float]:
    """For small batches: many calls in a loop, best of 3 loops; (per wall second, per CPU second)."""
    fn()
    best_wall = best_cpu = float("inf")
    for _ in range(3):

        def loop():
            for _ in range(calls):
                fn()

        wall, cpu = _timed(loop)
        best_wall, best_cpu = min(best_wall, wall / calls), min(best_cpu, cpu / calls)
    return n_items / best_wall, n_items / max(best_cpu, 1e-9)


def sample_workloads(stem: str, n: int, rng: np.random.Generator):
    if read_workloads_csv is None:
        return None
    path = GOLDEN_DIR / f"dpu_{stem}.csv"
    if not path.exists():
        return None
    base = read_workloads_csv(path)
    return base[rng.integers(0, len(base), size=n)]


def golden_descriptors(stem: str) -> np.ndarray:
    """Descriptors VPUNN built (golden CSV), used when the full path is not available."""
    import csv

    with open(GOLDEN_DIR / f"dpu_{stem}.csv", newline="") as f:
        rows = [r["descriptor"] for r in csv.DictReader(f) if r["descriptor"]]
    return np.array([[float(v) for v in r.split()] for r in rows], dtype=np.float32)


def _cell(rate: tuple[float, float]) -> str:
    wall, cpu = rate
    return "n/a" if wall != wall else f"{wall:,.0f} ({cpu:,.0f})"


def bench_model(name: str, sizes: list[int], threads: int, rng: np.random.Generator) -> list[dict]:
    stem = name[: -len(".vpunn")]
    path = str(MODEL_DIR / name)
    mlp = _core.MlpModel(path)  # the default: zero-skipping kernel
    dense_kernel = mlp.kernel.removesuffix("_sparse")
    mlp_dense = _core.MlpModel(path, kernel=dense_kernel)  # before: the dense batched kernel
    ref = NumpyMlp(mlp)
    full = VPUNN(path) if VPUNN is not None else None
    full_dense = _core.DpuCostModel(path, mlp_kernel=dense_kernel) if full is not None else None
    n_max = max(sizes)
    workloads = sample_workloads(stem, n_max, rng) if full is not None else None
    first_ok = 0
    if workloads is not None:
        desc, ok = full.descriptors(workloads[: min(n_max, 100_000)])
        pool = desc[ok.astype(bool)]
        first_ok = int(np.argmax(ok))  # a workload the NN evaluates, for the single-call timing
    else:
        pool = golden_descriptors(stem)
    x_all = np.ascontiguousarray(pool[rng.integers(0, len(pool), size=n_max)], dtype=np.float32)
    print(f"\n## {name}: NN '{mlp.name}' {mlp.input_size} inputs, layers "
          f"{' '.join(f'{a}x{b}' for a, b, _ in mlp.layer_shapes)}; "
          f"{100 * float((x_all[:10000] == 0).mean()):.0f} % of the descriptor inputs are 0")
    print(f"Cells: predictions/s of wall time (per CPU-second of this process, all threads: steadier on a "
          f"shared machine). '{mlp.kernel}' = zero-skipping kernel (default), '{dense_kernel}' = dense kernel.")
    print(f"| batch | full path, {mlp.kernel} | full path, {dense_kernel} | MLP only, {mlp.kernel} "
          f"| MLP only, {dense_kernel} | numpy MLP | full path / numpy (wall) | MLP {mlp.kernel} / numpy (cpu) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    results = []
    nan = (float("nan"), float("nan"))
    for n in sizes:
        x = x_all[:n]
        calls = max(1, 20_000 // n)
        rate = (lambda f: loop_rate(f, n, calls)) if n < 4096 else (lambda f: best_rate(f, n))
        r_mlp = rate(lambda: mlp.forward(x, threads=threads))
        r_mlp_dense = rate(lambda: mlp_dense.forward(x, threads=threads))
        r_np = rate(lambda: ref(x))
        r_full = r_full_dense = nan
        rss_delta = None
        if workloads is not None:
            wl = workloads[:n]
            r_full_dense = rate(lambda: full_dense.predict(wl, threads))
            if n >= 1_000_000:  # the first call also samples the peak RSS; best of it and two more
                c0 = time.process_time()
                dt, rss_delta = peak_rss_increase(lambda: full.predict(wl, threads=threads))
                first_cpu = n / max(time.process_time() - c0, 1e-9)
                more = best_rate(lambda: full.predict(wl, threads=threads), n, huge_repeats=2)
                r_full = (max(n / dt, more[0]), max(first_cpu, more[1]))
            else:
                r_full = rate(lambda: full.predict(wl, threads=threads))
        print(f"| {n:,} | {_cell(r_full)} | {_cell(r_full_dense)} | {_cell(r_mlp)} | {_cell(r_mlp_dense)} | "
              f"{_cell(r_np)} | {r_full[0] / r_np[0]:.2f}x | {r_mlp[1] / r_np[1]:.2f}x |")
        results.append({"model": name, "n": n, "full": r_full[0], "full_dense": r_full_dense[0], "mlp": r_mlp[0],
                        "mlp_dense": r_mlp_dense[0], "numpy": r_np[0], "full_cpu": r_full[1],
                        "mlp_cpu": r_mlp[1], "numpy_cpu": r_np[1], "rss_mb": rss_delta})

    one_x = x_all[:1]
    for label, model in ((mlp.kernel, mlp), (dense_kernel, mlp_dense)):
        w, c = loop_rate(lambda: model.forward(one_x), 1, 5000)
        print(f"single call: MlpModel.forward(1 row), {label}: {1e6 / w:.1f} us wall ({1e6 / c:.1f} us CPU)")
    if workloads is not None:
        one = workloads[first_ok : first_ok + 1]
        w, c = loop_rate(lambda: full.predict(one), 1, 5000)
        print(f"single call: VPUNN.predict(1 workload), {mlp.kernel}: {1e6 / w:.1f} us wall ({1e6 / c:.1f} us CPU)")
        w, c = loop_rate(lambda: full_dense.predict(one, 0), 1, 5000)
        print(f"single call: DpuCostModel.predict(1 workload), {dense_kernel}: {1e6 / w:.1f} us wall "
              f"({1e6 / c:.1f} us CPU)")
        # The cost of one call grows with the workload's nonzero hidden activations (zero skipping): a spread.
        head = workloads[: 20 * SINGLE_CALL_SPREAD]
        one_pass = np.flatnonzero(full.predict_detail(head)["value_source"] == VALUE_SOURCES.index("nn"))
        us = sorted(1e6 / loop_rate(lambda: full.predict(head[i : i + 1]), 1, 500)[0]
                    for i in one_pass[:SINGLE_CALL_SPREAD])
        print(f"single call over {len(us)} different workloads the NN evaluates once: "
              f"median {us[len(us) // 2]:.1f} us wall, fastest {us[0]:.1f}, 90th percentile {us[int(0.9 * (len(us) - 1))]:.1f}, slowest {us[-1]:.1f}")
    for r in results:
        if r["rss_mb"] is not None:
            print(f"peak RSS increase during the {r['n']:,}-workload predict call: {r['rss_mb']:.0f} MiB")
    return results


def plot(results: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len({r["model"] for r in results}), figsize=(11, 4), squeeze=False)
    for ax, model in zip(axes[0], dict.fromkeys(r["model"] for r in results)):
        rows = [r for r in results if r["model"] == model]
        ns = [r["n"] for r in rows]
        for key, label in (("full", "full path (zero-skipping)"), ("full_dense", "full path (dense kernel)"),
                           ("mlp", "MLP only (zero-skipping)"), ("mlp_dense", "MLP only (dense kernel)"),
                           ("numpy", "numpy MLP")):
            ax.plot(ns, [r[key] for r in rows], marker="o", label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("batch size")
        ax.set_ylabel("predictions / s")
        ax.set_title(model)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"plot written to {path}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["vpu_2_7.vpunn", "vpu_2_0.vpunn"])
    p.add_argument("--sizes", nargs="+", type=int, default=[1, 64, 4096, 1_000_000])
    p.add_argument("--threads", type=int, default=0, help="0 = let the library choose")
    p.add_argument("--png", default=None, help="write a throughput plot here")
    args = p.parse_args(argv)
    print(f"{os.cpu_count()} CPUs, MLP kernels available: {', '.join(_core.available_mlp_kernels())}, "
          f"threads={args.threads or 'auto'}")
    rng = np.random.default_rng(0)
    results = []
    for name in args.models:
        results += bench_model(name, sorted(args.sizes), args.threads, rng)
    if args.png:
        plot(results, args.png)


if __name__ == "__main__":
    main()
