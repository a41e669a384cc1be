"""CLI commands, one module each; see vpunas.cli."""
