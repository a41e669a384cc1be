"""Latency look-up tables (LUT): every distinct (op, shape) of a search space costed once.

    source = VpuCostSource("VPU_2_7", model="vpu_2_7.vpunn")         # or model=None: theoretical estimate
    table = LatencyTable.build(space, source)                          # one batched cost call
    F, mask = table.matrix(space)                                      # [N blocks, M candidates] ms
    table.save("lut.json"); LatencyTable.load("lut.json")

File format (versioned JSON, never pickle; see DESIGN.md):
    {"format": "vpunas-lut", "version": 1, "device": ..., "unit": "ms", "dtype": ..., "source": {...},
     "space": {...optional...}, "entries": [{"key", "op", "latency_ms", "std_ms", "n", "status"?, "error"?, ...}]}
Entries the cost model refused (VPUNN error codes) are kept with "status": "failed", "latency_ms": null and
the error name, so they never enter a latency matrix silently.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

import numpy as np

from vpunas import ops as ops_mod

LUT_FORMAT = "vpunas-lut"
LUT_VERSION = 1
_MAX_NAMED_KEYS = 8  # keys listed in one error message


# ----- collecting ops ---------------------------------------------------------------------------------
def space_ops(space) -> list:
    """Every op a search space can use: all block candidates, then the fixed ops (duplicates kept)."""
    if not hasattr(space, "blocks") or not hasattr(space, "fixed_ops"):
        raise ValueError(f"{type(space).__name__} is not a search space (needs .blocks and .fixed_ops)")
    out = []
    for block in space.blocks:
        out.extend(block.candidates)
    out.extend(space.fixed_ops)
    return out


def unique_ops(items: Iterable) -> list:
    """Distinct ops by key, first-occurrence order."""
    seen, out = set(), []
    for op in items:
        if op.key not in seen:
            seen.add(op.key)
            out.append(op)
    return out


def _is_zero_cost(key: str) -> bool:
    # The identity (skip) candidate costs nothing whatever produced the table (also measured ones).
    return key.startswith("skip_")


# ----- cost sources -------------------------------------------------------------------------------------
@dataclass
class CostResult:
    """The cost of one op: total ms (NaN when failed), its DPU and DSP parts, and why it failed."""

    latency_ms: float
    dpu_ms: float = 0.0
    shave_ms: float = 0.0
    error: str = ""
    notes: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.error and math.isfinite(self.latency_ms)


# SHAVE kernels VPUNN has no model for in its parameter files, replaced by the closest modelled kernels
# on the same output tensor: alternatives in order of preference, each a list of (api, kernel) whose
# costs add (api None: shave2 first, then the legacy table). ReLU-like kernels fall back to the legacy
# Clamp, not to VPU 2.7's fitted shave2 clamp, whose fit is ~30x slower per element than every other
# simple element-wise kernel of that file. The substitution is recorded in the LUT entry ("notes").
_SHAVE_PROXIES = {
    "relu": [[("shave2", "prelu")], [("SHAVE", "Clamp")]],
    "leakyrelu": [[("shave2", "prelu")], [("SHAVE", "Clamp")]],   # one compare + multiply per element
    "prelu": [[("SHAVE", "Clamp")]],
    "interpolate_nearest": [[(None, "DepthToSpace")]],          # pure data movement to the output size
    "interpolate_bilinear": [[(None, "DepthToSpace"), (None, "Multiply"), (None, "Add")]],  # + weights + sum
}
# shave2 (fitted per device) first, then VPUNN's legacy table; names differ in case.
_LEGACY_NAMES = {"DepthToSpace": "DepthToSpace", "clamp": "Clamp", "gelu": "Gelu", "sigmoid": "Sigmoid",
                 "tanh": "Tanh", "hswish": "HardSwish", "swish": "Swish", "Multiply": "Multiply", "Add": "Add",
                 "prelu": "PRelu", "relu": "Relu", "leakyrelu": "LeakyRelu"}
_DTYPE_BYTES = {"UINT8": 1, "INT8": 1, "FLOAT16": 2, "BFLOAT16": 2}


def default_shave_params_dir(model_path: Optional[Path] = None) -> Optional[Path]:
    """Where VPUNN's SHAVE parameter CSVs are: $VPUNAS_SHAVE_DIR, <model dir>/shave, $VPUNAS_MODEL_DIR/shave."""
    candidates = [os.environ.get("VPUNAS_SHAVE_DIR")]
    if model_path is not None:
        candidates.append(Path(model_path).resolve().parent / "shave")
    if os.environ.get("VPUNAS_MODEL_DIR"):
        candidates.append(Path(os.environ["VPUNAS_MODEL_DIR"]) / "shave")
    for c in candidates:
        if c and (Path(c) / "layers_perf.csv").is_file():
            return Path(c)
    return None


def _sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class VpuCostSource:
    """Costs ops on an Intel VPU / NPU with VPUNN's models.

    DPU layers go through `vpunas.LayerCostModel` (split over tiles and DPUs, best tiling strategy)
    on `vpunas.VPUNN(model)`, or on `vpunas.TheoreticalCostModel(device)` when `model` is None (an
    analytic ESTIMATE, labelled so in the metadata). DSP kernels go through `vpunas.ShaveCostModel`
    with VPUNN's fitted parameter files (`shave_params`: their folder; default: see
    `default_shave_params_dir`). Ops run one after another: an op's latency is the sum of its parts.
    """

    def __init__(self, device: str, model=None, dtype: str = "UINT8", shave_params=None, threads: int = 0):
        from vpunas import costmodel, layercost

        if dtype not in ops_mod.DTYPES:
            raise ValueError(f"unknown dtype {dtype!r}; choose one of {', '.join(ops_mod.DTYPES)}")
        if device not in ops_mod.DEVICES:
            raise ValueError(f"unknown device {device!r}; choose one of {', '.join(ops_mod.DEVICES)}")
        self.device, self.dtype, self.threads = device, dtype, threads
        if model is None:
            self.dpu_model = costmodel.TheoreticalCostModel(device)
            self.model_path = None
        elif isinstance(model, (str, os.PathLike)):
            self.dpu_model = costmodel.VPUNN(model)
            self.model_path = Path(self.dpu_model.path)
        else:
            self.dpu_model = model
            self.model_path = Path(model.path) if getattr(model, "path", None) else None
        if self.dpu_model.device != device:
            raise ValueError(f"device {device} does not match the VPUNN model {self.model_path.name if self.model_path else ''}"
                             f", which is for {self.dpu_model.device}; pass device={self.dpu_model.device} or the "
                             "model file of your device")
        self.layer_model = layercost.LayerCostModel(self.dpu_model)
        self.shave_dir = Path(shave_params) if shave_params is not None else default_shave_params_dir(self.model_path)
        self.shave_model, self.shave_note = None, ""
        if self.shave_dir is not None:
            try:
                self.shave_model = layercost.ShaveCostModel(device, str(self.shave_dir))
                self._shave_names = {api: set(self.shave_model.operators(api)) for api in ("shave2", "SHAVE")}
            except ValueError as exc:  # e.g. a device VPUNN has no SHAVE models for
                self.shave_model, self.shave_note = None, str(exc)
        self._sha256 = _sha256(self.model_path) if self.model_path else None
        self.clock_mhz = costmodel.DEVICES[device]

    # -- metadata --------------------------------------------------------------------------------------
    @property
    def is_estimate(self) -> bool:
        return self.model_path is None

    def metadata(self) -> dict:
        from vpunas import __version__

        if self.is_estimate:
            src = {"kind": "theoretical", "model": None, "sha256": None,
                   "note": "theoretical estimate: VPUNN's analytic DPU model (MACs, padding, CMX bandwidth), "
                           "no trained .vpunn cost model"}
        else:
            src = {"kind": "vpunn", "model": self.model_path.name, "sha256": self._sha256,
                   "nn_name": getattr(self.dpu_model, "nn_name", None)}
        src.update({"device": self.device, "dtype": self.dtype, "dpu_clock_mhz": self.clock_mhz,
                    "layer": {"n_dpu": self.layer_model.n_dpu, "n_tiles": self.layer_model.n_tiles,
                              "strategy": "best of " + "/".join(self.layer_model.strategies),
                              "too_big_layers": "H-strips (or output-channel groups) with input/output in DDR"},
                    "shave": ("VPUNN shave2 fitted kernels, legacy table as fallback, params from "
                              f"{self.shave_dir.name}/" if self.shave_model is not None else
                              "no SHAVE parameter files: DSP kernels estimated at 1 cycle per output byte"),
                    "vpunas_version": __version__})
        return src

    # -- costing -------------------------------------------------------------------------------------------
    def latency_ms(self, ops) -> np.ndarray:
        """Total ms per op (NaN where the cost model refused a part)."""
        return np.array([r.latency_ms for r in self.cost(ops)], dtype=np.float64)

    def cost(self, ops) -> list:
        """CostResult per op; all DPU layers of all ops are costed in one batched call."""
        ops = list(ops)
        layer_lists = [op.dpu_layers(self.device, self.dtype) for op in ops]
        # Deduplicate layers across ops (MBConv candidates share expand / project convolutions).
        index: dict = {}
        uniq = []
        for layers in layer_lists:
            for layer in layers:
                if layer not in index:
                    index[layer] = len(uniq)
                    uniq.append(layer)
        cycles = self._layer_cycles(uniq) if uniq else np.zeros(0, dtype=np.uint32)
        from vpunas import costmodel

        split_notes = self._cost_too_big_as_strips(uniq, cycles)
        bad = costmodel.is_error(cycles)
        layer_ms = cycles.astype(np.float64) / (self.clock_mhz * 1e3)
        shave_cache: dict = {}
        results = []
        for op, layers in zip(ops, layer_lists):
            res = CostResult(0.0)
            for layer in layers:
                k = index[layer]
                if bad[k]:
                    res.error = (f"DPU {layer.op} {layer.in_w}x{layer.in_h}x{layer.in_c}->"
                                 f"{layer.out_w}x{layer.out_h}x{layer.out_c} k{layer.k_w}s{layer.s_w}: "
                                 f"{costmodel.error_name(int(cycles[k]))}")
                    break
                res.dpu_ms += float(layer_ms[k])
                if k in split_notes and split_notes[k] not in res.notes:
                    res.notes.append(split_notes[k])
            if not res.error:
                for sop in op.shave_ops(self.device):
                    key = (sop.name, tuple(sop.out_shape))
                    if key not in shave_cache:
                        shave_cache[key] = self._shave_ms(sop)
                    ms, err, note = shave_cache[key]
                    if err:
                        res.error = err
                        break
                    res.shave_ms += ms
                    if note and note not in res.notes:
                        res.notes.append(note)
            res.latency_ms = math.nan if res.error else res.dpu_ms + res.shave_ms
            results.append(res)
        return results

    def _layer_cycles(self, layers: list, in_ddr: bool = False) -> np.ndarray:
        records = layers_to_records(layers)
        return np.asarray(self.layer_model.layer_cycles(records, input_in_ddr=in_ddr, output_in_ddr=in_ddr,
                                                        threads=self.threads), dtype=np.uint32)

    def _cost_too_big_as_strips(self, layers: list, cycles: np.ndarray) -> dict:
        """Layers VPUNN refuses as too big for the tiles (VPU 2.0 cannot split a layer over tiles at all)
        are what a compiler streams through CMX piece by piece: cost them as n equal horizontal strips
        (or, when that cannot work, n output-channel groups) with input and output in DDR, for the
        smallest n VPUNN accepts. Updates `cycles` in place; returns {layer index: note}."""
        from vpunas import costmodel

        too_big = {costmodel.ERROR_CODES[n] for n in ("ERROR_INVALID_LAYER_CONFIGURATION", "ERROR_INPUT_TOO_BIG",
                                                      "ERROR_TILE_OUTPUT")}
        todo = [i for i, c in enumerate(cycles) if int(c) in too_big]
        notes: dict = {}
        for splitter, what in ((split_h, "H-strips"), (split_k, "output-channel groups")):
            for n in _STRIP_COUNTS:
                todo_n = [i for i in todo if splitter(layers[i], n) is not None]
                if not todo_n:
                    continue
                pieces = {i: splitter(layers[i], n) for i in todo_n}
                flat = list(dict.fromkeys(st for i in todo_n for st in pieces[i]))
                pos = {st: j for j, st in enumerate(flat)}
                c = self._layer_cycles(flat, in_ddr=True)
                for i in todo_n:
                    parts = [int(c[pos[st]]) for st in pieces[i]]
                    if any(costmodel.is_error(v) for v in parts) or sum(parts) >= costmodel.FIRST_ERROR:
                        continue
                    cycles[i] = sum(parts)
                    lay = layers[i]
                    notes[i] = (f"DPU {lay.op} {lay.in_w}x{lay.in_h}x{lay.in_c}->{lay.out_w}x{lay.out_h}x{lay.out_c} "
                                f"does not fit the tiles: costed as {n} {what} streamed from / to DDR")
                todo = [i for i in todo if i not in notes]
                if not todo:
                    return notes
        return notes

    def _shave_ms(self, sop) -> tuple:
        """(ms, error, note) of one DSP kernel, using a proxy kernel where VPUNN has no model."""
        name = sop.name
        c, h, w = sop.out_shape
        if self.shave_model is None:
            cycles = c * h * w * _DTYPE_BYTES[self.dtype]
            return cycles / (self.clock_mhz * 1e3), "", f"{sop.name}: no SHAVE params, 1 cycle/byte estimate"
        direct = self._shave_kernel_cycles(name, c, h, w)
        if direct is not None:
            return self._cycles_ms(direct, sop.name)
        for proxies in _SHAVE_PROXIES.get(name, []):
            parts = [self._shave_kernel_cycles(k, c, h, w, api=api) for api, k in proxies]
            if all(p is not None for p in parts):
                ms, err, _ = self._cycles_ms(sum(parts), sop.name)
                names = " + ".join(k if api is None else f"{api}:{k}" for api, k in proxies)
                return ms, err, f"{sop.name} ~ {names} (no VPUNN model for {sop.name} on {self.device})"
        return math.nan, f"SHAVE {sop.name}: no VPUNN model for this kernel on {self.device}", ""

    def _cycles_ms(self, cycles: int, name: str) -> tuple:
        from vpunas import costmodel

        if costmodel.is_error(cycles):
            return math.nan, f"SHAVE {name}: {costmodel.error_name(int(cycles))}", ""
        return cycles / (self.clock_mhz * 1e3), "", ""

    def _shave_kernel_cycles(self, name: str, c: int, h: int, w: int, api=None):
        """Cycles of a named kernel (shave2 first, then legacy; or only `api`), None when not offered."""
        for a, n in (("shave2", name), ("SHAVE", _LEGACY_NAMES.get(name, name))):
            if api in (None, a) and n in self._shave_names[a]:
                return int(self.shave_model.cycles(n, (c, h, w), (c, h, w), dtype=self.dtype, api=a))
        return None


_STRIP_COUNTS = (2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128)


def split_h(layer, n: int):
    """A DPU layer cut into n horizontal strips of (nearly) equal output height, each with the input rows
    and the top / bottom padding it needs; None when the output has fewer than n rows."""
    import dataclasses

    if layer.out_h < n:
        return None
    k, s, H = layer.k_h, layer.s_h, layer.in_h
    per = -(-layer.out_h // n)
    out = []
    for r0 in range(0, layer.out_h, per):
        r1 = min(layer.out_h, r0 + per)
        first_row = r0 * s - layer.pad_t            # input row of the strip's first window (may be < 0)
        last_row = (r1 - 1) * s - layer.pad_t + k - 1
        pad_t, pad_b = max(0, -first_row), max(0, last_row - (H - 1))
        in_h = min(H - 1, last_row) - max(0, first_row) + 1
        out.append(dataclasses.replace(layer, in_h=in_h, out_h=r1 - r0, pad_t=pad_t, pad_b=pad_b))
    return out


def split_k(layer, n: int):
    """A DPU layer cut into n groups of output channels (multiples of 16; a convolution keeps all its
    input channels, channel-wise ops split both); None when there are fewer than n groups of 16."""
    import dataclasses

    if layer.out_c < 16 * n:
        return None
    per = ops_mod.align16(-(-layer.out_c // n))
    out = []
    for c0 in range(0, layer.out_c, per):
        c = min(per, layer.out_c - c0)
        out.append(dataclasses.replace(layer, out_c=c, in_c=layer.in_c if layer.op == "CONVOLUTION" else c))
    return out


def layers_to_records(layers: list) -> np.ndarray:
    """ops.DpuLayer list -> costmodel.WORKLOAD_DTYPE array (device-natural layout / execution mode)."""
    from vpunas import costmodel

    n = len(layers)
    arr = costmodel.workloads_array(n)
    names = costmodel.ENUM_NAMES

    def enum(table, values):
        lookup = {t: i for i, t in enumerate(names[table])}
        return np.array([lookup[v] for v in values], dtype=arr["device"].dtype)

    for f in ("in_w", "in_h", "in_c", "out_w", "out_h", "out_c", "k_w", "k_h", "s_w", "s_h",
              "pad_t", "pad_b", "pad_l", "pad_r"):
        arr[f] = [getattr(l, f) for l in layers]
    arr["device"] = enum("device", [l.device for l in layers])
    arr["op"] = enum("op", [l.op for l in layers])
    dt = enum("dtype", [l.dtype for l in layers])
    arr["in_dtype"], arr["out_dtype"] = dt, dt
    arr["activation"] = enum("activation", [l.activation for l in layers])
    arr["exec_mode"] = enum("exec_mode", [_exec_mode(l) for l in layers])
    layout = enum("layout", ["ZMAJOR" if l.device == "VPU_2_0" else "ZXY" for l in layers])
    arr["in_layout"], arr["out_layout"] = layout, layout
    return arr


def _exec_mode(layer) -> str:
    if layer.device == "VPU_2_0":
        return "VECTOR_FP16" if layer.dtype in ("FLOAT16", "BFLOAT16") else "MATRIX"
    return "CUBOID_16x16"


# ----- the table -------------------------------------------------------------------------------------------
class LatencyTable:
    """op key -> latency (ms), with the source's metadata. Entries are dicts as stored in the JSON file."""

    def __init__(self, entries: Iterable[dict], device: str, source: dict, dtype: Optional[str] = None,
                 space: Optional[dict] = None, path: Optional[Path] = None):
        self.entries: dict[str, dict] = {}
        for e in entries:
            self.entries[e["key"]] = e
        self.device = device
        self.source = dict(source)
        self.dtype = dtype
        self.space = space
        self.path = path
        self.build_seconds: Optional[float] = None

    # -- building -------------------------------------------------------------------------------------------
    @classmethod
    def build(cls, space_or_ops, cost_source, progress: bool = True) -> "LatencyTable":
        """Cost every distinct op of a search space (or an op list) in one batched call."""
        t0 = time.perf_counter()
        if hasattr(space_or_ops, "blocks"):
            all_ops = space_ops(space_or_ops)
            space_meta = {"name": getattr(space_or_ops, "name", None),
                          "input_size": list(getattr(space_or_ops, "input_size", []) or [])}
            config = getattr(space_or_ops, "config", None)
            if isinstance(config, dict):
                space_meta["config"] = config
        else:
            all_ops, space_meta = list(space_or_ops), None
        uniq = unique_ops(all_ops)
        bar = _progress(progress, len(uniq), "LUT")
        results = cost_source.cost(uniq) if hasattr(cost_source, "cost") else [
            CostResult(float(v)) for v in cost_source.latency_ms(uniq)]
        entries = []
        for op, r in zip(uniq, results):
            e = {"key": op.key, "op": op.to_dict() if hasattr(op, "to_dict") else {"type": type(op).__name__},
                 "latency_ms": float(r.latency_ms) if r.ok else None, "std_ms": 0.0, "n": 1,
                 "dpu_ms": r.dpu_ms, "shave_ms": r.shave_ms}
            if not r.ok:
                e.update(status="failed", error=r.error or "cost model returned no valid value")
            if r.notes:
                e["notes"] = list(r.notes)
            entries.append(e)
        if bar is not None:
            bar.update(len(uniq))
            bar.close()
        meta = cost_source.metadata()
        table = cls(entries, device=getattr(cost_source, "device", meta.get("device")), source=meta,
                    dtype=getattr(cost_source, "dtype", meta.get("dtype")), space=space_meta)
        table.build_seconds = time.perf_counter() - t0
        return table

    # -- lookup --------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, key) -> bool:
        key = key if isinstance(key, str) else key.key
        return key in self.entries or _is_zero_cost(key)

    def __getitem__(self, key) -> float:
        return self.latency_ms(key)

    def failed(self) -> list:
        """Entries the cost source refused, each with its error."""
        return [e for e in self.entries.values() if e.get("status") == "failed"]

    def latency_ms(self, op) -> float:
        """Latency of an op (or op key) in ms; ValueError when absent or failed."""
        key = op if isinstance(op, str) else op.key
        e = self.entries.get(key)
        if e is None:
            if _is_zero_cost(key):
                return 0.0
            raise ValueError(f"LUT{self._where()} has no entry for op {key!r}; rebuild it for this search space "
                             "(vpunas lut build ...)")
        if e.get("status") == "failed" or e.get("latency_ms") is None:
            raise ValueError(f"LUT{self._where()}: op {key!r} failed to cost: {e.get('error', 'no value')}")
        return float(e["latency_ms"])

    def missing(self, space) -> list:
        """Keys of the ops a search space needs that this table lacks or could not cost."""
        out = []
        for op in unique_ops(space_ops(space)):
            e = self.entries.get(op.key)
            if e is None:
                if not _is_zero_cost(op.key):
                    out.append(op.key)
            elif e.get("status") == "failed" or e.get("latency_ms") is None:
                out.append(op.key)
        return out

    def _check_covers(self, space):
        miss = self.missing(space)
        if miss:
            shown = ", ".join(miss[:_MAX_NAMED_KEYS]) + (f", ... ({len(miss)} in all)" if len(miss) > _MAX_NAMED_KEYS else "")
            failed = [k for k in miss if k in self.entries]
            why = (f"{len(failed)} failed to cost ({self.entries[failed[0]].get('error', '')})" if failed else "")
            raise ValueError(f"LUT{self._where()} lacks {len(miss)} op(s) that search space "
                             f"{getattr(space, 'name', '')!r} needs: {shown}"
                             + (f"; {why}" if why else "") + ". Rebuild it: vpunas lut build --space ...")

    def matrix(self, space) -> tuple:
        """(F float64 [N, M] ms, mask bool [N, M]) over space.blocks[i].candidates; padding is 0 / False."""
        self._check_covers(space)
        blocks = space.blocks
        if not blocks:
            raise ValueError(f"search space {getattr(space, 'name', '')!r} has no searchable blocks")
        m = max(len(b.candidates) for b in blocks)
        F = np.zeros((len(blocks), m), dtype=np.float64)
        mask = np.zeros((len(blocks), m), dtype=bool)
        for i, b in enumerate(blocks):
            for j, op in enumerate(b.candidates):
                F[i, j] = self.latency_ms(op)
                mask[i, j] = True
        return F, mask

    def fixed_latency_ms(self, space) -> float:
        """Summed latency of the non-searchable ops (stem, head, classifier)."""
        self._check_covers(space)
        return float(sum(self.latency_ms(op) for op in space.fixed_ops))

    def arch_latency_ms(self, space, choices) -> float:
        """Total latency of one architecture: fixed ops + the chosen candidate of every block."""
        F, mask = self.matrix(space)
        from vpunas.latency import discrete_latency

        return float(discrete_latency(np.asarray([choices], dtype=np.int64), F, mask)[0]) + self.fixed_latency_ms(space)

    def to_rows(self, space=None) -> list:
        """Rows for printing: with a space (block, candidate, key, ms), else (key, ms) per entry."""
        def ms_text(key):
            e = self.entries.get(key)
            if e is None:
                return "0" if _is_zero_cost(key) else "missing"
            if e.get("status") == "failed" or e.get("latency_ms") is None:
                return "failed"
            return f"{e['latency_ms']:.4f}"

        if space is None:
            return [{"key": k, "ms": ms_text(k), "status": e.get("status", "ok"), "error": e.get("error", "")}
                    for k, e in sorted(self.entries.items())]
        rows = []
        names = None
        for i, b in enumerate(space.blocks):
            names = getattr(b, "choice_names", None)
            for j, op in enumerate(b.candidates):
                rows.append({"block": getattr(b, "name", f"block{i}"),
                             "candidate": names[j] if names and j < len(names) else _short_name(op),
                             "key": op.key, "ms": ms_text(op.key)})
        for op in space.fixed_ops:
            rows.append({"block": "fixed", "candidate": op.key.split("_")[0], "key": op.key, "ms": ms_text(op.key)})
        return rows

    def _where(self) -> str:
        return f" {self.path}" if self.path else ""

    # -- files ---------------------------------------------------------------------------------------------
    def to_json(self) -> dict:
        d = {"format": LUT_FORMAT, "version": LUT_VERSION, "device": self.device, "unit": "ms",
             "dtype": self.dtype, "source": self.source}
        if self.space:
            d["space"] = self.space
        d["entries"] = list(self.entries.values())
        return d

    def save(self, path) -> Path:
        """Write the table as JSON (atomically: a temp file renamed over the target)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        with open(tmp, "w") as f:
            json.dump(self.to_json(), f, indent=1, allow_nan=False)
        os.replace(tmp, path)
        self.path = path
        return path

    @classmethod
    def load(cls, path) -> "LatencyTable":
        """Read a LUT JSON file; a corrupt, partial or foreign file raises ValueError naming it and the problem."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"LUT file {path} does not exist (build one with `vpunas lut build ... -o {path}`)")
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"LUT file {path} is not valid JSON ({exc}); it may be truncated or not a LUT") from None
        return cls.from_json(data, path)

    @classmethod
    def from_json(cls, data, path=None) -> "LatencyTable":
        where = f"LUT file {path}" if path else "LUT data"
        if not isinstance(data, dict) or data.get("format") != LUT_FORMAT:
            raise ValueError(f"{where} is not a vpunas LUT (expected \"format\": \"{LUT_FORMAT}\")")
        if data.get("version") != LUT_VERSION:
            raise ValueError(f"{where} has version {data.get('version')!r}; this vpunas reads version {LUT_VERSION}")
        if data.get("unit", "ms") != "ms":
            raise ValueError(f"{where} has unit {data.get('unit')!r}; only 'ms' is supported")
        for name, kind in (("source", dict), ("entries", list)):
            if not isinstance(data.get(name), kind):
                raise ValueError(f"{where} lacks a valid {name!r} ({kind.__name__})")
        seen = set()
        for i, e in enumerate(data["entries"]):
            if not isinstance(e, dict) or not isinstance(e.get("key"), str):
                raise ValueError(f"{where}: entry {i} is malformed (needs a 'key' string)")
            if e["key"] in seen:
                raise ValueError(f"{where}: entry {i} repeats key {e['key']!r}")
            seen.add(e["key"])
            if e.get("status") == "failed":
                continue
            lat = e.get("latency_ms")
            if isinstance(lat, bool) or not isinstance(lat, (int, float)) or not math.isfinite(lat) or lat < 0:
                raise ValueError(f"{where}: entry {e['key']!r} has invalid latency_ms {lat!r} "
                                 "(a finite number >= 0, or \"status\": \"failed\")")
        device = data.get("device") or data["source"].get("device")
        return cls(data["entries"], device=device, source=data["source"],
                   dtype=data.get("dtype") or data["source"].get("dtype"), space=data.get("space"),
                   path=Path(path) if path else None)

    def __repr__(self) -> str:
        kind = self.source.get("kind", "?")
        return f"LatencyTable({len(self.entries)} entries, device={self.device}, source={kind}, failed={len(self.failed())})"


def _short_name(op) -> str:
    """A readable candidate label: the op's block string when it has one (e.g. EDSR blocks), else its key."""
    block_string = getattr(op, "block_string", None)
    if callable(block_string):
        try:
            return str(block_string())
        except Exception:  # a label only; never fail a printout over it
            pass
    return op.key


def _progress(enabled: bool, total: int, desc: str):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="op", leave=False)
