"""Search-space registry: `get_space(name, **kw)`, `register_space(name)(factory)`, `list_spaces()`.

A space exposes `name`, `input_size` (C, H, W), `blocks` (each with `.name` and `.candidates`, a list of
`vpunas.ops` specs), `fixed_ops`, `candidate_mask()`, `build_supernet()`, `sample_arch(rng)`,
`derive(choices)` (-> arch dict), `choices_from_arch(arch)` and `arch_factors()` (how candidates decompose
into kernel / width / ... choices, for factorized architecture parameters); see `spaces.mbconv.MBConvSpace`.
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


def parse_input_size(text) -> tuple | None:
    """'224' -> (224, 224); '360x640' -> (360, 640); None -> None."""
    if text is None:
        return None
    try:
        hw = tuple(int(v) for v in str(text).lower().split("x"))
    except ValueError:
        hw = ()
    if len(hw) == 1:
        hw = hw * 2
    if len(hw) != 2 or min(hw) < 1:
        raise ValueError(f"--input {text!r}: expected N or HxW with positive integers, e.g. 224 or 360x640")
    return hw


def space_kwargs_from_cli(space: str, preset, input_text) -> dict:
    """Explicit get_space() keyword arguments from the CLI's --space / --preset / --input."""
    hw = parse_input_size(input_text)
    if space == "edsr":
        if preset:
            raise ValueError("the edsr space has no presets; leave out --preset")
        return {"input_hw": list(hw)} if hw else {}
    kw = {}
    if space == "mbconv":
        kw["preset"] = preset or ("mobilenetv2-224" if hw is None or hw[0] >= 112 else "small-32")
    elif preset:
        kw["preset"] = preset
    if hw:
        if hw[0] != hw[1]:
            raise ValueError(f"the {space} space takes square inputs; got --input {input_text}")
        kw["resolution"] = hw[0]
    return kw


__all__ = ["get_space", "list_spaces", "register_space", "parse_input_size", "space_kwargs_from_cli"]
