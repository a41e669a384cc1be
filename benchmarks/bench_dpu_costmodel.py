"""Throughput of vpunas.VPUNN.predict (descriptor building + NN + post-processing, end to end).

Usage: python benchmarks/bench_dpu_costmodel.py [model.vpunn] [rows]
Prints predictions/s for batch calls (1 and all threads) and the latency of a single-workload call.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

from vpunas.costmodel import VPUNN, Workload, read_workloads_csv


def main() -> None:
    model_dir = Path(os.environ.get("VPUNAS_MODEL_DIR", Path(__file__).resolve().parents[2] / "shared" / "vpunn"))
    model = sys.argv[1] if len(sys.argv) > 1 else str(model_dir / "vpu_2_7.vpunn")
    rows = int(sys.argv[2]) if len(sys.argv) > 2 else 200_000
    m = VPUNN(model)
    golden = model_dir / "golden" / f"dpu_{Path(model).name[:-len('.vpunn')]}.csv"
    base = read_workloads_csv(golden) if golden.exists() else m and np.concatenate([Workload().to_record()] * 64)
    wl = np.resize(base, rows)  # golden mix, repeated: valid, refused and unusual rows
    print(f"model {m.nn_name} ({Path(model).name}), {rows} workloads, {os.cpu_count()} CPUs")
    print("| call | threads | time (s) | predictions / s |")
    print("|---|---|---|---|")
    for threads in (1, 0):
        m.predict(wl[:1000], threads=threads)
        t = time.perf_counter()
        m.predict(wl, threads=threads)
        dt = time.perf_counter() - t
        print(f"| batch | {threads or 'all'} | {dt:.3f} | {rows / dt:,.0f} |")
    one = Workload(op="CONVOLUTION", in_w=28, in_h=28, in_c=64, out_w=28, out_h=28, out_c=64).to_record()
    for _ in range(200):
        m.predict(one)
    n = 5000
    t = time.perf_counter()
    for _ in range(n):
        m.predict(one)
    dt = (time.perf_counter() - t) / n
    print(f"| single workload (record ready) | 1 | {dt * 1e6:.1f} us | {1 / dt:,.0f} |")


if __name__ == "__main__":
    main()
