"""Search-space registry: `get_space(name, **kw)`, `register_space(name)(factory)`, `list_spaces()`.

A space exposes `name`, `input_size` (C, H, W), `blocks` (each with `.name` and `.candidates`, a list of
`vpunas.ops` specs), `fixed_ops`, `candidate_mask()`, `build_supernet()`, `sample_arch(rng)`,
`derive(choices)` (-> arch dict) and `choices_from_arch(arch)`; see `spaces.mbconv.MBConvSpace`.
"""
from __future__ import annotations

import importlib
from typing import Callable

_REGISTRY: dict[str, Callable] = {}
# Modules that register spaces when imported (lazily, so importing vpunas stays light).
_SPACE_MODULES = ["vpunas.spaces.mbconv", "vpunas.spaces.edsr"]


def register_space(name: str):
    """Decorator: `@register_space("mbconv")` on a factory `(**kw) -> space`."""

    def deco(factory: Callable) -> Callable:
        if name in _REGISTRY and _REGISTRY[name] is not factory:
            raise ValueError(f"search space {name!r} is already registered")
        _REGISTRY[name] = factory
        return factory

    return deco


def _load_modules() -> None:
    for mod in _SPACE_MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name != mod:  # a real missing dependency inside an existing module
                raise


def list_spaces() -> list[str]:
    _load_modules()
    return sorted(_REGISTRY)


def get_space(name: str, **kwargs):
    """Build the search space registered as `name` (e.g. 'mbconv', 'small-32', 'mobilenetv2-224')."""
    _load_modules()
    if name not in _REGISTRY:
        raise ValueError(f"unknown search space {name!r}; available: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name](**kwargs)


__all__ = ["get_space", "list_spaces", "register_space"]
