"""Speed of layer costing: every DPU layer of the whole MBConv search space at input 224 (all candidate
ops of all blocks plus the fixed stem / head), split over tiles and DPUs for every tiling strategy and
costed with VPUNN in one batched call. Target: < 100 ms per device.

    python benchmarks/bench_layer_cost.py [--model-dir DIR] [--repeats 5]
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from vpunas.costmodel import VPUNN, is_error
from vpunas.layercost import LayerCostModel
from vpunas.lut import layers_to_records
from vpunas.spaces.mbconv import mobilenetv2_224_space

STEMS = {"VPU_2_0": "vpu_2_0", "VPU_2_7": "vpu_2_7", "VPU_4_0": "vpu_4_0"}


def space_layers(device: str) -> np.ndarray:
    space = mobilenetv2_224_space()
    ops = list(space.fixed_ops) + [c for b in space.blocks for c in b.candidates]
    layers = list(dict.fromkeys(layer for op in ops for layer in op.dpu_layers(device, "UINT8")))
    return layers_to_records(layers)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", default=os.environ.get("VPUNAS_MODEL_DIR", "../shared/vpunn"))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    print("times: wall clock and CPU time of this process (the CPU figure is what a busy shared machine hides)")
    print(f"{'device':<9}{'layers':>7}{'workloads':>10}{'refused':>9}{'wall med ms':>13}{'wall min ms':>13}"
          f"{'cpu min ms':>12}")
    for device, stem in STEMS.items():
        path = Path(args.model_dir) / f"{stem}.vpunn"
        if not path.is_file():
            print(f"{device:<9} missing {path}")
            continue
        records = space_layers(device)
        model = LayerCostModel(VPUNN(path))
        from vpunas import _core

        _, _, n_wl = _core.layer_cycles(model.dpu_model._m, records, None, model.n_dpu, model.n_tiles, False, False,
                                        True, args.threads)
        times, cpu = [], []
        for _ in range(args.repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            cycles = model.layer_cycles(records, threads=args.threads)
            times.append((time.perf_counter() - t0) * 1e3)
            cpu.append((time.process_time() - c0) * 1e3)
        print(f"{device:<9}{len(records):>7}{n_wl:>10}{int(is_error(cycles).sum()):>9}{np.median(times):>13.1f}"
              f"{min(times):>13.1f}{min(cpu):>12.1f}")


if __name__ == "__main__":
    main()
