"""Timing runners: OpenVINO and onnxruntime behind one interface.

    call = runner.prepare(model_bytes, inputs)            # compile once, bind inputs once (zero copy)
    runner.time_interleaved([call, ...], rounds, repeats, warmup) -> ms array [graph, round, repeat]
    runner.measure(model_bytes, inputs, warmup, repeats)  # one graph, one round: ms array [repeat]

Interleaved rounds: every prepared graph is visited once per round (direction alternating), each visit
one untimed call (re-warms the caches the other graphs evicted) then `repeats` timed calls. On a
shared host the background load drifts on a scale of 0.1-1 s and moves a graph's latency by 30 % and
more; timing graphs one after another lets that drift land on some graphs and not others, while
round-robin visits let it hit every graph alike.

Clock: "wall" (perf_counter; what a user of the device sees, the right choice on a dedicated machine or
an accelerator) or "cpu" (CPU time of this process; for a CPU device with 1 inference thread on a
shared host, where other processes' time slices inflate wall-clock latency by 2x and more while the
CPU time stays the op's own cost). The runtimes are imported lazily (openvino's import is slow).
"""
from __future__ import annotations

import time
from typing import Callable, Optional, Sequence

import numpy as np

RUNTIMES = ("openvino", "onnxruntime")

_OV_PRECISIONS = {"f32": "f32", "fp32": "f32", "float32": "f32", "bf16": "bf16", "bfloat16": "bf16",
                  "f16": "f16", "fp16": "f16", "float16": "f16"}


CLOCKS = ("wall", "cpu")


class CompileError(RuntimeError):
    """The runtime could not compile or run a graph; the message is the runtime's own."""


def _check_clock(clock: str, device: str, threads: Optional[int]) -> str:
    if clock not in CLOCKS:
        raise ValueError(f"unknown clock {clock!r}; use one of {', '.join(CLOCKS)}")
    if clock == "cpu" and (threads != 1 or not device.upper().startswith("CPU")):
        raise ValueError("the cpu clock measures a CPU device running 1 inference thread: "
                         "use --device CPU --threads 1, or the wall clock")
    return clock


def time_interleaved(calls: Sequence, rounds: int, repeats: int, warmup: int = 0,
                     clock_name: str = "wall") -> np.ndarray:
    """Per-call latencies in ms, shape [len(calls), rounds, repeats], of zero-argument calls timed in
    interleaved rounds (see the module docstring); `warmup` untimed calls each before the first round."""
    if rounds < 1 or repeats < 1:
        raise ValueError(f"rounds and repeats must be >= 1, got {rounds} and {repeats}")
    for call in calls:
        for _ in range(max(warmup, 0)):
            call()
    out = np.empty((len(calls), rounds, repeats), dtype=np.float64)
    clock = time.process_time_ns if clock_name == "cpu" else time.perf_counter_ns
    for r in range(rounds):
        for g in (range(len(calls)) if r % 2 == 0 else reversed(range(len(calls)))):
            call = calls[g]
            call()
            for i in range(repeats):
                t0 = clock()
                call()
                out[g, r, i] = (clock() - t0) * 1e-6
    return out


class _Runner:
    """What both runners share: timing prepared graphs with the runner's clock."""

    clock = "wall"

    def prepare(self, model_bytes: bytes, inputs: dict) -> Callable[[], object]:
        raise NotImplementedError

    def time_interleaved(self, calls: Sequence, rounds: int, repeats: int, warmup: int = 0) -> np.ndarray:
        try:
            return time_interleaved(calls, rounds, repeats, warmup, self.clock)
        except CompileError:
            raise
        except Exception as exc:
            raise CompileError(f"{self.runtime} {self.device} inference failed: {exc}") from exc

    def measure(self, model_bytes: bytes, inputs: dict, warmup: int = 5, repeats: int = 20) -> np.ndarray:
        """Per-call latencies (ms) of one graph: compile, `warmup` untimed calls, `repeats` timed ones."""
        return self.time_interleaved([self.prepare(model_bytes, inputs)], 1, repeats, warmup)[0, 0]


class OpenVinoRunner(_Runner):
    """OpenVINO `compile_model` on the ONNX bytes; device and precision hint configurable.

    precision: None keeps the device default; the precision actually used is read back from the
    compiled model (`INFERENCE_PRECISION_HINT`) and reported in `info()`."""

    runtime = "openvino"

    def __init__(self, device: str = "CPU", precision: Optional[str] = "f32", threads: Optional[int] = None,
                 clock: str = "wall"):
        import openvino as ov

        self._ov = ov
        self.core = ov.Core()
        available = list(self.core.available_devices)
        base = device.split(":")[0].split(".")[0].upper()
        meta = {"AUTO", "HETERO", "MULTI", "BATCH"}
        if base not in meta and device.upper() not in available and base not in available:
            raise ValueError(f"OpenVINO device {device!r} is not available; available devices: "
                             f"{', '.join(available) or '(none)'} (or AUTO)")
        if precision is not None and precision.lower() not in _OV_PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}; use one of f32, bf16, f16 (or omit for the default)")
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.clock = _check_clock(clock, device, threads)
        self.device = device
        self.requested_precision = _OV_PRECISIONS[precision.lower()] if precision else None
        self.threads = threads
        self.version = ov.get_version().split("-")[0]
        self.precision_used: Optional[str] = None
        self.threads_used: Optional[int] = threads

    def _config(self) -> dict:
        cfg = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": "1"}
        if self.requested_precision:
            cfg["INFERENCE_PRECISION_HINT"] = self.requested_precision
        if self.threads:
            cfg["INFERENCE_NUM_THREADS"] = str(self.threads)
        if not self.device.upper().startswith("CPU"):  # other plugins reject CPU-only keys
            cfg.pop("INFERENCE_NUM_THREADS", None)
            cfg.pop("NUM_STREAMS", None)
        return cfg

    def compile(self, model_bytes: bytes):
        try:
            model = self.core.read_model(model_bytes, b"")
            compiled = self.core.compile_model(model, self.device, self._config())
        except Exception as exc:  # the runtime's message is what the user needs
            raise CompileError(f"OpenVINO {self.device}: {exc}".strip()) from exc
        try:
            self.precision_used = str(compiled.get_property("INFERENCE_PRECISION_HINT")).lower() \
                .replace("<type: '", "").replace("'>", "").replace("float32", "f32") \
                .replace("bfloat16", "bf16").replace("float16", "f16")
        except Exception:
            self.precision_used = self.requested_precision or "default"
        try:
            self.threads_used = int(compiled.get_property("INFERENCE_NUM_THREADS"))
        except Exception:
            pass
        return compiled

    def prepare(self, model_bytes: bytes, inputs: dict) -> Callable[[], object]:
        compiled = self.compile(model_bytes)
        request = compiled.create_infer_request()
        if len(compiled.inputs) != len(inputs):
            raise ValueError(f"{len(inputs)} inputs given for a graph with {len(compiled.inputs)}")
        for port in compiled.inputs:  # a port may carry several tensor names; match any of them
            name = next((n for n in port.get_names() if n in inputs), None)
            if name is None:
                raise ValueError(f"no input given for graph input {sorted(port.get_names())}; got {sorted(inputs)}")
            # zero copy: the OpenVINO tensor views the numpy buffer
            array = np.ascontiguousarray(inputs[name], np.float32)
            request.set_tensor(port, self._ov.Tensor(array, shared_memory=True))
        def call(_keep=compiled):  # the default argument keeps the compiled model alive with the call
            return request.infer()

        return call

    def info(self) -> dict:
        return {"runtime": f"openvino {self.version}", "device": self.device,
                "precision": self.precision_used or self.requested_precision or "default",
                "threads": self.threads_used, "clock": self.clock}


class OnnxRuntimeRunner(_Runner):
    """onnxruntime session on one execution provider (device "CPU" = CPUExecutionProvider)."""

    runtime = "onnxruntime"

    def __init__(self, device: str = "CPU", precision: Optional[str] = "f32", threads: Optional[int] = None,
                 clock: str = "wall"):
        import onnxruntime as ort

        self._ort = ort
        providers = list(ort.get_available_providers())
        provider = device if device.endswith("ExecutionProvider") else f"{device.upper()}ExecutionProvider"
        if device.upper() == "CPU":
            provider = "CPUExecutionProvider"
        if provider not in providers:
            names = [p.replace("ExecutionProvider", "") for p in providers]
            raise ValueError(f"onnxruntime device {device!r} is not available; available: {', '.join(names)}")
        if precision is not None and _OV_PRECISIONS.get(precision.lower()) != "f32":
            raise ValueError(f"onnxruntime runs the graph in its own precision (f32 here); got precision {precision!r}")
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.clock = _check_clock(clock, device, threads)
        self.device = device
        self.provider = provider
        self.threads = threads
        self.version = ort.__version__

    def prepare(self, model_bytes: bytes, inputs: dict) -> Callable[[], object]:
        ort = self._ort
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        if self.threads:
            opts.intra_op_num_threads = self.threads
        try:
            sess = ort.InferenceSession(model_bytes, opts, providers=[self.provider])
        except Exception as exc:
            raise CompileError(f"onnxruntime {self.provider}: {exc}") from exc
        names = {i.name for i in sess.get_inputs()}
        if set(inputs) != names:
            raise ValueError(f"inputs {sorted(inputs)} do not match the graph's inputs {sorted(names)}")
        binding = sess.io_binding()  # bind once: no per-call input copies or output allocation
        for name, array in inputs.items():
            binding.bind_cpu_input(name, np.ascontiguousarray(array, np.float32))
        for out in sess.get_outputs():
            binding.bind_output(out.name, "cpu")
        return lambda: sess.run_with_iobinding(binding)

    def run(self, model_bytes: bytes, inputs: dict) -> list:
        """Outputs of one inference (used by tests to check graphs numerically)."""
        sess = self._ort.InferenceSession(model_bytes, providers=[self.provider])
        return sess.run(None, inputs)

    def info(self) -> dict:
        return {"runtime": f"onnxruntime {self.version}", "device": self.device, "precision": "f32",
                "threads": self.threads if self.threads else "default", "clock": self.clock}


def make_runner(runtime: str, device: str = "CPU", precision: Optional[str] = None,
                threads: Optional[int] = None, clock: str = "wall"):
    """Runner by name; unknown runtime or device -> ValueError listing what is available."""
    name = (runtime or "").lower()
    if name in ("openvino", "ov"):
        return OpenVinoRunner(device, precision, threads, clock)
    if name in ("onnxruntime", "ort"):
        return OnnxRuntimeRunner(device, precision or "f32", threads, clock)
    raise ValueError(f"unknown runtime {runtime!r}; available runtimes: {', '.join(RUNTIMES)}")


def runtime_from_label(label: str) -> str:
    """'openvino 2026.4.1' -> 'openvino' (the runtime field of a measured LUT's source)."""
    return (label or "").split()[0] if label else ""
