"""Derive -> plain nn.Module -> ONNX -> OpenVINO IR, each step checked against torch's outputs.

Arch descriptions are JSON (see `spaces.mbconv.MBConvSpace.derive`); `build_model(arch)` rebuilds the
plain network (no supernet classes) from the description alone.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

# Builders per arch "space" value; other tasks (e.g. SR) add theirs with `register_builder`.
_BUILDERS = {}


def register_builder(space: str, builder) -> None:
    """`builder(arch: dict) -> nn.Module` for arch descriptions whose "space" is `space`."""
    _BUILDERS[space] = builder


def _mbconv_builder(arch: dict) -> nn.Module:
    from .models.mbconv_net import MBConvNet

    return MBConvNet(arch)


register_builder("mbconv", _mbconv_builder)


def build_model(arch: dict) -> nn.Module:
    """The plain torch network an arch description stands for."""
    space = arch.get("space")
    if space not in _BUILDERS:
        from .spaces import list_spaces

        list_spaces()  # importing the space modules registers their builders (e.g. "edsr")
    if space not in _BUILDERS:
        raise ValueError(f"no network builder for arch space {space!r}; known: {', '.join(sorted(_BUILDERS))}")
    return _BUILDERS[space](arch)


def save_arch(arch: dict, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(arch, indent=1))
    return path


def load_arch(path: str | Path) -> dict:
    path = Path(path)
    try:
        arch = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from exc
    if arch.get("format") != "vpunas-arch":
        raise ValueError(f"{path} is not a vpunas arch description (format {arch.get('format')!r})")
    return arch


def save_model(model: nn.Module, arch: dict, out_dir: str | Path, name: str) -> tuple[Path, Path]:
    """Write `<name>.arch.json` and `<name>.pt` (state dict); `load_model` rebuilds the module."""
    out_dir = Path(out_dir)
    arch_path = save_arch(arch, out_dir / f"{name}.arch.json")
    weights = out_dir / f"{name}.pt"
    torch.save(model.state_dict(), weights)
    return arch_path, weights


def load_model(arch_path: str | Path, weights: str | Path | None = None) -> nn.Module:
    model = build_model(load_arch(arch_path))
    if weights is not None:
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model.eval()


def _max_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0


def _check_close(check: str, runtime: str, path, ref: np.ndarray, got: np.ndarray, rtol: float) -> float:
    """Max abs error of the `runtime` output vs torch's, judged relative to the output's scale (untrained
    nets have tiny logits); RuntimeError naming the `check` and `path` when it is too large."""
    err = _max_err(ref, got)
    if not (got.shape == ref.shape and err <= rtol * float(np.abs(ref).max()) + 1e-7):
        raise RuntimeError(f"{check} check failed for {path}: max |{runtime} - torch| = {err:.3g} "
                           f"(relative tolerance {rtol}), shapes {got.shape} vs {ref.shape}")
    return err


def export_onnx(model: nn.Module, input_size, path: str | Path, check: bool = True, rtol: float = 1e-4,
                opset: int = 17, seed: int = 0) -> dict:
    """Export with the legacy (TorchScript) exporter, batch 1, and compare onnxruntime with torch."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    x = torch.randn(1, *input_size, generator=torch.Generator().manual_seed(seed))
    with warnings.catch_warnings():  # the legacy exporter is chosen on purpose (no onnxscript needed)
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=opset, input_names=["input"],
                          output_names=["output"])
    info = {"path": str(path), "opset": opset}
    if check:
        import onnxruntime as ort

        with torch.no_grad():
            ref = model(x).numpy()
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = sess.run(None, {"input": x.numpy()})[0]
        info["max_abs_err_vs_torch"] = _check_close("ONNX export", "onnxruntime", path, ref, got, rtol)
    return info


def export_openvino(onnx_path: str | Path, xml_path: str | Path, model: nn.Module | None = None,
                    input_size=None, check: bool = True, rtol: float = 1e-4, seed: int = 0) -> dict:
    """Convert ONNX -> OpenVINO IR (fp32 weights); check OpenVINO-CPU (f32 precision) against torch."""
    import openvino as ov

    xml_path = Path(xml_path)
    xml_path.parent.mkdir(parents=True, exist_ok=True)
    ov_model = ov.convert_model(str(onnx_path))
    ov.save_model(ov_model, str(xml_path), compress_to_fp16=False)
    info = {"path": str(xml_path), "openvino": ov.__version__}
    if check and model is not None and input_size is not None:
        x = torch.randn(1, *input_size, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            ref = model.eval()(x).numpy()
        core = ov.Core()
        compiled = core.compile_model(core.read_model(str(xml_path)), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        got = compiled(x.numpy())[compiled.output(0)]
        info["max_abs_err_vs_torch"] = _check_close("OpenVINO IR", "openvino", xml_path, ref, got, rtol)
    return info


def count_params(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))
