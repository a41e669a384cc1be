"""Throughput of an exported model (ONNX or OpenVINO IR): batch 1, warm-up, median latency -> fps.

Timing noise on shared machines is large: we warm up, time `repeats` single inferences and report the
median (and the 10th / 90th percentiles), plus the runtime, device, precision and thread count used.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

RUNTIMES = ("openvino", "onnxruntime")


def _input_shape(shape) -> list:
    dims = [d if isinstance(d, int) and d > 0 else 1 for d in shape]
    return dims


def _time(fn, warmup: int, repeats: int) -> np.ndarray:
    for _ in range(warmup):
        fn()
    times = np.empty(repeats)
    for i in range(repeats):
        t0 = time.perf_counter()
        fn()
        times[i] = time.perf_counter() - t0
    return times


def _summary(times: np.ndarray) -> dict:
    med = float(np.median(times))
    return {"median_ms": med * 1e3, "p10_ms": float(np.percentile(times, 10)) * 1e3,
            "p90_ms": float(np.percentile(times, 90)) * 1e3, "fps": 1.0 / med, "repeats": int(times.size)}


def bench_openvino(path: str | Path, device: str = "CPU", precision: str = "f32", threads: int | None = None,
                   warmup: int = 20, repeats: int = 200) -> dict:
    import openvino as ov

    core = ov.Core()
    if device not in core.available_devices and device != "AUTO":
        raise ValueError(f"OpenVINO device {device!r} is not available here; available: {core.available_devices}")
    config = {"PERFORMANCE_HINT": "LATENCY"}
    if precision:
        config["INFERENCE_PRECISION_HINT"] = precision
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    compiled = core.compile_model(core.read_model(str(path)), device, config)
    shape = _input_shape([d.get_length() if d.is_static else 1 for d in compiled.input(0).get_partial_shape()])
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    request = compiled.create_infer_request()
    request.set_input_tensor(ov.Tensor(x, shared_memory=True))
    res = _summary(_time(request.infer, warmup, repeats))
    actual = compiled.get_property("INFERENCE_PRECISION_HINT")
    actual = actual.to_string() if hasattr(actual, "to_string") else str(actual)
    res.update(runtime="openvino", version=ov.__version__.split("-")[0], device=device, precision=actual,
               threads=int(compiled.get_property("INFERENCE_NUM_THREADS")), input_shape=shape)
    return res


def bench_onnxruntime(path: str | Path, threads: int | None = None, warmup: int = 20, repeats: int = 200) -> dict:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = int(threads)
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    shape = _input_shape(inp.shape)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    feed = {inp.name: x}
    res = _summary(_time(lambda: sess.run(None, feed), warmup, repeats))
    res.update(runtime="onnxruntime", version=ort.__version__, device="CPU", precision="f32",
               threads=threads or "default", input_shape=shape)
    return res


def benchmark(path: str | Path, runtimes=RUNTIMES, device: str = "CPU", precision: str = "f32",
              threads: int | None = None, warmup: int = 20, repeats: int = 200) -> list[dict]:
    """Benchmark `path` (.onnx or .xml) with each runtime that can read it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} does not exist")
    if path.suffix not in (".onnx", ".xml"):
        raise ValueError(f"{path}: expected an .onnx model or an OpenVINO .xml IR")
    unknown = [r for r in runtimes if r not in RUNTIMES]
    if unknown:
        raise ValueError(f"unknown runtime(s) {unknown}; use {', '.join(RUNTIMES)}")
    if warmup < 0 or repeats < 1:
        raise ValueError("warmup must be >= 0 and repeats >= 1")
    results = []
    for rt in runtimes:
        if rt == "openvino":
            results.append(bench_openvino(path, device, precision, threads, warmup, repeats))
        elif path.suffix == ".onnx":
            results.append(bench_onnxruntime(path, threads, warmup, repeats))
    for r in results:
        r["model"] = str(path)
    return results


def format_table(results: list[dict]) -> str:
    lines = ["| model | runtime | device | precision | threads | median ms | p10-p90 ms | fps |",
             "|---|---|---|---|---|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {Path(r['model']).name} | {r['runtime']} {r['version']} | {r['device']} | {r['precision']} | "
                     f"{r['threads']} | {r['median_ms']:.3f} | {r['p10_ms']:.3f}-{r['p90_ms']:.3f} | {r['fps']:.0f} |")
    return "\n".join(lines)
