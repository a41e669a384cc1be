"""vpunas: hardware-aware neural architecture search for Intel VPUs / NPUs."""

__version__ = "0.1.0"
