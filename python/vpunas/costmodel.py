"""DPU cost models: VPUNN's neural network (``VPUNN``) and its analytic estimate (``TheoreticalCostModel``).

Workloads travel as numpy structured arrays of ``WORKLOAD_DTYPE`` (a zero-copy mirror of the C++
``WorkloadRecord``); enum fields hold indices into ``ENUM_NAMES`` whose text is VPUNN's own spelling,
the same as in VPUNN's golden CSV files. ``Workload`` is a small dataclass for one-off queries.

    m = VPUNN("vpu_2_7.vpunn")
    cycles = m.predict(read_workloads_csv("workloads.csv"))     # uint32, VPUNN error codes included
    ms = m.latency_ms(cycles)
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from vpunas import _core

WORKLOAD_DTYPE: np.dtype = _core.WORKLOAD_DTYPE
ENUM_NAMES: dict[str, list[str]] = {k: list(v) for k, v in _core.WORKLOAD_ENUM_NAMES.items()}

# Which enum table each enum-valued field uses.
ENUM_FIELDS = {
    "device": "device", "op": "op", "in_dtype": "dtype", "out_dtype": "dtype", "weight_dtype": "dtype",
    "in_layout": "layout", "out_layout": "layout", "exec_mode": "exec_mode", "activation": "activation",
    "in_swz0": "swizzling", "in_swz1": "swizzling", "out_swz0": "swizzling", "isi": "isi",
}
# Optional fields: -1 (empty CSV cell) means "not set", as in VPUNN.
OPTIONAL_FIELDS = ("weight_dtype", "weightless_op", "inplace_output", "superdense", "in_autopad", "out_autopad")
UNSET = -1

# Nominal DPU clock per device (MHz): cycles -> time.
DEVICES = {"VPU_2_0": 700.0, "VPU_2_1": 850.0, "VPU_2_7": 1300.0, "VPU_4_0": 1700.0}

# VPUNN error codes: returned in the cycle value itself, counting down from 2**32 - 1.
ERROR_CODES = {
    "ERROR_INPUT_TOO_BIG": 4294967295,
    "ERROR_INVALID_INPUT_CONFIGURATION": 4294967294,
    "ERROR_INVALID_INPUT_DEVICE": 4294967293,
    "ERROR_INVALID_INPUT_OPERATION": 4294967292,
    "ERROR_INVALID_OUTPUT_RANGE": 4294967291,
    "ERROR_TILE_OUTPUT": 4294967290,
    "ERROR_INVALID_LAYER_CONFIGURATION": 4294967287,
    "ERROR_INVALID_CONVERSION_TO_CYCLES": 4294967285,
    # ours: VPUNN's single call throws for this workload (a value the model's interface cannot encode)
    "ERROR_ENCODING_EXCEPTION": 4294967295 - 999,
}
FIRST_ERROR = 4294967295 - 1000  # values above are errors, never cycles


def is_error(cycles) -> np.ndarray | bool:
    """True where a cycle value is a VPUNN error code."""
    return np.asarray(cycles, dtype=np.uint64) > FIRST_ERROR


def error_name(value: int) -> str:
    """VPUNN name of an error code ('' for a normal cycle count, 'UNKNOWN' for an unnamed error value)."""
    return _core.workload_error_name(int(value))


def _enum_index(table: str, text: str, where: str) -> int:
    names = ENUM_NAMES[table]
    try:
        return names.index(text)
    except ValueError:
        raise ValueError(f"{where}: unknown value {text!r}; valid names: {', '.join(names)}") from None


def device_index(name: str) -> int:
    """Index of a device name; the error lists the valid names."""
    return _enum_index("device", name, "device")


def _check_device(name: str) -> None:
    """A device the cost models have a clock for (DEVICES); the error lists them."""
    if name not in DEVICES:
        raise ValueError(f"unknown device {name!r}; valid devices: {', '.join(DEVICES)}")


@dataclass
class Workload:
    """One DPU workload with VPUNN's field names and defaults; enum fields take VPUNN's text names."""

    device: str = "VPU_2_7"
    op: str = "CONVOLUTION"
    in_w: int = 1
    in_h: int = 1
    in_c: int = 16
    in_b: int = 1
    in_dtype: str = "UINT8"
    in_layout: str = "ZXY"
    in_sparse: int = 0
    out_w: int = 1
    out_h: int = 1
    out_c: int = 16
    out_b: int = 1
    out_dtype: str = "UINT8"
    out_layout: str = "ZXY"
    out_sparse: int = 0
    k_w: int = 1
    k_h: int = 1
    s_w: int = 1
    s_h: int = 1
    pad_t: int = 0
    pad_b: int = 0
    pad_l: int = 0
    pad_r: int = 0
    exec_mode: str = "CUBOID_16x16"
    activation: str = "NONE"
    act_sparsity: float = 0.0
    weight_sparsity: float = 0.0
    weight_sparsity_enabled: int = 0
    in_swz0: str = "KEY_5"
    in_swz1: str = "KEY_5"
    out_swz0: str = "KEY_5"
    owt: int = 1
    isi: str = "Clustering"
    weight_dtype: str | None = None
    weightless_op: int | None = None
    inplace_output: int | None = None
    superdense: int | None = None
    in_autopad: int | None = None
    out_autopad: int | None = None

    def to_record(self) -> np.ndarray:
        return workloads_array([self])


def workloads_array(items: Iterable[Workload] | int) -> np.ndarray:
    """A WORKLOAD_DTYPE array from Workload objects, or n default-valued rows for an int."""
    if isinstance(items, (int, np.integer)):
        arr = np.zeros(int(items), dtype=WORKLOAD_DTYPE)
        _fill_defaults(arr)
        return arr
    items = list(items)
    arr = np.zeros(len(items), dtype=WORKLOAD_DTYPE)
    for i, wl in enumerate(items):
        for f in fields(Workload):
            v = getattr(wl, f.name)
            if v is None:
                arr[f.name][i] = UNSET
            elif f.name in ENUM_FIELDS:
                arr[f.name][i] = _enum_index(ENUM_FIELDS[f.name], v, f"Workload.{f.name}")
            else:
                arr[f.name][i] = v
    return arr


def _fill_defaults(arr: np.ndarray) -> None:
    default = workloads_array([Workload()])[0]
    arr[:] = default


def to_workloads(arr: np.ndarray) -> list[Workload]:
    """Workload objects from a WORKLOAD_DTYPE array (for printing / inspection)."""
    out = []
    for row in arr:
        kw = {}
        for f in fields(Workload):
            v = row[f.name].item()
            if f.name in OPTIONAL_FIELDS and v == UNSET:
                v = None
            elif f.name in ENUM_FIELDS:
                v = ENUM_NAMES[ENUM_FIELDS[f.name]][v]
            kw[f.name] = v
        out.append(Workload(**kw))
    return out


WORKLOAD_COLUMNS = [f.name for f in fields(Workload)]


def read_workloads_csv(path: str | os.PathLike, *, return_header: bool = False):
    """Workloads from a CSV with VPUNN's golden column names (extra columns are ignored).

    Missing optional columns / empty optional cells mean "not set". Unknown enum text raises ValueError
    naming the row, the column and the valid names.
    """
    path = Path(path)
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            raise ValueError(f"{path}: empty file, expected a header line with {', '.join(WORKLOAD_COLUMNS)}") from None
        rows = list(reader)
    col = {name: i for i, name in enumerate(header)}
    required = [c for c in WORKLOAD_COLUMNS if c not in OPTIONAL_FIELDS]
    missing = [c for c in required if c not in col]
    if missing:
        raise ValueError(f"{path}: missing columns {', '.join(missing)} (see vpunas.costmodel.WORKLOAD_COLUMNS)")
    arr = np.zeros(len(rows), dtype=WORKLOAD_DTYPE)
    defaults = workloads_array([Workload()])[0]
    lookups = {t: {n: k for k, n in enumerate(names)} for t, names in ENUM_NAMES.items()}
    width = len(header)
    short = [r for r, row in enumerate(rows) if len(row) < width]
    if short:
        r = short[0]
        raise ValueError(f"{path}: row {r + 1} (line {r + 2}) has {len(rows[r])} fields, the header has {width}")
    for name in WORKLOAD_COLUMNS:
        if name not in col:
            arr[name] = UNSET if name in OPTIONAL_FIELDS else defaults[name]
            continue
        j = col[name]
        seen: dict[str, int] = {}  # distinct texts of the column -> code (a handful per column)
        inverse = np.fromiter((seen.setdefault(row[j].strip(), len(seen)) for row in rows), dtype=np.int64,
                              count=len(rows))
        uniq = list(seen)
        table = ENUM_FIELDS.get(name)
        is_float = WORKLOAD_DTYPE[name].kind == "f"
        mapped = np.empty(len(uniq), dtype=np.float64 if is_float else np.int64)
        for u, text in enumerate(uniq):
            if text == "" and name in OPTIONAL_FIELDS:
                mapped[u] = UNSET
                continue
            def where() -> str:  # first row holding this text, only computed for an error message
                r = int(np.flatnonzero(inverse == u)[0])
                return f"{path}: row {r + 1} (line {r + 2}), column {name!r}"

            if table:
                k = lookups[table].get(text)
                mapped[u] = k if k is not None else _enum_index(table, text, where())  # raises, lists names
            else:
                try:
                    mapped[u] = float(text) if is_float else int(text)
                except ValueError:
                    raise ValueError(f"{where()}: expected a number, got {text!r}") from None
        arr[name] = mapped[inverse]
    if return_header:
        return arr, header, rows
    return arr


def write_workloads_csv(path: str | os.PathLike, workloads: np.ndarray, cycles: Sequence[int] | None = None) -> None:
    """Writes workloads with VPUNN's column names (+ `cycles`, `cycles_error` when given)."""
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        head = ["id"] + WORKLOAD_COLUMNS + (["cycles", "cycles_error"] if cycles is not None else [])
        w.writerow(head)
        for i, wl in enumerate(to_workloads(workloads)):
            row = [i]
            for name in WORKLOAD_COLUMNS:
                v = getattr(wl, name)
                row.append("" if v is None else (f"{v:.9g}" if isinstance(v, float) else v))
            if cycles is not None:
                c = int(cycles[i])
                row += [c, error_name(c)]
            w.writerow(row)


def _as_records(workloads) -> np.ndarray:
    if isinstance(workloads, Workload):
        return workloads.to_record()
    if isinstance(workloads, np.ndarray):
        return workloads
    return workloads_array(workloads)


def find_model(name: str | os.PathLike) -> Path:
    """Resolves a model file name: as given, else in $VPUNAS_MODEL_DIR. Clear error when missing."""
    p = Path(name)
    if p.is_file():
        return p
    env = os.environ.get("VPUNAS_MODEL_DIR")
    if env and (Path(env) / p.name).is_file():
        return Path(env) / p.name
    raise FileNotFoundError(
        f"VPUNN model file {str(name)!r} not found"
        + (f" (also looked in $VPUNAS_MODEL_DIR={env})" if env else " ($VPUNAS_MODEL_DIR is not set)")
        + ". Get the .vpunn files from the intel/npu-nn-cost-model repository, folder models/, and pass"
        " their path or set VPUNAS_MODEL_DIR to the folder holding them."
    )


class _CostModelBase:
    device: str

    def latency_ms(self, cycles_or_workloads, threads: int = 0) -> np.ndarray:
        """Milliseconds at the device's DPU clock (NaN where VPUNN returned an error code).

        Takes cycle values, or workloads (Workload, list of Workload, WORKLOAD_DTYPE array) to predict first.
        """
        cycles = cycles_or_workloads
        if isinstance(cycles, Workload) or (isinstance(cycles, np.ndarray) and cycles.dtype == WORKLOAD_DTYPE) or (
                isinstance(cycles, (list, tuple)) and cycles and isinstance(cycles[0], Workload)):
            cycles = self.predict(cycles, threads=threads)
        c = np.asarray(cycles, dtype=np.float64)
        out = c / (DEVICES[self.device] * 1e3)
        return np.where(is_error(cycles), np.nan, out)

    def predict_ms(self, workloads, threads: int = 0) -> np.ndarray:
        """Latency in ms per workload (NaN where refused)."""
        return self.latency_ms(self.predict(workloads, threads=threads))


class VPUNN(_CostModelBase):
    """VPUNN's DPU cost model on a .vpunn file (bit-compatible with Intel's library, single-call semantics)."""

    def __init__(self, model: str | os.PathLike, device: str | None = None):
        self.path = find_model(model)
        self._m = _core.DpuCostModel(str(self.path))
        self.device = device if device is not None else ENUM_NAMES["device"][self._m.device]
        _check_device(self.device)
        self.nn_name = self._m.nn_name
        self.interface_in = self._m.interface_in
        self.interface_out = self._m.interface_out
        self.descriptor_size = self._m.descriptor_size

    def predict(self, workloads, threads: int = 0) -> np.ndarray:
        """uint32 cycles per workload (VPUNN error codes where refused; see error_name)."""
        return self._m.predict(_as_records(workloads), threads)

    def predict_detail(self, workloads, threads: int = 0) -> dict:
        """cycles plus theoretical_cycles, nn_raw and value_source (see VALUE_SOURCES) per workload."""
        return self._m.predict_detail(_as_records(workloads), threads)

    def descriptors(self, workloads) -> tuple[np.ndarray, np.ndarray]:
        """(float32 [n, descriptor_size] NN inputs of the adapted workloads, uint8 ok flags)."""
        return self._m.descriptors(_as_records(workloads))

    def __repr__(self) -> str:
        return f"VPUNN({str(self.path)!r}, nn={self.nn_name!r}, device={self.device})"


VALUE_SOURCES = ["nn", "nn_linear_extrapolation", "nn_dual_sparsity_min", "theoretical_fallback",
                 "sanitizer_rejected", "exception"]


class TheoreticalCostModel(_CostModelBase):
    """VPUNN's analytic DPU estimate (no NN file needed). An ESTIMATE: MAC counts, padding skips and CMX
    read bandwidth only; use VPUNN(...) for the trained cost model."""

    def __init__(self, device: str = "VPU_2_7"):
        _check_device(device)
        self.device = device
        self._m = _core.TheoreticalDpuModel(device_index(device))

    def predict(self, workloads, threads: int = 0) -> np.ndarray:
        return self._m.predict(_as_records(workloads), threads)

    def __repr__(self) -> str:
        return f"TheoreticalCostModel(device={self.device}, estimate)"


def theoretical_cycles(workloads) -> np.ndarray:
    """VPUNN's analytic cycles (uint64, like DPUInfo) of the adapted workloads, errors not applied."""
    return _core.theoretical_dpu_cycles(_as_records(workloads))


def run_predict(workloads_csv: Path, *, model: str | None = None, device: str | None = None,
                output: Path | None = None, threads: int = 0) -> str:
    """CSV in, CSV out (workload columns + cycles, cycles_error, latency_ms); returns a summary table."""
    import io
    import sys
    import time

    wl = read_workloads_csv(workloads_csv)
    cost = VPUNN(model, device=device) if model else TheoreticalCostModel(device or "VPU_2_7")
    t0 = time.perf_counter()
    cycles = cost.predict(wl, threads=threads)
    dt = time.perf_counter() - t0
    ms = cost.latency_ms(cycles)
    fh = open(output, "w", newline="") if output else io.StringIO()
    try:
        w = csv.writer(fh)
        w.writerow(["id"] + WORKLOAD_COLUMNS + ["cycles", "cycles_error", "latency_ms"])
        for i, item in enumerate(to_workloads(wl)):
            row = [i] + ["" if getattr(item, c) is None else
                         (f"{getattr(item, c):.9g}" if isinstance(getattr(item, c), float) else getattr(item, c))
                         for c in WORKLOAD_COLUMNS]
            c = int(cycles[i])
            row += [c, error_name(c), "" if np.isnan(ms[i]) else f"{ms[i]:.9g}"]
            w.writerow(row)
        if not output:
            sys.stdout.write(fh.getvalue())
    finally:
        fh.close()
    err = is_error(cycles)
    names, counts = np.unique([error_name(int(c)) for c in cycles[err]], return_counts=True)
    lines = [f"| model | device | workloads | ok | refused | total latency (ms) | time (s) |",
             "|---|---|---|---|---|---|---|",
             f"| {getattr(cost, 'nn_name', 'analytic estimate')} | {cost.device} | {len(wl)} | {int((~err).sum())} "
             f"| {int(err.sum())} | {np.nansum(ms):.6g} | {dt:.3f} |"]
    lines += [f"  {n}: {k}" for n, k in zip(names, counts)]
    return "\n".join(lines)
