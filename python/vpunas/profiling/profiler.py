"""Resumable measurement of a latency table: every distinct op timed on a runtime by operator stacking.

The output file doubles as the checkpoint: after every entry the partial table is written atomically
(temp file + rename), with `source.complete = false` until the last op is done. Rerunning with the same
output file and settings keeps the entries already measured and continues with the rest.
"""
from __future__ import annotations

import json
import math
import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from ..lut import unique_ops
from . import onnx_ops, stacking
from .runners import CompileError

ESTIMATORS = ("median", "min")
FILLER_NOTE = ("dwconv k3 s1 act-none, N/2 on the op's input and N/2 on its output (all N on the output for the op "
               "reading the network input, all on the input for the op writing the network output or a non-NCHW one)")
LUT_FORMAT = "vpunas-lut"
LUT_VERSION = 1
# Source fields that must match for a rerun to resume an existing partial table.
_RESUME_FIELDS = ("runtime", "device", "precision_requested", "threads_requested", "clock", "stack", "warmup",
                  "repeats", "rounds", "overhead_subtracted", "boundary_subtracted", "seed", "estimator", "filler",
                  "network_input", "network_output", "cold_weights")

# Cold weights: a network reads each of its weights once per inference, 12-18 MB at 224 px, more than
# this host's caches keep between inferences, while a stack of a small op re-reads the same few MB from
# cache. Measured on dedicated Linear (GEMV: pure weight streaming) stacks: per-MB slope with 4-8 MB of
# distinct weights (cached, ~28 us/MB here) vs 32-64 MB (from memory, ~53 us/MB). The difference per MB
# of the op's own weights is added to its entry, scaled down when its graph already held more weights
# than the warm probe (linearly to 0 at the cold probe's size: the 7x7x192 e6 stacks, 14.5 MB).
WEIGHT_PROBE_WARM = (512, (4, 8))    # Linear f x f stacked 4 and 8 times: 4 and 8 MB of weights
WEIGHT_PROBE_COLD = (1024, (8, 16))  # 32 and 64 MB


def weights_mb(model) -> float:
    """MB of float32 initializers (weights) in an ONNX graph."""
    return sum(4 * int(np.prod(t.dims)) for t in model.graph.initializer) / 2 ** 20


def _probe_mb(probe, n) -> float:
    f, _ = probe
    return 4 * (f * f + f) * n / 2 ** 20


def streams_weights(network_mb: float) -> bool:
    """Whether networks of `network_mb` MB of weights read them from memory on every inference. A net reads
    its weights cyclically, once per inference: under an LRU cache they all miss once they exceed it and
    all hit below it. The cache size taken is the largest weight set the warm probe measured as cached."""
    return network_mb > _probe_mb(WEIGHT_PROBE_WARM, WEIGHT_PROBE_WARM[1][-1])


def cold_weight_ms(op_mb: float, graph_mb: float, extra_ms_per_mb: float, warm_mb: float, cold_mb: float) -> float:
    """Extra cost of streaming an op's weights from memory in a network, given how much of it its
    measured graph (graph_mb of weights) already paid: all below warm_mb, none above cold_mb."""
    if not cold_mb > warm_mb:
        raise ValueError(f"need cold_mb > warm_mb, got {cold_mb} and {warm_mb}")
    cold_share = min(max((graph_mb - warm_mb) / (cold_mb - warm_mb), 0.0), 1.0)
    return max(extra_ms_per_mb, 0.0) * op_mb * (1.0 - cold_share)


@dataclass(frozen=True)
class ProfileSettings:
    """How graphs are timed: in `rounds` interleaved rounds (runners.time_interleaved), each visit of a
    graph one untimed call and `repeats` timed ones; `warmup` untimed calls per graph before round 1.
    Profiling times `batch` ops per interleaved session (plus the overhead, boundary and filler graphs
    they need) and checkpoints after each session. Keep the whole table in one session where memory
    allows (the default covers a 76-op MobileNetV2 space): on a shared host the load also drifts on a
    scale of tens of seconds, and ops timed in different sessions were seen 30-40 % apart.

    `max_spread` is the relative inter-quartile range (IQR / median) of a graph's timed calls above
    which it is re-timed (up to `retries` more sets of rounds) and then flagged.

    estimator: "median" of the timed calls of the steadiest attempt, or "min" over all calls of all
    attempts. Interference from other processes only ever slows a call down, so on a shared, loaded
    host the minimum is the more reproducible estimate of an op's own cost (timeit's reasoning);
    tables and their validation must use the same estimator."""

    stack: int = 8
    warmup: int = 5
    repeats: int = 3
    rounds: int = 10
    batch: int = 128
    max_spread: float = 0.05
    retries: int = 2
    subtract_overhead: bool = True
    subtract_boundary: bool = True  # layout conversion at the graph boundary (needs stack >= 2)
    seed: int = 0
    estimator: str = "median"
    # Add each op's weight streaming cost (see WEIGHT_PROBE_*): right for networks whose weights exceed
    # the cache (224 px MobileNetV2, 14 MB: stacked 5.4-6.7 % -> 4.1-4.6 % MAPE), wrong for small ones
    # (32 px, 1.5 MB stay cached: 1.7 % -> 8.6 %). `streams_weights` decides it per space (CLI: auto).
    cold_weights: bool = False

    def __post_init__(self):
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"unknown estimator {self.estimator!r}; use one of {', '.join(ESTIMATORS)}")
        if self.stack < 1:
            raise ValueError(f"stack size must be >= 1, got {self.stack}")
        if self.repeats < 1 or self.rounds < 1 or self.rounds * self.repeats < 3:
            raise ValueError(f"need repeats >= 1, rounds >= 1 and rounds * repeats >= 3 timed calls for a median "
                             f"and spread, got repeats={self.repeats}, rounds={self.rounds}")
        if self.batch < 1:
            raise ValueError(f"batch must be >= 1, got {self.batch}")
        if self.warmup < 0 or self.retries < 0:
            raise ValueError("warmup and retries must be >= 0")
        if not self.max_spread > 0:
            raise ValueError(f"max_spread must be > 0, got {self.max_spread}")


@dataclass(frozen=True)
class GraphTiming:
    value_ms: float    # the settings' estimator (median, or minimum)
    std_ms: float      # robust: IQR / 1.349
    spread: float      # IQR / median
    n: int
    attempts: int
    noisy: bool
    round_ms: tuple = ()  # the estimator over each round's calls (kept attempt), in round order


def summarize(times_ms: np.ndarray) -> tuple[float, float, float]:
    """(median, robust std, relative spread) of per-call times."""
    t = np.asarray(times_ms, dtype=np.float64)
    med = float(np.median(t))
    q1, q3 = np.percentile(t, [25, 75])
    iqr = float(q3 - q1)
    return med, iqr / 1.349, (iqr / med if med > 0 else math.inf)


def estimate(times_ms: np.ndarray, estimator: str, axis=None):
    """The settings' estimator ("min" or "median") over timed calls."""
    return np.min(times_ms, axis=axis) if estimator == "min" else np.median(times_ms, axis=axis)


def _time_prepared(runner, calls: dict, settings: ProfileSettings, warmup: int) -> tuple[dict, dict]:
    """Time prepared calls (id -> call) interleaved: (id -> ms array [rounds, repeats], id -> CompileError).
    A graph that fails at inference is found by running each alone once, and the rest re-timed."""
    calls, failed = dict(calls), {}
    while calls:
        ids = list(calls)
        try:
            times = runner.time_interleaved([calls[i] for i in ids], settings.rounds, settings.repeats, warmup)
            return dict(zip(ids, times)), failed
        except CompileError:
            for i in ids:
                try:
                    runner.time_interleaved([calls[i]], 1, 1, 0)
                except CompileError as exc:
                    failed[i] = exc
                    del calls[i]
            if not failed:
                raise
    return {}, failed


def time_graphs(runner, models: Sequence, settings: ProfileSettings, inputs: Optional[Sequence] = None) -> list:
    """Time several graphs in one interleaved session: a GraphTiming per model, or the CompileError of a
    graph that failed to compile or run. Graphs whose spread exceeds `max_spread` are re-timed (up to
    `retries` more sets of rounds, interleaved among themselves); the steadiest attempt is kept."""
    results: list = [None] * len(models)
    calls = {}
    for i, model in enumerate(models):
        try:
            feeds = inputs[i] if inputs is not None else onnx_ops.random_inputs(model, settings.seed)
            calls[i] = runner.prepare(model.SerializeToString(), feeds)
        except CompileError as exc:
            results[i] = exc
    best, fastest, attempts = {}, {}, {}
    pending = dict(calls)
    for attempt in range(1, settings.retries + 2):
        if not pending:
            break
        times, failed = _time_prepared(runner, pending, settings, settings.warmup if attempt == 1 else 0)
        for i, exc in failed.items():
            results[i] = exc
        for i, t in times.items():
            attempts[i] = attempt
            fastest[i] = min(fastest.get(i, math.inf), float(np.min(t)))
            med, std, spread = summarize(t)
            if i not in best or spread < best[i][2]:
                best[i] = (med, std, spread, tuple(float(v) for v in estimate(t, settings.estimator, axis=1)))
        pending = {i: calls[i] for i in times if best[i][2] > settings.max_spread}
    for i, (med, std, spread, rounds) in best.items():
        if results[i] is not None:
            continue
        value = fastest[i] if settings.estimator == "min" else med
        results[i] = GraphTiming(value, std, spread, settings.rounds * settings.repeats * attempts[i], attempts[i],
                                 spread > settings.max_spread, rounds)
    return results


def time_graph(runner, model, settings: ProfileSettings, inputs: Optional[dict] = None) -> GraphTiming:
    """One graph alone (time_graphs of one model); raises its CompileError."""
    (t,) = time_graphs(runner, [model], settings, None if inputs is None else [inputs])
    if isinstance(t, CompileError):
        raise t
    return t


def _shape_key(shape) -> str:
    return "x".join(map(str, shape))


def _shapes_key(shapes: dict) -> str:
    return ";".join(f"{k}:{'x'.join(map(str, v))}" for k, v in sorted(shapes.items()))


class LutFileError(ValueError):
    """A LUT file that cannot be used (corrupt, partial where a full one is needed, or mismatched)."""


def read_lut_json(path) -> dict:
    """Load and check a vpunas LUT JSON file; errors name the file and the problem."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"LUT file {path} does not exist")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LutFileError(f"LUT file {path} is not valid JSON ({exc}); it may be truncated: "
                           "re-run `vpunas profile` with the same -o to resume it") from exc
    if not isinstance(data, dict) or data.get("format") != LUT_FORMAT:
        raise LutFileError(f"LUT file {path} is not a vpunas LUT (missing \"format\": \"{LUT_FORMAT}\")")
    if data.get("version") != LUT_VERSION:
        raise LutFileError(f"LUT file {path} has version {data.get('version')!r}; "
                           f"this vpunas reads version {LUT_VERSION}")
    if not isinstance(data.get("entries"), list) or not isinstance(data.get("source"), dict):
        raise LutFileError(f"LUT file {path} lacks an 'entries' list or a 'source' object")
    for i, e in enumerate(data["entries"]):
        if not isinstance(e, dict) or not isinstance(e.get("key"), str) or "latency_ms" not in e:
            raise LutFileError(f"LUT file {path}: entry {i} is malformed (needs 'key' and 'latency_ms')")
        lat = e["latency_ms"]
        if e.get("status") != "failed" and (not isinstance(lat, (int, float)) or not math.isfinite(lat) or lat < 0):
            raise LutFileError(f"LUT file {path}: entry {e['key']!r} has invalid latency_ms {lat!r}")
    return data


def write_json_atomic(path, data: dict) -> None:
    """Write JSON via a temp file in the same folder and rename, so an interrupt never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class Profiler:
    """Measures ops on one runner and keeps the table in `out_path` (resumable)."""

    def __init__(self, runner, settings: ProfileSettings = ProfileSettings(), out_path=None,
                 extra_source: Optional[dict] = None, progress: bool = True, overwrite: bool = False,
                 space_meta: Optional[dict] = None, network_io: Optional[tuple] = None):
        self.runner = runner
        # (input shape, output shape) of the networks the table is for: the op reading the network input
        # and the op writing its output are measured with their real network conversions (stacking.py)
        self.network_io = tuple(tuple(s) for s in network_io) if network_io else (None, None)
        self.space_meta = space_meta
        self.settings = settings
        self.out_path = Path(out_path) if out_path else None
        self.progress = progress
        self.entries: dict[str, dict] = {}
        self.overheads: dict[str, float] = {}
        self.boundaries: dict[str, float] = {}
        self.failures: dict[tuple, CompileError] = {}  # overhead / boundary graphs that failed
        self.weight_stream: Optional[dict] = None  # the cold-weights probe's result (source.weight_stream)
        info = runner.info()
        self.source = {
            "kind": "measured",
            "runtime": info["runtime"],
            "device": info["device"],
            "precision": info["precision"],
            "precision_requested": getattr(runner, "requested_precision", info["precision"]),
            "threads": info["threads"],
            "threads_requested": getattr(runner, "threads", None),
            "clock": info.get("clock", "wall"),
            "stack": settings.stack,
            "warmup": settings.warmup,
            "repeats": settings.repeats,
            "rounds": settings.rounds,
            "batch": settings.batch,
            "timing": "interleaved rounds",
            "max_spread": settings.max_spread,
            "retries": settings.retries,
            "overhead_subtracted": settings.subtract_overhead,
            "boundary_subtracted": self._boundary_on(settings),
            "seed": settings.seed,
            "estimator": settings.estimator,
            "filler": FILLER_NOTE,
            "network_input": _shape_key(self.network_io[0]) if self.network_io[0] else None,
            "network_output": _shape_key(self.network_io[1]) if self.network_io[1] else None,
            "cold_weights": settings.cold_weights,
            "host": platform.processor() or platform.machine(),
            **(extra_source or {}),
        }
        if self.out_path and self.out_path.exists() and not overwrite:
            self._resume(self.out_path)

    # -- resume ------------------------------------------------------------------------------
    def _resume(self, path: Path) -> None:
        data = read_lut_json(path)
        old = data["source"]
        if old.get("kind") != "measured":
            raise LutFileError(f"{path} is a {old.get('kind')!r} LUT, not a measured one; choose another -o")
        diff = [f"{k}: file has {old.get(k)!r}, now {self.source.get(k)!r}" for k in _RESUME_FIELDS
                if old.get(k) != self.source.get(k)]
        if diff:
            raise LutFileError(f"cannot resume {path}: it was measured with other settings ({'; '.join(diff)}); "
                               "use another -o or --overwrite")
        self.entries = {e["key"]: e for e in data["entries"] if e.get("status") != "failed"}
        self.overheads = dict(old.get("call_overhead_ms", {}))
        self.boundaries = dict(old.get("boundary_ms", {}))
        self.weight_stream = old.get("weight_stream")

    # -- measuring -----------------------------------------------------------------------------
    @staticmethod
    def _boundary_on(settings: ProfileSettings) -> bool:
        return settings.subtract_boundary and settings.subtract_overhead and settings.stack >= 2

    def _boundary_stacks(self) -> tuple[int, int]:
        """The two filler stack sizes whose slope and intercept give a shape's boundary cost."""
        return self.settings.stack, max(1, self.settings.stack // 2)

    def measure_session(self, ops: Sequence = (), boundary_shapes: Sequence = (), models: Sequence = ()) -> dict:
        """Measure, in one interleaved session, the entries of `ops` not yet in the table together with
        everything they need that is not known yet: call overheads (identity graph per input shapes),
        boundary costs io(s) and the fillers. `boundary_shapes` and the input shapes of `models` add
        boundary costs and overheads to measure (used by validation). Returns {op key: entry}.

        io(s) comes from the filler at s stacked N and N/2 times (slope = the filler's own cost, stored
        as its entry; intercept - overhead = io(s)); a graph reading s_in and writing s_out pays
        (io(s_in) + io(s_out)) / 2."""
        st = self.settings
        boundary_on = self._boundary_on(st)
        plans, done = {}, {}
        for op in ops:
            if op.key in self.entries or op.key in plans or op.key in done:
                continue
            if stacking.is_zero_cost(op):
                done[op.key] = {"key": op.key, "op": op.to_dict(), "latency_ms": 0.0, "std_ms": 0.0, "n": 0,
                                "status": "ok", "method": "zero"}
            else:
                plans[op.key] = self.plan_for(op)
        shapes = [tuple(s) for s in boundary_shapes]
        if boundary_on:
            for plan in plans.values():
                shapes += [s for s, charged in zip(self._io_shapes(plan.op), self._io_charged(plan)) if charged]
        shapes = [s for s in dict.fromkeys(shapes) if boundary_on and len(s) == 4 and _shape_key(s) not in self.boundaries]
        slope_fillers = {stacking.filler_for(s).key: s for s in shapes}
        for key in slope_fillers:  # the boundary stacks measure these fillers
            plans.pop(key, None)
        for plan in list(plans.values()):  # fillers not measured by a boundary: stacked like any op
            for f, _ in plan.fillers():
                if f.key not in self.entries and f.key not in slope_fillers and f.key not in plans:
                    plans[f.key] = stacking.plan_for(f, st.stack)
        jobs = {}
        n, m = self._boundary_stacks()
        for s in shapes:
            filler = stacking.filler_for(s)
            jobs[("stack_n", s)] = stacking.StackPlan(filler, n, None).graph(st.seed)
            jobs[("stack_m", s)] = stacking.StackPlan(filler, m, None).graph(st.seed)
        for key, plan in plans.items():
            jobs[("op", key)] = plan.graph(st.seed)
        probe = st.cold_weights and plans and self.weight_stream is None
        if probe:
            from vpunas.ops import Linear

            for f, ns in (WEIGHT_PROBE_WARM, WEIGHT_PROBE_COLD):
                for n in ns:
                    jobs[("weights", (f, n))] = onnx_ops.chain_graph([Linear(in_f=f, out_f=f)] * n, seed=st.seed)
        if st.subtract_overhead:
            for model in list(jobs.values()) + list(models):
                in_shapes = onnx_ops.graph_input_shapes(model)
                if _shapes_key(in_shapes) not in self.overheads:
                    jobs[("overhead", _shapes_key(in_shapes))] = onnx_ops.identity_graph(in_shapes)
        names = list(jobs)
        timings = dict(zip(names, time_graphs(self.runner, [jobs[k] for k in names], st))) if names else {}
        for (kind, key), t in timings.items():
            if kind == "overhead":
                if isinstance(t, CompileError):
                    self.failures[("overhead", key)] = t
                else:
                    self.overheads[key] = t.value_ms
        for s in shapes:
            self._store_boundary(s, jobs[("stack_n", s)], timings[("stack_n", s)], timings[("stack_m", s)])
        if probe:
            self._store_weight_stream(timings)
        # shape-keeping plans first: shape-changing ones subtract their fillers
        for key, plan in sorted(plans.items(), key=lambda kv: kv[1].method == "filler"):
            done[key] = self._entry(plan, jobs[("op", key)], timings[("op", key)])
            self.entries[key] = done[key]
        self.entries.update(done)
        return done

    def plan_for(self, op) -> stacking.StackPlan:
        """The op's stack plan; an op at the network's input / output keeps its real conversion there."""
        s_in, s_out = self._io_shapes(op)
        return stacking.plan_for(op, self.settings.stack, reads_network_input=s_in == self.network_io[0],
                                 writes_network_output=s_out == self.network_io[1])

    @staticmethod
    def _io_shapes(op) -> tuple:
        return tuple(onnx_ops.op_input_shape(op)), tuple(onnx_ops.output_shape([op]))

    @staticmethod
    def _io_charged(plan) -> tuple[bool, bool]:
        """Whether the input / output conversion of the plan's graph is subtracted: not for a shape-changing
        op at the network's input (output) with no fillers there, since the network pays that conversion."""
        if plan.method != "filler":
            return True, True
        return plan.n_in > 0, plan.n_out > 0 or len(onnx_ops.output_shape([plan.op])) != 4

    def overhead_ms(self, model) -> float:
        """Per-call overhead for a graph's input shapes (identity graph; measured when not known yet)."""
        if not self.settings.subtract_overhead:
            return 0.0
        key = _shapes_key(onnx_ops.graph_input_shapes(model))
        if key not in self.overheads and ("overhead", key) not in self.failures:
            self.measure_session(models=[model])
        if ("overhead", key) in self.failures:
            raise self.failures[("overhead", key)]
        return self.overheads[key]

    def boundary_ms(self, shape) -> float:
        """Boundary cost io(shape) (0 for non-NCHW tensors or when off; measured when not known yet)."""
        shape = tuple(shape)
        if not self._boundary_on(self.settings) or len(shape) != 4:
            return 0.0
        if _shape_key(shape) not in self.boundaries and ("boundary", shape) not in self.failures:
            self.measure_session(boundary_shapes=[shape])
        if ("boundary", shape) in self.failures:
            raise self.failures[("boundary", shape)]
        return self.boundaries[_shape_key(shape)]

    def _store_boundary(self, shape, big_model, t_n, t_m) -> None:
        filler = stacking.filler_for(shape)
        n, m = self._boundary_stacks()
        try:
            for t in (t_n, t_m):
                if isinstance(t, CompileError):
                    raise t
            overhead = self.overhead_ms(big_model)
        except CompileError as exc:
            self.failures[("boundary", shape)] = CompileError(f"boundary cost at shape {shape} (filler {filler.key}): {exc}")
            return
        per_op, io = stacking.slope_and_boundary(t_n.value_ms, t_m.value_ms, n, m, overhead)
        self.boundaries[_shape_key(shape)] = io
        if filler.key not in self.entries:
            noisy = t_n.noisy or t_m.noisy or per_op <= 0
            entry = {"key": filler.key, "op": filler.to_dict(), "latency_ms": round(max(per_op, 0.0), 6),
                     "std_ms": round(math.hypot(t_n.std_ms, t_m.std_ms) / (n - m), 6), "n": t_n.n + t_m.n,
                     "status": "noisy" if noisy else "ok", "method": "slope", "graph_ms": round(t_n.value_ms, 6),
                     "spread": round(max(t_n.spread, t_m.spread), 4)}
            if per_op <= 0:
                entry["note"] = f"non-positive slope ({per_op:.4f} ms), clamped to 0"
            self.entries[filler.key] = entry

    def _store_weight_stream(self, timings: dict) -> None:
        slopes, failed = [], []
        for f, (m, n) in (WEIGHT_PROBE_WARM, WEIGHT_PROBE_COLD):
            t_m, t_n = timings[("weights", (f, m))], timings[("weights", (f, n))]
            if isinstance(t_m, CompileError) or isinstance(t_n, CompileError):
                failed.append(str(t_m if isinstance(t_m, CompileError) else t_n))
                continue
            slopes.append((t_n.value_ms - t_m.value_ms) / (_probe_mb((f, n), n) - _probe_mb((f, m), m)))
        warm_mb, cold_mb = _probe_mb(WEIGHT_PROBE_WARM, WEIGHT_PROBE_WARM[1][1]), \
            _probe_mb(WEIGHT_PROBE_COLD, WEIGHT_PROBE_COLD[1][0])
        self.weight_stream = {"extra_ms_per_mb": round(max(slopes[1] - slopes[0], 0.0), 6) if not failed else 0.0,
                              "warm_mb": round(warm_mb, 3), "cold_mb": round(cold_mb, 3),
                              "probe": f"Linear {WEIGHT_PROBE_WARM[0]}^2 x{WEIGHT_PROBE_WARM[1]} vs "
                                       f"{WEIGHT_PROBE_COLD[0]}^2 x{WEIGHT_PROBE_COLD[1]} stacks, per-MB slopes"}
        if not failed:
            self.weight_stream.update(warm_ms_per_mb=round(slopes[0], 6), cold_ms_per_mb=round(slopes[1], 6))
        else:
            self.weight_stream["error"] = f"probe failed, no cold-weight term: {failed[0]}"

    def _cold_weight_fields(self, op, model) -> dict:
        """The entry's weight sizes and cold-weight term (empty when off or not measured)."""
        ws = self.weight_stream
        if not self.settings.cold_weights or not ws:
            return {}
        op_mb, graph_mb = weights_mb(onnx_ops.chain_graph([op], seed=self.settings.seed)), weights_mb(model)
        extra = cold_weight_ms(op_mb, graph_mb, ws["extra_ms_per_mb"], ws["warm_mb"], ws["cold_mb"])
        return {"weight_mb": round(op_mb, 4), "graph_weight_mb": round(graph_mb, 4), "cold_weights_ms": round(extra, 6)}

    def _entry(self, plan, model, timing) -> dict:
        op = plan.op
        entry = {"key": op.key, "op": op.to_dict()}
        filler_ms, filler_var = {}, 0.0
        charged = self._io_charged(plan)
        try:  # fillers keep the shape: the graph converts at the op's input and output shapes
            io = sum(self.boundary_ms(s) for s, c in zip(self._io_shapes(op), charged) if c) / 2
            for f, k in plan.fillers():
                filler = self.entries[f.key]
                if filler.get("status") == "failed":
                    raise CompileError(f"filler op {f.key} failed: {filler.get('error')}")
                filler_ms[f.key] = filler["latency_ms"]
                filler_var += (k * filler["std_ms"]) ** 2
            if isinstance(timing, CompileError):
                raise timing
            overhead = self.overhead_ms(model)
        except CompileError as exc:
            return {**entry, "latency_ms": None, "std_ms": None, "n": 0, "status": "failed",
                    "method": plan.method, "error": str(exc)}
        cold = self._cold_weight_fields(op, model)
        latency = plan.latency(timing.value_ms, overhead + io, filler_ms)
        if plan.method != "filler":
            std = timing.std_ms / plan.n
        else:
            std = math.sqrt(timing.std_ms ** 2 + filler_var)
        status, note = ("noisy", f"spread {timing.spread:.1%} after {timing.attempts} attempts") if timing.noisy \
            else ("ok", None)
        if latency < 0:  # subtraction below zero: the op is cheaper than the noise floor
            status, note = "noisy", f"negative after subtraction ({latency:.4f} ms), clamped to 0"
            latency = 0.0
        latency += cold.get("cold_weights_ms", 0.0)
        out = {**entry, "latency_ms": round(latency, 6), "std_ms": round(std, 6), "n": timing.n, "status": status,
               "method": plan.method, "graph_ms": round(timing.value_ms, 6), "spread": round(timing.spread, 4)}
        if note:
            out["note"] = note
        out.update(cold)
        if plan.method == "filler":
            out["fillers"] = {"in": plan.n_in, "out": plan.n_out}
            if not charged[0]:
                out["includes_network_input"] = True
            if not charged[1]:
                out["includes_network_output"] = True
        return out

    def measure(self, op) -> dict:
        """Measure one op (and what it needs), store it in the table and checkpoint."""
        self.measure_session([op])
        self.checkpoint(complete=False)
        return self.entries[op.key]

    def run(self, ops: Sequence, on_entry: Optional[Callable[[dict], None]] = None) -> dict:
        """Measure every distinct op not yet in the table, `batch` ops per interleaved session, with a
        checkpoint after each session; returns the finished table as a dict."""
        todo_all = unique_ops(ops)
        todo = [op for op in todo_all if op.key not in self.entries]
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(total=len(todo_all), initial=len(todo_all) - len(todo), unit="op",
                       desc=f"profile {self.source['runtime']} {self.source['device']}")
        try:
            for start in range(0, len(todo), self.settings.batch):
                batch = todo[start:start + self.settings.batch]
                if bar is not None:
                    bar.set_postfix_str(f"{batch[0].key[:40]} +{len(batch) - 1}")
                self.measure_session(batch)
                self.checkpoint(complete=False)
                for op in batch:
                    if on_entry:
                        on_entry(self.entries[op.key])
                if bar is not None:
                    bar.update(len(batch))
        finally:
            if bar is not None:
                bar.close()
        table = self.to_dict(complete=True)
        if self.out_path:
            write_json_atomic(self.out_path, table)
        return table

    # -- output --------------------------------------------------------------------------------
    def to_dict(self, complete: bool) -> dict:
        info = self.runner.info()  # precision / threads actually used, known after the first compile
        source = {**self.source, "precision": info["precision"], "threads": info["threads"],
                  "call_overhead_ms": dict(self.overheads), "boundary_ms": dict(self.boundaries),
                  **({"weight_stream": self.weight_stream} if self.weight_stream else {}),
                  "complete": complete}
        failed = sum(1 for e in self.entries.values() if e.get("status") == "failed")
        noisy = sum(1 for e in self.entries.values() if e.get("status") == "noisy")
        source.update(failed=failed, noisy=noisy)
        out = {"format": LUT_FORMAT, "version": LUT_VERSION, "device": f"{info['device']}",
               "unit": "ms", "dtype": "FLOAT32" if info["precision"] == "f32" else str(info["precision"]).upper(),
               "source": source}
        if self.space_meta:
            out["space"] = self.space_meta
        out["entries"] = list(self.entries.values())
        return out

    def checkpoint(self, complete: bool) -> None:
        if self.out_path:
            write_json_atomic(self.out_path, self.to_dict(complete))


def profile_ops(ops: Sequence, runner, settings: ProfileSettings = ProfileSettings(), out_path=None,
                extra_source: Optional[dict] = None, progress: bool = True, overwrite: bool = False,
                space_meta: Optional[dict] = None, network_io: Optional[tuple] = None) -> dict:
    """Measure a latency table for `ops` (resuming `out_path` when it holds a partial table).
    network_io: (input shape, output shape) of the networks (validate.network_io(space)); the ops there
    are measured with the network's own boundary conversions (see stacking.py).

    The result is the LUT JSON dict; `vpunas.lut.LatencyTable.from_json` / `.load` read it unchanged."""
    return Profiler(runner, settings, out_path, extra_source, progress, overwrite, space_meta, network_io).run(ops)


def space_meta(space) -> dict:
    """The table's top-level "space" record (same layout as vpunas.lut's VPUNN tables)."""
    meta = {"name": getattr(space, "name", None), "input_size": list(getattr(space, "input_size", []) or [])}
    if isinstance(getattr(space, "config", None), dict):
        meta["config"] = space.config
    return meta


def latency_by_key(table: dict) -> dict:
    """key -> latency_ms of the usable entries of a table dict."""
    return {e["key"]: float(e["latency_ms"]) for e in table["entries"] if e.get("status") != "failed"}
