"""vpunas: hardware-aware neural architecture search for Intel VPUs / NPUs."""

__version__ = "0.1.0"

# layer: layer -> tiles -> DPU workloads costs, DSP (SHAVE) kernel costs
from vpunas.layercost import LayerCostModel, ShaveCostModel  # noqa: E402
