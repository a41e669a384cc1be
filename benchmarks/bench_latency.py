"""Speed of the latency machinery, printed side by side in one run:

  1. LUT build for the whole MBConv classification space (mobilenetv2-224 preset, input 224) with a VPUNN
     model (default vpu_2_7.vpunn): model load, first build, warm builds.
  2. Expected latency forward + backward for 21 blocks x 7 candidates: plain torch ops (autograd) vs the
     vpunas autograd.Function (C++ kernel inside) vs the fused C++ call without autograd.
  3. Batched discrete queries (B architectures -> B latencies, and the constraint count) vs numpy.

Usage: python benchmarks/bench_latency.py [--model-dir DIR] [--model vpu_2_7.vpunn] [--batch 1000000]
Timings are medians over repeats; this host is shared, so expect noise.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "python"))

from vpunas.costmodel import VPUNN  # noqa: E402
from vpunas.latency import (count_within, discrete_latency, expected_latency, expected_latency_and_grad,  # noqa: E402
                            expected_latency_torch)
from vpunas.lut import LatencyTable, VpuCostSource  # noqa: E402
from vpunas.spaces import get_space  # noqa: E402


def median_time(fn, repeats: int, inner: int = 1, clock=time.perf_counter) -> float:
    """Median seconds per call of fn over `repeats` rounds of `inner` calls."""
    times = []
    for _ in range(repeats):
        t = clock()
        for _ in range(inner):
            fn()
        times.append((clock() - t) / inner)
    return statistics.median(times)


def bench_lut(model_file: Path, repeats: int) -> list:
    t = time.perf_counter()
    model = VPUNN(model_file)
    source = VpuCostSource(model.device, model=model)
    load_s = time.perf_counter() - t
    space = get_space("mbconv", preset="mobilenetv2-224", resolution=224)
    t = time.perf_counter()
    table = LatencyTable.build(space, source, progress=False)
    first_s = time.perf_counter() - t
    warm_s = median_time(lambda: LatencyTable.build(space, source, progress=False), repeats)
    warm_cpu = median_time(lambda: LatencyTable.build(space, source, progress=False), repeats, clock=time.process_time)
    n_cands = sum(len(b.candidates) for b in space.blocks)
    return [("LUT build, mbconv-224 space", f"{len(table)} distinct ops ({n_cands} candidates + "
             f"{len(space.fixed_ops)} fixed), {model_file.name}, {len(table.failed())} failed", ""),
            ("  model load + source setup", f"{load_s * 1e3:.1f} ms", ""),
            ("  first build (after load)", f"{first_s * 1e3:.1f} ms", "target < 100 ms"),
            ("  warm build (median)", f"{warm_s * 1e3:.1f} ms", "target < 100 ms"),
            ("  warm build, CPU time (all threads)", f"{warm_cpu * 1e3:.1f} ms", "busy-host proxy for wall time")]


def bench_expected(repeats: int, inner: int) -> list:
    torch.manual_seed(0)
    n, m = 21, 7
    alpha = torch.randn(n, m, requires_grad=True)
    F = torch.rand(n, m) * 0.1
    mask = torch.ones(n, m, dtype=torch.bool)
    mask[::3, 6] = False  # ragged like the MBConv space (skip only where shapes allow)

    def plain_torch():
        alpha.grad = None
        expected_latency_torch(alpha, F, mask).backward()

    def vpunas_autograd():
        alpha.grad = None
        expected_latency(alpha, F, mask).backward()

    def fused_kernel():
        expected_latency_and_grad(alpha, F, mask)

    wall, cpu = {}, {}
    for _ in range(3):  # interleave the three to share the host's noise
        for name, fn in (("torch", plain_torch), ("autograd", vpunas_autograd), ("fused", fused_kernel)):
            for _ in range(50):
                fn()
            wall.setdefault(name, []).append(median_time(fn, repeats, inner))
            cpu.setdefault(name, []).append(median_time(fn, repeats, inner, clock=time.process_time))
    t_torch, t_auto, t_fused = (min(wall[k]) for k in ("torch", "autograd", "fused"))
    c_torch, c_auto, c_fused = (min(cpu[k]) for k in ("torch", "autograd", "fused"))
    return [("Expected latency fwd+bwd, 21 x 7", "wall (CPU time)", ""),
            ("  plain torch ops (autograd)", f"{t_torch * 1e6:.1f} us ({c_torch * 1e6:.1f} us)", "baseline"),
            ("  vpunas ExpectedLatency (autograd.Function, C++)", f"{t_auto * 1e6:.1f} us ({c_auto * 1e6:.1f} us)",
             f"{t_torch / t_auto:.1f}x vs torch ({c_torch / c_auto:.1f}x CPU)"),
            ("  vpunas expected_latency_and_grad (fused C++, no autograd)",
             f"{t_fused * 1e6:.1f} us ({c_fused * 1e6:.1f} us)",
             f"{t_torch / t_fused:.1f}x vs torch ({c_torch / c_fused:.1f}x CPU) (target >= 10x)")]


def bench_discrete(batch: int, repeats: int) -> list:
    rng = np.random.default_rng(0)
    n, m = 21, 7
    F = rng.random((n, m))
    choices64 = rng.integers(0, m, size=(batch, n))
    choices8 = choices64.astype(np.uint8)
    target = float(np.median(F.sum(axis=1)))
    rows = [(f"Discrete queries, B = {batch:,} x {n} blocks", f"{os.cpu_count()} CPUs on this host", "")]
    rows_idx = np.arange(n)
    t_np = median_time(lambda: F[rows_idx, choices64].sum(axis=1), max(1, repeats // 2))
    rows.append(("  numpy fancy indexing (int64)", f"{batch / t_np / 1e6:.1f} M archs/s", "baseline"))
    for label, ch in (("int64", choices64), ("uint8", choices8)):
        discrete_latency(ch, F)
        t1 = median_time(lambda: discrete_latency(ch, F, n_threads=1), repeats)
        # CPU seconds of the single-threaded call: what one uncontended core delivers on a busy host
        c1 = median_time(lambda: discrete_latency(ch, F, n_threads=1), repeats, clock=time.process_time)
        tn = median_time(lambda: discrete_latency(ch, F), repeats)
        rows.append((f"  discrete_latency ({label}, 1 thread)", f"{batch / t1 / 1e6:.1f} M archs/s",
                     f"{t_np / t1:.1f}x numpy; {batch / c1 / 1e6:.1f} M archs per CPU-second"))
        rows.append((f"  discrete_latency ({label}, all threads)", f"{batch / tn / 1e6:.1f} M archs/s",
                     "target >= 50 M/s"))
    tc = median_time(lambda: count_within(choices8, F, target), repeats)
    rows.append(("  count_within (uint8, all threads)", f"{batch / tc / 1e6:.1f} M archs/s", ""))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_dir = os.environ.get("VPUNAS_MODEL_DIR") or str(REPO.parent / "shared" / "vpunn")
    ap.add_argument("--model-dir", default=default_dir)
    ap.add_argument("--model", default="vpu_2_7.vpunn")
    ap.add_argument("--batch", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    torch.set_num_threads(1)  # the 21 x 7 problem is far too small for intra-op threads
    rows = []
    model_file = Path(args.model_dir) / args.model
    if model_file.is_file():
        rows += bench_lut(model_file, args.repeats)
    else:
        rows.append(("LUT build", f"skipped: {model_file} not found (--model-dir)", ""))
    rows += bench_expected(args.repeats, inner=200)
    rows += bench_discrete(args.batch, args.repeats)
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"host: {os.cpu_count()} CPUs, load average {load:.1f} at start of printing; torch {torch.__version__}")
    print(f"{'benchmark'.ljust(w0)}  {'result'.ljust(w1)}  note")
    print(f"{'-' * w0}  {'-' * w1}  ----")
    for a, b, c in rows:
        print(f"{a.ljust(w0)}  {b.ljust(w1)}  {c}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
