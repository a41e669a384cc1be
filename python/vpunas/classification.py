"""Image classification end to end: data -> ProxylessNAS search -> derive -> retrain (searched net and the
MobileNetV2-style baseline, same recipe) -> ONNX / OpenVINO IR (checked) -> fps -> report.

`run_classification(...)` takes explicit parameters (the CLI and benchmarks/ convert their arguments).
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from .data.loaders import load_classification, split_train_valid, subset
from .export import build_model, export_onnx, export_openvino, save_model, count_params
from .models.mobilenetv2 import mobilenetv2_arch
from .search import (ClassificationTask, ProxylessSearch, SearchConfig, TrainConfig, build_latency_terms,
                     train_network)
from .spaces import get_space

REPORT_DEVICES = ("VPU_2_0", "VPU_2_7")
VPUNN_FILES = {"VPU_2_0": "vpu_2_0.vpunn", "VPU_2_7": "vpu_2_7.vpunn", "VPU_4_0": "vpu_4_0.vpunn"}


def vpunn_model_for(device: str, model_dir: str | Path | None) -> Path | None:
    """The shipped .vpunn file for `device` in `model_dir`, or None (-> theoretical estimates)."""
    if model_dir is None:
        return None
    path = Path(model_dir) / VPUNN_FILES[device]
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; --vpunn-dir must hold {', '.join(VPUNN_FILES.values())}")
    return path


FPS_ROUNDS = 3


def measure_fps(rows: list, repeats: int, quiet: bool) -> None:
    """Time every model in interleaved rounds, so slow drifts of a shared machine hit all models alike."""
    import numpy as np

    from .bench import bench_onnxruntime, bench_openvino

    med = {id(r): {"openvino": [], "onnxruntime": []} for r in rows}
    last = {}
    for _ in range(FPS_ROUNDS):
        for r in rows:
            xml_path, onnx_path = r["_paths"]
            ov_res = bench_openvino(xml_path, "CPU", "f32", repeats=repeats)
            ort_res = bench_onnxruntime(onnx_path, repeats=repeats)
            med[id(r)]["openvino"].append(ov_res["median_ms"])
            med[id(r)]["onnxruntime"].append(ort_res["median_ms"])
            last[id(r)] = [ov_res, ort_res]
    for r in rows:
        ov_ms = float(np.median(med[id(r)]["openvino"]))
        ort_ms = float(np.median(med[id(r)]["onnxruntime"]))
        r.update(fps_openvino_cpu=1e3 / ov_ms, fps_onnxruntime=1e3 / ort_ms, bench=last[id(r)],
                 bench_round_medians_ms=med[id(r)])
        _log(f"{r['name']}: OpenVINO CPU {1e3 / ov_ms:.0f} fps, onnxruntime {1e3 / ort_ms:.0f} fps", quiet)


def _log(msg: str, quiet: bool) -> None:
    if not quiet:
        print(msg, flush=True)


def run_classification(out_dir: str | Path, *, data: str | Path | None = None, preset: str = "small-32",
                       resolution: int = 28, in_ch: int = 1, width_mult: float = 1.0,
                       device: str = "VPU_2_0", model_dir: str | Path | None = None, lut: str | Path | None = None,
                       search_cfg: SearchConfig | None = None, train_cfg: TrainConfig | None = None,
                       search_train_size: int | None = None, valid_size: int = 5000,
                       train_size: int | None = None, test_size: int | None = None,
                       baseline: bool = True, export: bool = True, bench_repeats: int = 200,
                       resume: bool = False, quiet: bool = False, torch_device: str = "cpu",
                       target_frac: float | None = None) -> dict:
    """Run the whole pipeline into out_dir; returns {'rows': [...], 'search': {...}, 'report': path}.

    Under torchrun only the search runs on every rank; rank 0 alone retrains, exports and reports.
    `target_frac` sets the latency target to that fraction of the baseline's predicted latency.
    """
    out_dir = Path(out_dir)
    search_cfg = search_cfg or SearchConfig()
    train_cfg = train_cfg or TrainConfig()
    task = ClassificationTask()
    t0 = time.time()

    train_full, test_full, num_classes = load_classification(data, resolution, in_ch, augment=True)
    space = get_space("mbconv", preset=preset, resolution=resolution, in_ch=in_ch, num_classes=num_classes,
                      width_mult=width_mult)
    search_train, search_valid = split_train_valid(train_full, valid_size, seed=search_cfg.seed,
                                                   train_size=search_train_size)
    latency = build_latency_terms(space, device, vpunn_model_for(device, model_dir), lut)
    if target_frac is not None:
        if not 0 < target_frac <= 2:
            raise ValueError(f"target_frac must be in (0, 2], got {target_frac}")
        base_ms = latency.discrete(space.choices_from_arch(mobilenetv2_arch(space)))
        search_cfg = replace(search_cfg, target_ms=round(base_ms * target_frac, 6))
        _log(f"latency target {search_cfg.target_ms:.4f} ms = {target_frac:g} x baseline {base_ms:.4f} ms", quiet)
    _log(f"space {space.name}: {len(space.blocks)} searched blocks x {space.num_choices} candidates; "
         f"latency from {latency.source} ({device}); search on {len(search_train)} train / "
         f"{len(search_valid)} valid images", quiet)

    torch.manual_seed(search_cfg.seed)  # same initial weights on every rank and in a resumed run
    supernet = space.build_supernet()
    trainer = ProxylessSearch(supernet, space.candidate_mask(), task, search_train, search_valid, latency,
                              search_cfg, out_dir=out_dir / "search", progress=not quiet,
                              block_names=[b.name for b in space.blocks],
                              choice_names=[b.choice_names for b in space.blocks], torch_device=torch_device,
                              factors=space.arch_factors())
    result = trainer.run(resume=resume)
    if trainer.rank != 0:
        return {"rows": [], "search": None, "report": None}

    arch = space.derive(result.choices)
    arch["name"] = "searched" if search_cfg.target_ms is None else f"searched@{search_cfg.target_ms:g}ms"
    search_info = {"choices": result.choices, "argmax": result.argmax, "blocks": arch["blocks"],
                   "expected_latency_ms": result.expected_latency_ms,
                   "derived_latency_ms": result.derived_latency_ms, "target_ms": result.target_ms,
                   "device": device, "latency_source": latency.source, "search_seconds": time.time() - t0}
    msg = f"derived net: {' '.join(arch['blocks'])}\npredicted {device} latency {result.derived_latency_ms:.4f} ms"
    if result.target_ms:
        rel = result.derived_latency_ms / result.target_ms - 1.0
        msg += f" vs target {result.target_ms:.4f} ms ({rel:+.1%})"
        search_info["target_met"] = bool(result.derived_latency_ms <= result.target_ms * 1.05)
    _log(msg, quiet)
    (out_dir / "search").mkdir(parents=True, exist_ok=True)
    (out_dir / "search" / "result.json").write_text(json.dumps(search_info, indent=1))

    # Retrain from scratch with one recipe for every net (searched and baseline).
    retrain_set = subset(train_full, train_size, seed=train_cfg.seed)
    test_set = subset(test_full, test_size, seed=1)
    candidates = [(arch["name"], arch, False)]
    if baseline:
        candidates.append(("mobilenetv2-baseline", mobilenetv2_arch(space), True))
    device_terms = {device: latency}
    for dev in REPORT_DEVICES:
        if dev not in device_terms:
            device_terms[dev] = build_latency_terms(space, dev, vpunn_model_for(dev, model_dir))
    rows = []
    for name, a, is_baseline in candidates:
        torch.manual_seed(train_cfg.seed)
        model = build_model(a)
        trained = train_network(model, task, retrain_set, test_set, train_cfg, desc=f"retrain {name}",
                                progress=not quiet, torch_device=torch_device)
        choices = space.choices_from_arch(a)
        row = {"name": name, "is_baseline": is_baseline, "top1": trained["top1"], "params": count_params(model),
               "macs": a["macs"], "blocks": " ".join(a["blocks"]), "train_history": trained["history"],
               "target_ms": None if is_baseline else search_cfg.target_ms}
        for dev, terms in device_terms.items():
            row[f"lat_{dev}_ms"] = terms.discrete(choices)
        stem = name.replace("@", "_at_").replace("/", "_")
        save_model(model, a, out_dir / "models", stem)
        if export:
            onnx_path = out_dir / "models" / f"{stem}.onnx"
            xml_path = out_dir / "models" / f"{stem}.xml"
            row["onnx"] = export_onnx(model, space.input_size, onnx_path)
            row["openvino_ir"] = export_openvino(onnx_path, xml_path, model, space.input_size)
            row["_paths"] = (xml_path, onnx_path)
        rows.append(row)
        _log(f"{name}: top-1 {row['top1']:.2f} %, " + ", ".join(f"{d} {row[f'lat_{d}_ms']:.4f} ms"
                                                              for d in device_terms), quiet)

    if export and bench_repeats:
        measure_fps(rows, bench_repeats, quiet)
    for row in rows:
        row.pop("_paths", None)

    from .report import write_report

    notes = [f"search space {space.name}; search latency from {latency.source} on {device}; other devices: "
             + ("VPUNN models in " + str(model_dir) if model_dir else "theoretical estimates"),
             f"search: {json.dumps(asdict(search_cfg))}", f"retrain (same for all nets): {json.dumps(asdict(train_cfg))}",
             f"search data: {len(search_train)} train / {len(search_valid)} valid; retrain {len(retrain_set)}, "
             f"test {len(test_set)} images",
             f"fps: batch 1, OpenVINO CPU (INFERENCE_PRECISION_HINT f32) and onnxruntime, {FPS_ROUNDS} interleaved "
             f"rounds of {bench_repeats} runs after warm-up per model; median of all (shared machine: expect noise)",
             f"derived predicted latency {result.derived_latency_ms:.4f} ms"
             + (f" vs target {result.target_ms:.4f} ms" if result.target_ms else ""),
             f"total time {time.time() - t0:.0f} s"]
    md = write_report(out_dir, rows, title="vpunas classification search report", notes=notes,
                      history=result.history)
    _log(f"report: {md}", quiet)
    return {"rows": rows, "search": search_info, "report": str(md), "space": space}
