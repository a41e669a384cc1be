"""Plain torch networks (no supernet classes): what derived and baseline architectures are built from."""
