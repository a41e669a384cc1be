"""Layer costs on Intel VPUs the way VPUNN's layer cost model computes them, plus DSP (SHAVE) kernels.

A *layer* is the whole operation before it is cut up, described by the same record as a DPU workload
(``vpunas.costmodel.WORKLOAD_DTYPE``). ``LayerCostModel`` splits it over the device's compute tiles with a
tiling strategy (``NONE`` = clustering, ``SOHO`` split over H, ``SOK`` split over output channels, and on
VPU 4.0 also ``SOW``, ``SOHO_K_SWITCH``; ``SOHW`` / ``SOHK`` are listed by VPUNN but have no splitter),
splits every tile into DPU workloads over the execution modes, costs all candidate workloads of all layers
in ONE batched call of the DPU model, keeps the best split per tile, and takes the best strategy:

    m = LayerCostModel(VPUNN("vpu_2_7.vpunn"))          # VPU_2_7: 1 DPU x 2 tiles by default
    cycles = m.layer_cycles(layers)                      # uint32, VPUNN error codes where refused
    ms = m.latency_ms(cycles)

Activations that fuse into the DPU (ReLU, ReLU6 as clamp, leaky ReLU) cost nothing extra; the others
and up-samplers run on the DSP: ``ShaveCostModel`` costs them with VPUNN's fitted SHAVE models, whose
parameters are read at run time from VPUNN's CSV files ($VPUNAS_MODEL_DIR/shave or ``params_dir``).
Cycles are DPU cycles at the device's nominal DPU clock (VPU 2.0 700 MHz, 2.7 1300 MHz, 4.0 1700 MHz).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from vpunas import _core
from vpunas.costmodel import DEVICES, ENUM_NAMES, WORKLOAD_DTYPE, _as_records, is_error
from vpunas.costmodel import error_name as _workload_error_name

TILING_STRATEGIES: list[str] = list(_core.TILING_STRATEGIES)

# Layer- and SHAVE-level VPUNN error codes (beyond the DPU workload ones in vpunas.costmodel).
LAYER_ERROR_CODES = {
    "ERROR_TILE_SPLIT_EXCEPTION": 4294967289,
    "ERROR_TILE_SPLIT_ZERO_CYC_OUTPUT": 4294967288,
    "ERROR_SHAVE_PARAMS": 4294967282,
    "ERROR_SHAVE_LAYOUT": 4294967281,
    "ERROR_SHAVE_OPERATOR_MISSING": 4294967276,
}
_LAYER_ERROR_NAMES = {v: k for k, v in LAYER_ERROR_CODES.items()}


def error_name(value: int) -> str:
    """VPUNN error name of a cycle value ('' for cycles), layer and SHAVE codes included."""
    return _LAYER_ERROR_NAMES.get(int(value)) or _workload_error_name(int(value))


def _device_index(device: str) -> int:
    names = ENUM_NAMES["device"]
    if device not in names:
        raise ValueError(f"unknown device {device!r}; valid devices: {', '.join(DEVICES)}")
    return names.index(device)


def _cycles_to_ms(cycles, device: str) -> np.ndarray:
    c = np.asarray(cycles, dtype=np.float64)
    return np.where(is_error(cycles), np.nan, c / (DEVICES[device] * 1e3))


def default_hardware(device: str) -> tuple[int, int]:
    """(DPUs per tile, tiles) of a device as VPUNN models it: VPU_2_0 (5, 1), VPU_2_7 (1, 2), VPU_4_0 (1, 6)."""
    return tuple(_core.layer_default_hardware(_device_index(device)))


def valid_strategies(device: str) -> list[str]:
    """Tiling strategies VPUNN tries for a device when no strategy is given."""
    return list(_core.valid_tiling_strategies(_device_index(device)))


class LayerCostModel:
    """Layer -> tiles -> DPU workloads costs on top of a DPU model (``VPUNN`` or ``TheoreticalCostModel``,
    or anything with ``device`` and ``predict(workloads) -> uint32``)."""

    def __init__(self, dpu_model, n_dpu: int | None = None, n_tiles: int | None = None):
        if not hasattr(dpu_model, "predict") or not hasattr(dpu_model, "device"):
            raise ValueError("dpu_model must be a vpunas VPUNN / TheoreticalCostModel (needs .device and .predict)")
        self.dpu_model = dpu_model
        self.device = dpu_model.device
        d_dpu, d_tiles = default_hardware(self.device)
        self.n_dpu = _positive("n_dpu", d_dpu if n_dpu is None else n_dpu)
        self.n_tiles = _positive("n_tiles", d_tiles if n_tiles is None else n_tiles)

    @property
    def strategies(self) -> list[str]:
        return valid_strategies(self.device)

    def _args(self, layers, strategy, n_dpu, n_tiles, pad_channels=False):
        recs = np.ascontiguousarray(_as_records(layers))
        if recs.dtype != WORKLOAD_DTYPE:
            raise ValueError("layers must be a structured array of vpunas.costmodel.WORKLOAD_DTYPE (or Workloads)")
        recs = recs.reshape(-1)
        if pad_channels:
            recs = pad_channels_to_16(recs)
        if len(recs):
            dev = _device_index(self.device)
            bad = np.nonzero(recs["device"] != dev)[0]
            if len(bad):
                got = ENUM_NAMES["device"][int(recs["device"][bad[0]])]
                raise ValueError(f"layer {int(bad[0])} is for device {got}, but the DPU model is for {self.device}")
        if strategy is not None:
            names = [strategy] if isinstance(strategy, str) else list(strategy)
            for s in names:
                if s not in TILING_STRATEGIES:
                    raise ValueError(f"unknown tiling strategy {s!r}; use one of {', '.join(TILING_STRATEGIES)} "
                                     "or None for the best")
        model = getattr(self.dpu_model, "_m", self.dpu_model)  # the C++ model when there is one (GIL-free)
        n_dpu = _positive("n_dpu", self.n_dpu if n_dpu is None else n_dpu)
        n_tiles = _positive("n_tiles", self.n_tiles if n_tiles is None else n_tiles)
        return model, recs, strategy, n_dpu, n_tiles

    def layer_cycles(self, layers, strategy: str | Sequence[str] | None = None, n_dpu: int | None = None,
                     n_tiles: int | None = None, input_in_ddr: bool = False, output_in_ddr: bool = False,
                     prefetching: bool = True, threads: int = 0, pad_channels: bool = False) -> np.ndarray:
        """uint32 cycles per layer: the best over `strategy` (None = every strategy valid for the device),
        or a VPUNN error code (see ``vpunas.layercost.error_name``) when every strategy is refused.

        VPUNN refuses channel counts that are not multiples of 16 (ERROR_INVALID_LAYER_CONFIGURATION);
        pad_channels=True first pads them up to 16 the way the hardware stores them (see
        ``pad_channels_to_16``)."""
        model, recs, strategy, n_dpu, n_tiles = self._args(layers, strategy, n_dpu, n_tiles, pad_channels)
        cycles, _, _ = _core.layer_cycles(model, recs, strategy, n_dpu, n_tiles, bool(input_in_ddr),
                                          bool(output_in_ddr), bool(prefetching), threads)
        return cycles

    def best_strategies(self, layers, strategy=None, n_dpu=None, n_tiles=None, input_in_ddr=False,
                        output_in_ddr=False, prefetching=True, threads: int = 0,
                        pad_channels: bool = False) -> tuple[np.ndarray, list]:
        """(cycles, best strategy name per layer or None when all refused)."""
        model, recs, strategy, n_dpu, n_tiles = self._args(layers, strategy, n_dpu, n_tiles, pad_channels)
        cycles, best, _ = _core.layer_cycles(model, recs, strategy, n_dpu, n_tiles, bool(input_in_ddr),
                                             bool(output_in_ddr), bool(prefetching), threads)
        return cycles, [TILING_STRATEGIES[b] if b >= 0 else None for b in best]

    def layer_details(self, layers, strategy=None, n_dpu=None, n_tiles=None, input_in_ddr=False,
                      output_in_ddr=False, prefetching=True, threads: int = 0,
                      pad_channels: bool = False) -> list[dict]:
        """Per layer: ``cycles``, ``error``, ``best_strategy`` and ``strategies`` (each with ``tile_cycles``,
        ``w_fetch_cycles``, ``ddr_io_dma_cycles`` and ``tiles``: the tile layer, the number of candidate
        splits, and the chosen ``workloads`` with their ``workload_cycles``)."""
        model, recs, strategy, n_dpu, n_tiles = self._args(layers, strategy, n_dpu, n_tiles, pad_channels)
        return _core.layer_details(model, recs, strategy, n_dpu, n_tiles, bool(input_in_ddr), bool(output_in_ddr),
                                   bool(prefetching), threads)

    def latency_ms(self, cycles) -> np.ndarray:
        """Cycles -> milliseconds at the device's DPU clock (NaN for error codes)."""
        return _cycles_to_ms(cycles, self.device)

    def describe(self) -> str:
        """One line for result metadata: how layers are costed."""
        return (f"VPUNN layer model: best of {'/'.join(self.strategies)} over {self.n_tiles} tile(s) x "
                f"{self.n_dpu} DPU(s), intra-tile HW/Z splits per execution mode, weights prefetched, "
                f"activations in CMX")

    def layer_ms(self, layers, **kw) -> np.ndarray:
        return self.latency_ms(self.layer_cycles(layers, **kw))

    def __repr__(self) -> str:
        return f"LayerCostModel({self.dpu_model!r}, n_dpu={self.n_dpu}, n_tiles={self.n_tiles})"


def pad_channels_to_16(layers: np.ndarray) -> np.ndarray:
    """Copy of `layers` with channel counts padded to multiples of 16 as the DPU stores them: output
    channels always; input channels of convolutions with 16 or more inputs (thin convolutions stay
    channel-major), and of depthwise / pooling / element-wise layers (which keep in = out)."""
    out = np.array(layers, dtype=WORKLOAD_DTYPE, copy=True).reshape(-1)
    ops = ENUM_NAMES["op"]
    conv = np.isin(out["op"], [ops.index("CONVOLUTION"), ops.index("CM_CONVOLUTION")])
    out["out_c"] = (out["out_c"] + 15) // 16 * 16
    padded_in = (out["in_c"] + 15) // 16 * 16
    out["in_c"] = np.where(conv, np.where(out["in_c"] >= 16, padded_in, out["in_c"]), out["out_c"])
    return out


def _positive(name: str, v) -> int:
    if int(v) != v or int(v) < 1:
        raise ValueError(f"{name} must be a positive integer, got {v!r}")
    return int(v)


# Activations the DPU applies in its output stage (no DSP work): VPUNN's DPU activation functions plus
# ReLU6, which the compiler lowers to a clamp in the DPU post-processing.
DPU_FUSED_ACTIVATIONS = frozenset({"none", "identity", "relu", "relu6", "clamp", "lrelu", "leakyrelu", "leaky_relu"})

# Operators that leave the DPU and run as DSP kernels even where VPUNN has no model for them on a device
# (e.g. PReLU with a per-channel slope, interpolation).
DSP_OPERATORS = frozenset({"prelu", "gelu", "sigmoid", "hswish", "hardswish", "swish", "silu", "tanh", "mish", "elu",
                           "softmax", "exp", "log", "sqrt", "hsigmoid", "hardsigmoid", "softplus", "depthtospace",
                           "depth_to_space", "spacetodepth", "upsample", "interpolate"})

SHAVE_APIS = ("shave2", "SHAVE")


def default_shave_params_dir() -> Path | None:
    env = os.environ.get("VPUNAS_MODEL_DIR")
    return Path(env) / "shave" if env else None


class ShaveCostModel:
    """DSP (SHAVE) kernel costs with VPUNN's models: api="shave2" (fitted per-device kernels, lower-case
    names such as ``sigmoid``, ``hswish``, ``add``) or api="SHAVE" (VPUNN's legacy per-operator table,
    names such as ``Sigmoid``, ``HardSwish``, ``DepthToSpace``). Shapes are (C, H, W) or (N, C, H, W)."""

    def __init__(self, device: str, params_dir: str | os.PathLike | None = None):
        if params_dir is None:
            params_dir = default_shave_params_dir()
            if params_dir is None:
                raise ValueError("no SHAVE parameter folder: pass params_dir=<folder with layers_perf.csv, "
                                 "shave_layers_vpu_2_7.csv, shave_layers_vpu_40.csv> or set VPUNAS_MODEL_DIR "
                                 "(the files are read from $VPUNAS_MODEL_DIR/shave)")
        self.device = device
        self.params_dir = Path(params_dir)
        self._m = _core.ShaveModel(_device_index(device), str(self.params_dir))

    @staticmethod
    def _api(api: str):
        if api == "shave2":
            return _core.ShaveApi.shave2
        if api == "SHAVE":
            return _core.ShaveApi.SHAVE
        raise ValueError(f"unknown SHAVE api {api!r}; use 'shave2' or 'SHAVE'")

    @staticmethod
    def _whcb(shape, what: str) -> tuple[int, int, int, int]:
        s = tuple(int(x) for x in shape)
        if len(s) == 3:
            c, h, w = s
            n = 1
        elif len(s) == 4:
            n, c, h, w = s
        else:
            raise ValueError(f"{what} must be (C, H, W) or (N, C, H, W), got {shape!r}")
        if min(n, c, h, w) <= 0:
            raise ValueError(f"{what} must be positive, got {shape!r}")
        return w, h, c, n

    def cycles(self, op_name: str, in_shape, out_shape, dtype: str = "FLOAT16", api: str = "shave2",
               params: Sequence[int] = (), layout: str | None = None) -> int:
        """DPU cycles of one kernel (or a VPUNN error code, e.g. ERROR_SHAVE_OPERATOR_MISSING). ValueError
        for kernels whose VPUNN parameters are built in and not in the files (MVN*, softmax, vpuem.*).
        layout: tensor layout of input and output (None: the kernel's own, XYZ for VPUNN's interpolation
        model ``interpolatewh_1``, ZXY otherwise)."""
        in_whcb = self._whcb(in_shape, "in_shape")
        out_whcb = self._whcb(out_shape, "out_shape")
        if any(int(p) != p for p in params):
            raise ValueError(f"params must be integers, got {params!r}")
        if dtype not in ENUM_NAMES["dtype"]:
            raise ValueError(f"unknown dtype {dtype!r}; use one of {', '.join(ENUM_NAMES['dtype'])}")
        if layout is None:
            layout = "XYZ" if op_name == "interpolatewh_1" else "ZXY"
        if layout not in ENUM_NAMES["layout"]:
            raise ValueError(f"unknown layout {layout!r}; use one of {', '.join(ENUM_NAMES['layout'])}")
        li = ENUM_NAMES["layout"].index(layout)
        return int(self._m.cycles(self._api(api), op_name, in_whcb, out_whcb, ENUM_NAMES["dtype"].index(dtype), li, li))

    def cycles_batch(self, ops: Iterable, dtype: str = "FLOAT16", api: str = "shave2") -> np.ndarray:
        """uint32 cycles for many kernels: items are ``vpunas.ops.ShaveOp`` or (name, in_shape, out_shape)."""
        out = []
        for op in ops:
            name, in_shape, out_shape = (op.name, op.in_shape, op.out_shape) if hasattr(op, "name") else op
            out.append(self.cycles(name, in_shape, out_shape, dtype=dtype, api=api))
        return np.asarray(out, dtype=np.uint32)

    def operators(self, api: str = "shave2") -> list[str]:
        return list(self._m.operators(self._api(api)))

    def runs_on_dsp(self, op: str) -> bool:
        """False for activations the DPU fuses (ReLU, ReLU6/clamp, leaky ReLU), True for DSP kernels."""
        if op.lower() in DPU_FUSED_ACTIVATIONS:
            return False
        if self._m.has_operator(_core.ShaveApi.shave2, op) or self._m.has_operator(_core.ShaveApi.SHAVE, op):
            return True
        if op.lower() in DSP_OPERATORS or op.lower().startswith(("interpolate", "upsample")):
            return True
        if self._m.is_builtin_without_params(op):
            return True
        raise ValueError(f"unknown operator {op!r} for {self.device}: neither a DPU-fused activation nor a "
                         f"SHAVE kernel (see ShaveCostModel.operators())")

    def latency_ms(self, cycles) -> np.ndarray:
        return _cycles_to_ms(cycles, self.device)

    def __repr__(self) -> str:
        return f"ShaveCostModel({self.device!r}, params_dir={str(self.params_dir)!r})"


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="stable")
    r = np.empty(len(x), dtype=np.float64)
    r[order] = np.arange(len(x))
    vals, inv, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.zeros(len(vals))
    np.add.at(sums, inv, r)
    return (sums / counts)[inv]  # average rank of ties


def spearman(a, b) -> float:
    """Spearman rank correlation (ties get their average rank)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(a) < 3:
        return float("nan")
    return float(np.corrcoef(_ranks(a), _ranks(b))[0, 1])


def golden_layer_parity(golden_csv, dpu_model) -> dict:
    """Recomputes every row of a VPUNN golden layer file (layer_<model>.csv: each strategy and the BEST
    row of every layer and hardware configuration) with LayerCostModel on `dpu_model`.

    Returns {"stats": {config: {rows, costed_both, mape, spearman, exact, errors_golden, errors_match,
    status_mismatch}}, "golden", "ours" (uint64 / uint32 per row), "rows", "columns"}. `exact` counts rows
    within max(2 cycles, 1e-5 relative), the tolerance VPUNN's README gives for float summation order."""
    from collections import defaultdict

    from vpunas.costmodel import read_workloads_csv

    layers, header, rows = read_workloads_csv(golden_csv, return_header=True)
    col = {n: i for i, n in enumerate(header)}
    model = LayerCostModel(dpu_model)
    groups = defaultdict(list)
    for i, r in enumerate(rows):
        key = (r[col["strategy"]], int(r[col["nDPU"]]), int(r[col["nTiles"]]), r[col["input_in_ddr"]] == "1",
               r[col["output_in_ddr"]] == "1", r[col["prefetching"]] == "1")
        groups[key].append(i)
    ours = np.zeros(len(rows), dtype=np.uint32)
    for (strategy, n_dpu, n_tiles, in_ddr, out_ddr, prefetch), idx in groups.items():
        idx = np.asarray(idx)
        ours[idx] = model.layer_cycles(layers[idx], strategy=None if strategy == "BEST" else strategy, n_dpu=n_dpu,
                                       n_tiles=n_tiles, input_in_ddr=in_ddr, output_in_ddr=out_ddr,
                                       prefetching=prefetch)
    golden = np.array([int(r[col["cycles"]]) for r in rows], dtype=np.uint64)
    configs = np.array([r[col["config"]] for r in rows])
    stats = {}
    for config in sorted(set(configs)):
        sel = configs == config
        g, o = golden[sel], ours[sel].astype(np.uint64)
        g_err, o_err = is_error(g), is_error(o)
        both = ~g_err & ~o_err
        gf, of = g.astype(np.float64), o.astype(np.float64)
        exact = both & (np.abs(gf - of) <= np.maximum(2.0, 1e-5 * gf))
        rel = np.abs(of[both] - gf[both]) / np.maximum(gf[both], 1.0)
        stats[config] = {
            "rows": int(sel.sum()), "costed_both": int(both.sum()),
            "mape": float(rel.mean() * 100) if both.any() else float("nan"),
            "spearman": spearman(gf[both], of[both]),
            "exact": int(exact.sum()), "identical": int((both & (g == o)).sum()),
            "errors_golden": int(g_err.sum()), "errors_match": int((g_err & o_err & (g == o)).sum()),
            "status_mismatch": int((g_err != o_err).sum()),
        }
    return {"stats": stats, "golden": golden, "ours": ours, "rows": rows, "columns": col}


__all__ = ["LayerCostModel", "ShaveCostModel", "TILING_STRATEGIES", "default_hardware", "valid_strategies",
           "DPU_FUSED_ACTIVATIONS", "DSP_OPERATORS", "error_name", "pad_channels_to_16", "golden_layer_parity", "spearman"]
