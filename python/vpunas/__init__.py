"""vpunas: hardware-aware neural architecture search for Intel VPUs / NPUs."""

__version__ = "0.1.0"

# workload: DPU cost models (VPUNN .vpunn files, VPUNN's analytic estimate), workloads in VPUNN's CSV format
from vpunas.costmodel import TheoreticalCostModel, VPUNN, Workload, read_workloads_csv  # noqa: E402

# layer: layer -> tiles -> DPU workloads costs, DSP (SHAVE) kernel costs
from vpunas.layercost import LayerCostModel, ShaveCostModel  # noqa: E402

# latency: LUTs and the expected-latency kernel (torch is imported only when expected_latency is called)
from vpunas.lut import LatencyTable, VpuCostSource  # noqa: E402


def expected_latency(alpha, table_or_F, mask=None, space=None):
    """E[latency] (ms) of softmax(alpha) over a LUT; see `vpunas.latency.expected_latency`."""
    from vpunas.latency import expected_latency as _expected_latency

    return _expected_latency(alpha, table_or_F, mask=mask, space=space)

# lint: VPU-friendliness report of any ONNX model (onnx is imported only when a model is read)
from vpunas.lint import LintReport, lint_model  # noqa: E402

# search: spaces, ProxylessNAS search, derive/export, bench (torch / openvino imported on first use)
from vpunas.spaces import get_space, list_spaces, register_space  # noqa: E402


def run_classification(out_dir, **kwargs):
    """Data -> search -> derive -> retrain -> ONNX / IR -> fps -> report; see `vpunas.classification`."""
    from vpunas.classification import run_classification as _run

    return _run(out_dir, **kwargs)


def build_model(arch):
    """Plain torch network of an arch description (dict); see `vpunas.export.build_model`."""
    from vpunas.export import build_model as _build

    return _build(arch)


def benchmark(path, **kwargs):
    """Batch-1 fps of an .onnx / .xml model with OpenVINO and onnxruntime; see `vpunas.bench.benchmark`."""
    from vpunas.bench import benchmark as _bench

    return _bench(path, **kwargs)
