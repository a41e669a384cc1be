"""Measured LUTs: time each operator of a search space on a real runtime (OpenVINO, onnxruntime).

    onnx_ops   op specs -> ONNX graphs (single op, stacks, whole subnets)
    stacking   stack / filler graphs and the formulas that recover one op's latency
    runners    OpenVinoRunner, OnnxRuntimeRunner: prepare(model, inputs) -> call; time_interleaved(calls, ...)
    profiler   resumable profiling of a table (checkpointed JSON, progress bar with ETA)
    validate   LUT sum vs end-to-end latency of random subnets: MAPE, Pearson, Spearman, scatter PNG

Runtimes are imported only when a runner is made (openvino's import is slow).
"""
from .profiler import ProfileSettings, Profiler, profile_ops, read_lut_json
from .runners import make_runner
from .validate import error_metrics, validate_tables

__all__ = ["ProfileSettings", "Profiler", "profile_ops", "read_lut_json", "make_runner", "error_metrics",
           "validate_tables"]
