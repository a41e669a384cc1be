"""Super-resolution end to end (the whitepaper's 2x SR task on VPU 2.7), on the shared NAS machinery:
data -> ProxylessNAS search of the EDSR space (`search.ProxylessSearch` with `SRTask`) -> derive -> retrain
(searched net and the EDSR3 baseline, same recipe, `search.train_network`) -> ONNX / OpenVINO IR (checked,
`export`) -> OpenVINO-CPU fps at 360x640 (`bench`) -> report (Table 2 style + PNG).

`run_sr(...)` takes explicit parameters; the CLI (`vpunas search sr`) and benchmarks/search_sr.py convert
their arguments.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F

from .data.sr import SRPair, SRPatchDataset, load_sr_split
from .metrics import psnr_y, ssim_y
from .spaces.edsr import EdsrArch, EdsrNet, EdsrSpace, dsp_op_names, edsr3_baseline

LATENCY_DEVICE = "VPU_2_7"  # the whitepaper's Meteor Lake NPU


class SRTask:
    """L1 loss (as EDSR); metric: mean PSNR on Y in dB over the batch, border of `scale` cropped.

    The batch metric works on float outputs (no 8-bit rounding) so it is cheap enough for every step; the
    reported numbers come from `evaluate_sr` on full held-out images.
    """

    metric_name = "psnr_y"

    def __init__(self, scale: int):
        self.scale = scale
        self._y = torch.tensor([65.481, 128.553, 24.966]).view(1, 3, 1, 1) / 255.0

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.l1_loss(output, target)

    def metric(self, output: torch.Tensor, target: torch.Tensor) -> float:
        w = self._y.to(output.device, output.dtype)
        s = self.scale
        d = ((output.clamp(0, 1) - target) * w).sum(1)[:, s:-s, s:-s] * 255.0  # Y difference on 0..255
        mse = d.pow(2).flatten(1).mean(1).clamp_min(1e-10)
        return float((10.0 * torch.log10(255.0**2 / mse)).mean())


class SRCentreCrops(torch.utils.data.Dataset):
    """Fixed-size centre crops of held-out images, so the shared trainer's batched `evaluate` can track
    PSNR during retraining (the final numbers use the full images)."""

    def __init__(self, pairs: list[SRPair], scale: int, lr_size: int = 64):
        self.items = []
        for p in pairs:
            h, w = p.lr.shape[-2:]
            c = min(lr_size, h, w)
            y, x = (h - c) // 2, (w - c) // 2
            self.items.append((p.lr[:, y:y + c, x:x + c], p.hr[:, y * scale:(y + c) * scale, x * scale:(x + c) * scale]))
        if len({tuple(i[0].shape) for i in self.items}) > 1:  # images smaller than lr_size: crop all to the smallest
            c = min(min(i[0].shape[-2:]) for i in self.items)
            self.items = [(lr[:, :c, :c], hr[:, :c * scale, :c * scale]) for lr, hr in self.items]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


@torch.no_grad()
def super_resolve(model: torch.nn.Module, lr: torch.Tensor) -> torch.Tensor:
    """Run `model` on one (3, h, w) LR image -> (3, H, W) clamped to [0, 1]."""
    model.eval()
    return model(lr.unsqueeze(0))[0].clamp(0.0, 1.0)


def evaluate_sr(model: torch.nn.Module, pairs: list[SRPair], scale: int) -> dict:
    """PSNR-Y / SSIM-Y (8-bit outputs, border of `scale` cropped) on full images; per-image and mean."""
    per_image = []
    for p in pairs:
        sr = super_resolve(model, p.lr)
        per_image.append({"image": p.name, "psnr_y": psnr_y(sr, p.hr, crop=scale), "ssim": ssim_y(sr, p.hr, crop=scale)})
    n = max(1, len(per_image))
    return {"psnr_y": sum(r["psnr_y"] for r in per_image) / n, "ssim": sum(r["ssim"] for r in per_image) / n,
            "per_image": per_image}


def bicubic_baseline(pairs: list[SRPair], scale: int) -> dict:
    """PSNR-Y / SSIM of plain bicubic up-sampling: the floor every trained net must beat."""
    class _Bicubic(torch.nn.Module):
        def forward(self, x):
            return F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)

    return evaluate_sr(_Bicubic(), pairs, scale)


# ------------------------------------------------------------------------------------------- latency
def plain_parts(ops_) -> list:
    """Expand composite ops (residual blocks, upsamplers) into the plain ops they run as."""
    out = []
    for op in ops_:
        out.extend(op.parts() if hasattr(op, "parts") else [op])
    return out


def cost_source(device: str = LATENCY_DEVICE, vpunn_model: str | Path | None = None):
    """The VPU cost source (VPUNN when a model file is given, else the theoretical model) for `device`."""
    from .lut import VpuCostSource

    return VpuCostSource(device, model=str(vpunn_model) if vpunn_model else None)


def arch_latency(arch: EdsrArch, in_hw=(360, 640), source=None) -> dict:
    """Predicted latency of a whole net (same cost source as the search's LUT), split into DPU and
    SHAVE (DSP) time, with the DSP kernels named. `source`: a `lut.VpuCostSource` (default: theoretical VPU 2.7)."""
    source = source if source is not None else cost_source()
    device = source.device
    parts = plain_parts(arch.ops(*in_hw))
    results = source.cost(parts)
    bad = [(p.key, r.error) for p, r in zip(parts, results) if not r.ok]
    if bad:
        raise ValueError(f"the {device} cost model refused {len(bad)} op(s), e.g. {bad[0][0]}: {bad[0][1]}")
    lat = [r.latency_ms for r in results]
    shave = [(p, r.shave_ms) for p, r in zip(parts, results) if r.shave_ms > 0]
    total = sum(lat)
    dsp_ms = sum(ms for _, ms in shave)
    names: dict = {}
    for p, ms in shave:
        for s in p.shave_ops(device):
            n, t = names.get(s.name, (0, 0.0))
            names[s.name] = (n + 1, t + ms)
    dsp_layers = ", ".join(f"{n}x {k} ({t:.2f} ms)" for k, (n, t) in names.items()) or "none"
    return {"latency_ms": total, "fps": 1000.0 / total if total > 0 else math.inf, "dpu_ms": total - dsp_ms,
            "dsp_ms": dsp_ms, "dsp_layers": dsp_layers, "dsp_ops": dsp_op_names(parts, device)}


# ------------------------------------------------------------------------------------------ pipeline
def _log(msg: str, quiet: bool) -> None:
    if not quiet:
        print(msg, flush=True)


def markdown_table(rows: list[dict]) -> str:
    """The whitepaper's Table 2 layout: quality, size, predicted VPU 2.7 speed, measured CPU fps, DSP layers."""
    cols = [("name", "model", "{}"), ("blocks", "architecture", "{}"), ("psnr_y", "PSNR-Y dB", "{:.2f}"),
            ("ssim", "SSIM", "{:.4f}"), ("params", "params", "{:,}"), ("gmacs", "GMACs", "{:.2f}"),
            ("lat_VPU_2_7_ms", "VPU 2.7 ms", "{:.2f}"), ("fps_VPU_2_7", "VPU 2.7 fps", "{:.1f}"),
            ("dsp_ms", "of which DSP ms", "{:.2f}"), ("fps_openvino_cpu", "OpenVINO CPU fps", "{:.2f}"),
            ("dsp_layers", "layers on the DSP (SHAVE)", "{}")]
    cols = [c for c in cols if any(r.get(c[0]) is not None for r in rows)]
    lines = ["| " + " | ".join(h for _, h, _ in cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(f.format(r[k]) if r.get(k) is not None else "-" for k, _, f in cols) + " |")
    return "\n".join(lines)


def _comparison(searched: dict, base: dict) -> list[str]:
    d_psnr = searched["psnr_y"] - base["psnr_y"]
    speed = base["lat_VPU_2_7_ms"] / searched["lat_VPU_2_7_ms"]
    out = [f"- PSNR-Y: {searched['psnr_y']:.3f} vs {base['psnr_y']:.3f} dB ({d_psnr:+.3f} dB; goal > 0): "
           + ("met" if d_psnr > 0 else "NOT met"),
           f"- predicted VPU 2.7 fps at 360x640: {searched['fps_VPU_2_7']:.1f} vs {base['fps_VPU_2_7']:.1f} "
           f"({speed:.2f}x; goal >= 3x): " + ("met" if speed >= 3.0 else "NOT met")]
    if searched.get("fps_openvino_cpu") and base.get("fps_openvino_cpu"):
        out.append(f"- measured OpenVINO CPU fps at 360x640: {searched['fps_openvino_cpu'] / base['fps_openvino_cpu']:.2f}x")
    return out


def per_image_table(rows: list[dict], bicubic: dict) -> str:
    """PSNR-Y / SSIM of every held-out image for each net and bicubic: a mean can hide a loss on one image."""
    cols = [(r["name"], r["per_image"]) for r in rows if r.get("per_image")] + [("bicubic", bicubic["per_image"])]
    lines = ["| image | " + " | ".join(f"{n} PSNR-Y / SSIM" for n, _ in cols) + " |", "|" + "---|" * (len(cols) + 1)]
    for i, img in enumerate(cols[0][1]):
        cells = [f"{per[i]['psnr_y']:.3f} / {per[i]['ssim']:.4f}" for _, per in cols]
        lines.append(f"| {img['image']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _load_retrained(models_dir: Path, name: str, arch: dict, train_cfg) -> tuple | None:
    """(model, {'history'}) of a net retrained earlier with the same architecture and recipe, else None."""
    from .export import load_arch, load_model

    files = [models_dir / f"{name}{ext}" for ext in (".arch.json", ".pt", ".train.json")]
    if not all(f.is_file() for f in files):
        return None
    info = json.loads(files[2].read_text())
    if load_arch(files[0]).get("block_strings") != arch["block_strings"] or info.get("train_cfg") != asdict(train_cfg):
        return None  # another net or recipe: retrain
    return load_model(files[0], files[1]), {"history": info.get("history", [])}


def run_sr(out_dir: str | Path, *, data: str | Path | None = None, scale: int = 2, width: int = 32,
           max_blocks: int = 4, kernels=(1, 3, 5), mids=(16, 32), acts=("relu", "leaky_relu"),
           upsamplers=("nearest", "bilinear", "d2s"), up_widths=(16, 3), bench_hw=(360, 640), model_dir: str | Path | None = None,
           lut: str | Path | None = None, search_cfg=None, train_cfg=None, lr_patch: int = 32,
           baseline: bool = True, export: bool = True, bench_repeats: int = 5, resume: bool = False,
           quiet: bool = False, torch_device: str = "cpu") -> dict:
    """Search, derive, retrain (searched + EDSR3 baseline), export, bench and report into out_dir.

    Latency: the search's LUT and every predicted number are for VPU 2.7 at a `bench_hw` LR input
    (VPUNN for the DPU layers when `model_dir` holds vpu_2_7.vpunn, else the theoretical model; SHAVE
    kernels from the cost source's DSP model). Returns {'rows', 'search', 'report'}.
    """
    from .classification import vpunn_model_for
    from .export import export_onnx, export_openvino, save_model
    from .report import decision_table, plot
    from .lut import LatencyTable
    from .search import (LatencyTerms, ProxylessSearch, SearchConfig, TrainConfig, build_latency_terms,
                         train_network)

    out_dir = Path(out_dir)
    search_cfg = search_cfg or SearchConfig(epochs=4, warmup_epochs=1, batch_size=16, w_lr=0.05, weight_decay=0.0,
                                            max_steps_per_epoch=100, lambda_lat=0.02)
    train_cfg = train_cfg or TrainConfig(epochs=4, batch_size=16, lr=0.05, weight_decay=0.0, max_steps_per_epoch=150)
    task = SRTask(scale)
    t0 = time.time()

    train_pairs, eval_pairs = load_sr_split(scale, data)
    space = EdsrSpace(scale=scale, width=width, max_blocks=max_blocks, kernels=kernels, mids=mids, acts=acts,
                      upsamplers=upsamplers, up_widths=up_widths, input_hw=bench_hw)
    source = cost_source(LATENCY_DEVICE, vpunn_model_for(LATENCY_DEVICE, model_dir))
    if lut is not None:
        latency = build_latency_terms(space, LATENCY_DEVICE, lut_path=lut)
    else:
        table = LatencyTable.build(space, source, progress=False)
        f, mask = table.matrix(space)
        src = source.metadata()
        latency = LatencyTerms(torch.as_tensor(f), torch.as_tensor(mask), float(table.fixed_latency_ms(space)),
                               device=LATENCY_DEVICE, source=f"{src['kind']} {src.get('model') or ''}".strip())
    n_patches = 1_000_000  # indices are (seed, epoch, index)-seeded draws: effectively fresh patches per step
    search_train = SRPatchDataset(train_pairs, scale, lr_patch, n_patches, seed=search_cfg.seed)
    search_valid = SRPatchDataset(train_pairs, scale, lr_patch, n_patches, seed=search_cfg.seed + 7919)
    _log(f"space edsr: {len(space.blocks)} search blocks ({max_blocks} residual + upsampler), "
         f"{len(space.res_choices) + 1} candidates per residual block; latency from {latency.source} "
         f"({LATENCY_DEVICE}, {bench_hw[0]}x{bench_hw[1]} input); {len(train_pairs)} train / {len(eval_pairs)} "
         f"held-out images ({', '.join(p.name for p in eval_pairs)})", quiet)

    torch.manual_seed(search_cfg.seed)
    supernet = space.build_supernet()
    trainer = ProxylessSearch(supernet, space.candidate_mask(), task, search_train, search_valid, latency,
                              search_cfg, out_dir=out_dir / "search", progress=not quiet,
                              block_names=[b.name for b in space.blocks], choice_names=space.choice_names(),
                              torch_device=torch_device, factors=space.arch_factors())
    result = trainer.run(resume=resume)
    if trainer.rank != 0:
        return {"rows": [], "search": None, "report": None}
    arch_dict = space.derive(result.choices)
    searched_arch = EdsrArch.from_dict(arch_dict)
    search_info = {"choices": result.choices, "argmax": result.argmax, "blocks": arch_dict["block_strings"],
                   "expected_latency_ms": result.expected_latency_ms, "derived_latency_ms": result.derived_latency_ms,
                   "latency_source": latency.source, "search_seconds": time.time() - t0}
    (out_dir / "search").mkdir(parents=True, exist_ok=True)
    (out_dir / "search" / "result.json").write_text(json.dumps(search_info, indent=1))
    _log(f"derived net: {' '.join(arch_dict['block_strings'])}; predicted {LATENCY_DEVICE} "
         f"{result.derived_latency_ms:.2f} ms at {bench_hw[0]}x{bench_hw[1]}", quiet)

    retrain_set = SRPatchDataset(train_pairs, scale, lr_patch, n_patches, seed=train_cfg.seed + 104729)
    monitor_set = SRCentreCrops(eval_pairs, scale)
    nets = [("searched", searched_arch, False)]
    if baseline:
        nets.append(("EDSR3-baseline", edsr3_baseline(scale), True))
    rows = []
    for name, arch, is_baseline in nets:
        a = arch.to_dict(bench_hw)
        trained = _load_retrained(out_dir / "models", name, a, train_cfg) if resume else None
        if trained is not None:
            model, trained = trained
            _log(f"{name}: retrained weights from {out_dir / 'models'} (--resume)", quiet)
        else:
            torch.manual_seed(train_cfg.seed)  # same init / data order recipe for every net
            model = EdsrNet(arch)
            trained = train_network(model, task, retrain_set, monitor_set, train_cfg, desc=f"retrain {name}",
                                    progress=not quiet, torch_device=torch_device)
            save_model(model, a, out_dir / "models", name)
            (out_dir / "models" / f"{name}.train.json").write_text(
                json.dumps({"train_cfg": asdict(train_cfg), "history": trained["history"]}, indent=1))
        quality = evaluate_sr(model, eval_pairs, scale)
        lat = arch_latency(arch, bench_hw, source)
        row = {"name": name, "is_baseline": is_baseline, "blocks": " ".join(arch.block_strings()[1:]),
               "psnr_y": quality["psnr_y"], "ssim": quality["ssim"], "per_image": quality["per_image"],
               "params": int(sum(p.numel() for p in model.parameters())), "gmacs": a["macs"] / 1e9,
               "lat_VPU_2_7_ms": lat["latency_ms"], "fps_VPU_2_7": lat["fps"], "dsp_ms": lat["dsp_ms"],
               "dsp_layers": lat["dsp_layers"], "train_history": trained["history"]}
        if export:
            onnx_path, xml_path = out_dir / "models" / f"{name}.onnx", out_dir / "models" / f"{name}.xml"
            in_size = (3, *bench_hw)
            row["onnx"] = export_onnx(model, in_size, onnx_path)
            row["openvino_ir"] = export_openvino(onnx_path, xml_path, model, in_size)
            if bench_repeats:
                from .bench import bench_openvino

                ov_res = bench_openvino(xml_path, "CPU", "f32", warmup=2, repeats=bench_repeats)
                row.update(fps_openvino_cpu=ov_res["fps"], bench=ov_res)
        rows.append(row)
        _log(f"{name}: PSNR-Y {row['psnr_y']:.2f} dB, SSIM {row['ssim']:.4f}, {LATENCY_DEVICE} "
             f"{row['lat_VPU_2_7_ms']:.2f} ms ({row['fps_VPU_2_7']:.1f} fps), DSP: {row['dsp_layers']}", quiet)

    bicubic = bicubic_baseline(eval_pairs, scale)
    lines = ["# vpunas super-resolution search report", "", markdown_table(rows), ""]
    if baseline:
        lines += ["**searched vs EDSR3-baseline**", ""] + _comparison(rows[0], rows[1]) + [""]
    lines += ["## Per held-out image", "", per_image_table(rows, bicubic), ""]
    notes = [f"x{scale} SR; held-out images: {', '.join(p.name for p in eval_pairs)} (full images); PSNR / SSIM on "
             f"Y (BT.601), 8-bit outputs, border of {scale} px cropped; bicubic up-sampling scores "
             f"{bicubic['psnr_y']:.2f} dB / {bicubic['ssim']:.4f}",
             f"latency: {LATENCY_DEVICE} at {bench_hw[0]}x{bench_hw[1]} LR input from {latency.source}; DPU layers + SHAVE "
             "kernels (LeakyReLU, depth-to-space, interpolation) summed per op",
             f"search: {json.dumps(asdict(search_cfg))}",
             f"retrain (same for both nets): {json.dumps(asdict(train_cfg))}, L1 loss, {lr_patch}x{lr_patch} LR patches",
             f"fps: batch 1 at {bench_hw[0]}x{bench_hw[1]}, OpenVINO CPU f32, median of {bench_repeats} runs (shared "
             "2-core machine: noisy)", f"total time {time.time() - t0:.0f} s"]
    if result.history:
        lines += ["## Search decisions (last epoch)", "",
                  decision_table(result.history[-1], [b.name for b in space.blocks], space.choice_names()), ""]
    lines += ["## Notes", ""] + [f"- {n}" for n in notes] + ["", "![PSNR vs latency](report.png)", ""]
    out_dir.mkdir(parents=True, exist_ok=True)
    plot(rows, out_dir / "report.png", history=result.history, metric="psnr_y", latency_key="lat_VPU_2_7_ms")
    md = out_dir / "report.md"
    md.write_text("\n".join(lines))
    (out_dir / "report.json").write_text(json.dumps({"rows": rows, "search": search_info, "bicubic": bicubic,
                                                     "notes": notes}, indent=1, default=str))
    _log(f"report: {md}", quiet)
    return {"rows": rows, "search": search_info, "report": str(md), "bicubic": bicubic,
            "table": markdown_table(rows)}
