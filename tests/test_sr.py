"""Super-resolution part: metrics, data, EDSR space, export parity, SHAVE charges in the latency model.

All nets here are tiny (width 16, 12x12 inputs) so the whole file runs in a few seconds.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vpunas.data.sr import SRPatchDataset, bicubic_downscale, make_pair, split_image_folder
from vpunas.metrics import psnr_y, rgb_to_y, ssim_y
from vpunas.ops import Activation, Add, Conv2d, DepthToSpace, Upsample
from vpunas.spaces.edsr import (EdsrArch, EdsrNet, EdsrSpace, ResBlockOp, ResChoice, Upsampler, UpsamplerOp,
                                edsr3_baseline, parse_block_string)


# ------------------------------------------------------------------------------------------- metrics
def test_psnr_y_matches_hand_computation_and_crops_the_border():
    hr = np.full((8, 8, 3), 100, dtype=np.uint8)
    sr = hr.copy()
    sr[2:4, 2:6, 0] += 10  # 8 of the 16 pixels left after cropping 2: R + 10 -> Y + 65.481 * 10 / 255
    sr[0, :, :] = 0  # inside the cropped border: must not count
    sr[:, 7, :] = 255
    # Hand computation: dY = 2.56788235, MSE = 8/16 * dY^2 = 3.29700989, PSNR = 10 log10(255^2 / MSE)
    assert psnr_y(sr, hr, crop=2) == pytest.approx(42.9496011, abs=1e-6)
    # float input in [0, 1] is quantised to 8 bits like a saved PNG: same answer
    assert psnr_y(sr.astype(np.float32) / 255, torch.from_numpy(hr).permute(2, 0, 1) / 255.0, crop=2) == \
        pytest.approx(42.9496011, abs=1e-6)
    assert psnr_y(hr, hr, crop=2) == math.inf
    assert psnr_y(sr, hr, crop=0) < 30  # the border now counts


def test_y_channel_is_bt601_studio_range():
    assert rgb_to_y(np.zeros((1, 1, 3), np.uint8))[0, 0] == pytest.approx(16.0)
    assert rgb_to_y(np.full((1, 1, 3), 255, np.uint8))[0, 0] == pytest.approx(235.0)


def test_ssim_hand_computation_on_flat_images_and_skimage_agreement():
    white, black = np.full((16, 16, 3), 255, np.uint8), np.zeros((16, 16, 3), np.uint8)
    # flat images: no variance, SSIM = (2 mu_a mu_b + C1) / (mu_a^2 + mu_b^2 + C1), Y = 235 and 16, C1 = 6.5025
    assert ssim_y(white, black) == pytest.approx((2 * 235 * 16 + 6.5025) / (235**2 + 16**2 + 6.5025), rel=1e-9)
    assert ssim_y(white, white) == pytest.approx(1.0)
    skm = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
    ref = skm.structural_similarity(rgb_to_y(a)[2:-2, 2:-2], rgb_to_y(b)[2:-2, 2:-2], data_range=255,
                                    gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    assert ssim_y(a, b, crop=2) == pytest.approx(ref, abs=1e-9)


def test_metrics_reject_bad_input():
    with pytest.raises(ValueError, match="sizes differ"):
        psnr_y(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 6, 3), np.uint8))
    with pytest.raises(ValueError, match="RGB"):
        psnr_y(np.zeros((8, 8), np.uint8), np.zeros((8, 8), np.uint8))


# ---------------------------------------------------------------------------------------------- data
def test_patches_are_aligned_with_the_bicubic_lr_image():
    g = torch.Generator().manual_seed(0)
    pair = make_pair("rand", torch.rand(3, 41, 38, generator=g), scale=2)
    assert tuple(pair.hr.shape) == (3, 40, 38) and tuple(pair.lr.shape) == (3, 20, 19)
    assert torch.allclose(pair.lr, bicubic_downscale(pair.hr, 2))
    ds = SRPatchDataset([pair], scale=2, lr_patch=6, length=20, seed=1, augment=False)
    lr, hr = ds[3]
    assert tuple(lr.shape) == (3, 6, 6) and tuple(hr.shape) == (3, 12, 12)
    # the LR patch is exactly the bicubic downscale of its HR patch away from the patch border
    ys = [(y, x) for y in range(15) for x in range(14)
          if torch.equal(pair.lr[:, y:y + 6, x:x + 6], lr)]
    assert len(ys) == 1
    y, x = ys[0]
    assert torch.equal(pair.hr[:, 2 * y:2 * y + 12, 2 * x:2 * x + 12], hr)
    assert torch.equal(ds[3][0], lr)  # reproducible per index


def test_image_folder_split(tmp_path):
    from PIL import Image

    for i in range(12):
        Image.fromarray(np.full((20, 20, 3), i * 10, np.uint8)).save(tmp_path / f"img{i:02d}.png")
    train, held = split_image_folder(tmp_path)
    assert [p.name for p in held] == ["img00.png", "img10.png"] and len(train) == 10
    with pytest.raises(FileNotFoundError):
        split_image_folder(tmp_path / "missing")


# --------------------------------------------------------------------------------------------- space
def _tiny_space(**kw):
    args = dict(width=16, max_blocks=2, kernels=(1, 3), mids=(16,), input_hw=(12, 12))
    args.update(kw)
    return EdsrSpace(**args)


def test_supernet_derive_matches_the_chosen_paths():
    from vpunas.supernet import PathSample

    space = _tiny_space()
    supernet = space.build_supernet()
    assert [len(b.candidates) for b in space.blocks] == [1 + 4 * 2, 1 + 4 * 2, 3]
    x = torch.rand(1, 3, 12, 12)
    for idx in ([0, 3, 2], [4, 0, 0], [8, 1, 1]):
        net = space.derive_model(supernet, idx).eval()
        ref = supernet(x, [PathSample((i,)) for i in idx])
        assert net(x).shape == (1, 3, 24, 24)
        assert torch.allclose(net(x), ref, atol=1e-5)
    arch = space.arch_from_indices([0, 3, 2])
    assert EdsrArch.from_dict(arch.to_dict()) == arch
    assert space.choices_from_arch(space.derive([0, 3, 2])) == [0, 3, 2]
    from vpunas.export import build_model
    from vpunas.spaces import get_space

    assert isinstance(build_model(space.derive([0, 3, 2])), EdsrNet)
    assert get_space("edsr", width=16).config["width"] == 16
    with pytest.raises(ValueError, match="not in this space"):
        space.choices_from_arch(edsr3_baseline())
    assert parse_block_string("res_k3x1_m32_lrelu") == ResChoice(3, 1, 32, "leaky_relu")
    with pytest.raises(ValueError, match="out of range"):
        space.arch_from_indices([0, 99, 0])


@pytest.mark.parametrize("upsampler", ["nearest", "bilinear", "d2s"])
@pytest.mark.parametrize("act", ["relu", "leaky_relu"])
def test_each_upsampler_and_activation_exports_to_onnx_and_matches_torch(tmp_path, upsampler, act):
    ort = pytest.importorskip("onnxruntime")
    arch = EdsrArch(32, (ResChoice(3, 1, 16, act),), upsampler, scale=2, up_width=16 if act == "relu" else 32)
    net = EdsrNet(arch).eval()
    x = torch.rand(1, 3, 12, 12)
    path = tmp_path / "sr.onnx"
    torch.onnx.export(net, (x,), str(path), dynamo=False, input_names=["lr"], output_names=["sr"], opset_version=17)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = sess.run(None, {"lr": x.numpy()})[0]
    np.testing.assert_allclose(out, net(x).detach().numpy(), atol=1e-5)
    ops = {n.op_type for n in __import__("onnx").load(str(path)).graph.node}
    assert ("LeakyRelu" in ops) == (act == "leaky_relu")
    assert ("DepthToSpace" in ops) == (upsampler == "d2s")
    assert ("Resize" in ops) == (upsampler != "d2s")
    n_params = sum(p.numel() for p in net.parameters())
    assert n_params == sum(op.params for op in arch.ops(12, 12))  # the LUT's op list is the torch net


def test_narrow_upsampler_candidates_are_cheaper_and_derive():
    from vpunas.supernet import PathSample

    space = _tiny_space(width=32, up_widths=(16,))
    assert space.up_choices == (("nearest", 32), ("bilinear", 32), ("d2s", 32),
                                ("nearest", 16), ("bilinear", 16), ("d2s", 16))
    ups = space.blocks[-1].candidates
    assert ups[5].parts()[0] == Conv2d(32, 64, 3, 1, 12, 12) and ups[5].parts()[1] == DepthToSpace(64, 2, 12, 12)
    assert ups[5].macs < ups[2].macs  # d2s: the expand conv shrinks
    # interpolation: an extra LR conv, but the DSP kernel moves half the channels
    assert ups[3].shave_ops("VPU_2_7")[0].in_shape == (16, 12, 12)
    assert ups[0].shave_ops("VPU_2_7")[0].in_shape == (32, 12, 12)
    supernet, x = space.build_supernet(), torch.rand(1, 3, 12, 12)
    for up in range(6):
        idx = [1, 0, up]
        net = space.derive_model(supernet, idx).eval()
        assert torch.allclose(net(x), supernet(x, [PathSample((i,)) for i in idx]), atol=1e-5)
        assert space.choices_from_arch(space.derive(idx)) == idx


@pytest.mark.parametrize("upsampler", ["nearest", "bilinear", "d2s"])
def test_image_width_upsampler_has_no_hr_conv_exports_and_derives(tmp_path, upsampler):
    ort = pytest.importorskip("onnxruntime")
    from vpunas.supernet import PathSample

    op = UpsamplerOp(upsampler, 2, 32, 12, 12, up_ch=3)
    if upsampler == "d2s":  # LR conv, anchor (1x1 conv of the image + add), the DSP kernel; nothing at the HR size
        assert op.parts() == [Conv2d(32, 12, 3, 1, 12, 12), Conv2d(3, 12, 1, 1, 12, 12), Add(12, 12, 12),
                              DepthToSpace(12, 2, 12, 12)]
    else:
        assert op.parts() == [Conv2d(32, 3, 3, 1, 12, 12), Add(3, 12, 12), Upsample(upsampler, 2, 3, 12, 12)]
    # the tail predicts the residual over nearest up-sampling: with its LR conv at 0 it is exactly nearest
    up = Upsampler(32, upsampler, 2, up_ch=3)
    conv = up.expand if upsampler == "d2s" else up.reduce
    torch.nn.init.zeros_(conv.weight), torch.nn.init.zeros_(conv.bias)
    img = torch.rand(1, 3, 6, 6)
    mode = {"align_corners": False} if upsampler == "bilinear" else {}
    want = F.interpolate(img, scale_factor=2, mode="nearest" if upsampler == "d2s" else upsampler, **mode)
    torch.testing.assert_close(up((torch.rand(1, 32, 6, 6), img)), want)
    space = _tiny_space(width=32, up_widths=(16, 3))
    # the space offers the image width with d2s only (an interpolated finished image has no new detail)
    assert space.up_choices[-1] == ("d2s", 3) and ("nearest", 3) not in space.up_choices
    assert "up=d2s_u3" in space.arch_factors().names[-1]  # one logit per upsampler candidate
    supernet, x = space.build_supernet(), torch.rand(1, 3, 12, 12)
    if upsampler == "d2s":
        idx = [1, 0, space.up_choices.index(("d2s", 3))]
        assert torch.allclose(space.derive_model(supernet, idx).eval()(x),
                              supernet(x, [PathSample((i,)) for i in idx]), atol=1e-5)
        assert space.choices_from_arch(space.derive(idx)) == idx
    net = EdsrNet(EdsrArch(32, (ResChoice(1, 3, 16, "relu"), None), upsampler, up_width=3)).eval()
    assert net.arch.block_strings()[-1] == f"up_{upsampler}_u3_x2"
    assert sum(p.numel() for p in net.parameters()) == sum(o.params for o in net.arch.ops(12, 12))
    path = tmp_path / "sr.onnx"
    torch.onnx.export(net, (x,), str(path), dynamo=False, input_names=["lr"], output_names=["sr"], opset_version=17)
    out = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"lr": x.numpy()})[0]
    assert out.shape == (1, 3, 24, 24)
    np.testing.assert_allclose(out, net(x).detach().numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="or 3"):
        _tiny_space(width=32, up_widths=(8,))


# ------------------------------------------------------------------------------------- latency model
def test_leaky_relu_and_depth_to_space_are_charged_on_shave_and_relu_is_not():
    relu = ResBlockOp(32, 32, 3, 3, "relu", 36, 64)
    leaky = ResBlockOp(32, 32, 3, 3, "leaky_relu", 36, 64)
    assert relu.shave_ops("VPU_2_7") == []
    assert [s.name for s in leaky.shave_ops("VPU_2_7")] == ["leakyrelu"]
    assert len(relu.dpu_layers("VPU_2_7")) == len(leaky.dpu_layers("VPU_2_7")) == 3  # conv, conv, add
    assert relu.macs == leaky.macs
    d2s = UpsamplerOp("d2s", 2, 32, 36, 64)
    assert [s.name for s in d2s.shave_ops("VPU_2_7")] == ["DepthToSpace"]
    assert [s.name for s in UpsamplerOp("nearest", 2, 32, 36, 64).shave_ops("VPU_2_7")] == ["interpolate_nearest"]
    assert d2s.parts()[1] == DepthToSpace(128, 2, 36, 64)


def test_edsr3_baseline_ops_and_params():
    arch = edsr3_baseline()
    net = EdsrNet(arch)
    n_params = sum(p.numel() for p in net.parameters())
    assert n_params == sum(op.params for op in arch.ops(10, 10))
    kinds = [type(op).__name__ for op in arch.ops(360, 640)]
    assert kinds == ["Conv2d", "ResBlockOp", "ResBlockOp", "ResBlockOp", "Add", "UpsamplerOp"]
    shave = [s.name for op in arch.ops(360, 640) for s in op.shave_ops("VPU_2_7")]
    assert shave == ["leakyrelu"] * 3 + ["DepthToSpace"]


def test_cost_source_charges_shave_time_for_leaky_relu_and_depth_to_space_only():
    """Through the LUT's own cost source (theoretical DPU model; SHAVE from VPUNN's files when present)."""
    from vpunas.lut import LatencyTable, VpuCostSource

    src = VpuCostSource("VPU_2_7", model=None)
    relu, leaky = ResBlockOp(32, 32, 3, 3, "relu", 36, 64), ResBlockOp(32, 32, 3, 3, "leaky_relu", 36, 64)
    d2s, nearest = UpsamplerOp("d2s", 2, 32, 36, 64), UpsamplerOp("nearest", 2, 32, 36, 64)
    r_relu, r_leaky, r_d2s, r_near = src.cost([relu, leaky, d2s, nearest])
    assert r_relu.ok and r_leaky.ok and r_d2s.ok
    assert r_relu.shave_ms == 0.0 and r_leaky.shave_ms > 0.0
    assert r_leaky.dpu_ms == pytest.approx(r_relu.dpu_ms)  # same convs; the DSP time is the difference
    assert r_d2s.shave_ms > 0.0
    # the search's LUT sees it: in every residual block LeakyReLU costs more than the same ReLU candidate
    space = _tiny_space(input_hw=(36, 64))
    table = LatencyTable.build(space, src, progress=False)
    f, mask = table.matrix(space)
    names = space.choice_names()[0]
    for i, name in enumerate(names):
        if name.endswith("_lrelu"):
            j = names.index(name.replace("_lrelu", "_relu"))
            assert f[0, i] > f[0, j]
    assert f[0, 0] == 0.0  # skip is free


def test_vpunn_costs_every_candidate_at_360x640(model_dir):
    """The whitepaper's 360x640 input does not fit on-chip memory; every candidate must still cost."""
    from vpunas.lut import LatencyTable, VpuCostSource

    space = EdsrSpace()  # default: width 32, 4 blocks, k 1/3/5, mids 16/32, both acts, all upsamplers
    table = LatencyTable.build(space, VpuCostSource("VPU_2_7", model=str(model_dir / "vpu_2_7.vpunn")), progress=False)
    assert not table.failed()
    f, mask = table.matrix(space)
    assert (f[mask][1:] >= 0).all() and table.fixed_latency_ms(space) > 0


def test_sr_task_metric_agrees_with_psnr_y():
    from vpunas.sr import SRTask

    g = torch.Generator().manual_seed(0)
    hr = torch.rand(2, 3, 20, 20, generator=g)
    sr = (hr + 0.03 * torch.randn(hr.shape, generator=g)).clamp(0, 1)
    ref = sum(psnr_y(sr[i], hr[i], crop=2) for i in range(2)) / 2  # 8-bit rounding: small difference
    assert SRTask(2).metric(sr, hr) == pytest.approx(ref, abs=0.3)
    assert SRTask(2).loss(sr, hr).item() == pytest.approx((sr - hr).abs().mean().item())


def test_run_sr_end_to_end_tiny(tmp_path):
    """search -> derive -> retrain -> ONNX / OpenVINO (checked) -> fps -> report, on a toy budget."""
    from vpunas.search import SearchConfig, TrainConfig
    from vpunas.sr import run_sr

    res = run_sr(tmp_path, width=16, max_blocks=1, kernels=(1,), mids=(16,), acts=("relu", "leaky_relu"),
                 upsamplers=("nearest", "d2s"), bench_hw=(12, 16), lr_patch=8, baseline=False, bench_repeats=1,
                 search_cfg=SearchConfig(epochs=2, warmup_epochs=1, batch_size=2, max_steps_per_epoch=2,
                                         arch_params="factorized"),
                 train_cfg=TrainConfig(epochs=1, batch_size=2, max_steps_per_epoch=2), quiet=True)
    row = res["rows"][0]
    assert row["onnx"]["max_abs_err_vs_torch"] < 1e-3 and row["openvino_ir"]["max_abs_err_vs_torch"] < 1e-3
    assert row["fps_openvino_cpu"] > 0 and row["lat_VPU_2_7_ms"] > 0 and math.isfinite(row["psnr_y"])
    report = (tmp_path / "report.md").read_text()
    assert report.count("| searched |") == 1
    decisions = report.split("## Search decisions")[1].split("## Notes")[0]
    assert "| res0 |" in decisions and "| upsampler |" in decisions and "act=relu" in decisions
    assert "up=nearest" in decisions and "skip logit" in decisions
    assert (tmp_path / "report.png").is_file() and (tmp_path / "models" / "searched.xml").is_file()
    per_image = report.split("## Per held-out image")[1].split("##")[0]
    for img in row["per_image"]:
        assert f"| {img['image']} | {img['psnr_y']:.3f} / {img['ssim']:.4f} | " in per_image


def test_per_image_table_lists_every_net_and_bicubic():
    from vpunas.sr import per_image_table

    def per(*vals):
        return [{"image": n, "psnr_y": v, "ssim": v / 40} for n, v in zip(("a", "b"), vals)]

    rows = [{"name": "searched", "per_image": per(30.0, 31.5)}, {"name": "EDSR3-baseline", "per_image": per(29.0, 32.0)}]
    table = per_image_table(rows, {"per_image": per(27.0, 28.4)}).splitlines()
    assert table[0] == "| image | searched PSNR-Y / SSIM | EDSR3-baseline PSNR-Y / SSIM | bicubic PSNR-Y / SSIM |"
    assert table[2] == "| a | 30.000 / 0.7500 | 29.000 / 0.7250 | 27.000 / 0.6750 |"
    assert table[3] == "| b | 31.500 / 0.7875 | 32.000 / 0.8000 | 28.400 / 0.7100 |"


def test_run_sr_resume_reuses_retrained_nets(tmp_path):
    """A GPU host trains (no export), this host resumes: same nets, no retraining; another recipe retrains."""
    from vpunas.search import SearchConfig, TrainConfig
    from vpunas.sr import run_sr

    kw = dict(width=16, max_blocks=1, kernels=(1,), mids=(16,), acts=("relu",), upsamplers=("nearest",),
              bench_hw=(12, 16), lr_patch=8, quiet=True,
              search_cfg=SearchConfig(epochs=1, warmup_epochs=0, batch_size=2, max_steps_per_epoch=2))
    first = run_sr(tmp_path, export=False, train_cfg=TrainConfig(epochs=1, batch_size=2, max_steps_per_epoch=3), **kw)
    weights = tmp_path / "models" / "EDSR3-baseline.pt"
    stamp = weights.stat().st_mtime_ns
    again = run_sr(tmp_path, export=False, resume=True,
                   train_cfg=TrainConfig(epochs=1, batch_size=2, max_steps_per_epoch=3), **kw)
    assert weights.stat().st_mtime_ns == stamp
    assert [r["psnr_y"] for r in again["rows"]] == [r["psnr_y"] for r in first["rows"]]
    run_sr(tmp_path, export=False, resume=True, train_cfg=TrainConfig(epochs=1, batch_size=2, max_steps_per_epoch=4),
           **kw)
    assert weights.stat().st_mtime_ns != stamp  # a different recipe is not silently reused


@pytest.mark.parametrize("scale", [3, 4])
def test_scales_3_and_4(scale):
    space = _tiny_space(scale=scale)
    x = torch.rand(1, 3, 10, 10)
    for up in ("nearest", "bilinear", "d2s"):
        net = EdsrNet(EdsrArch(16, (ResChoice(3, 3, 16, "relu"),), up, scale=scale))
        assert net(x).shape == (1, 3, 10 * scale, 10 * scale)
    assert [op.out_shape for op in space.blocks[-1].candidates] == [(3, 12 * scale, 12 * scale)] * 3
    pair = make_pair("rand", torch.rand(3, 50, 47), scale)
    assert pair.hr.shape[-1] == pair.lr.shape[-1] * scale and pair.hr.shape[-2] == pair.lr.shape[-2] * scale


def test_cli_has_the_sr_subcommand(capsys):
    from vpunas.cli import build_parser

    args = build_parser().parse_args(["search", "sr", "--scale", "3", "--kernels", "1,3", "--acts", "relu"])
    assert args.scale == 3 and args.kernels == (1, 3) and args.acts == ("relu",) and args.device == "VPU_2_7"
    assert args.arch_params == "factorized"  # the SR space's many candidates per block: factorized by default
    assert build_parser().parse_args(["search", "sr", "--arch-params", "joint"]).arch_params == "joint"
    assert callable(args.func)


def test_cli_search_options_reach_the_search_config():
    from vpunas.cli import build_parser
    from vpunas.commands.search import _search_config

    args = build_parser().parse_args(["search", "sr", "--auto-lambda", "--lambda-rate", "0.02", "--lambda-on", "derived",
                                      "--target-ms", "40", "--seed", "3", "--train-largest", "--lambda-band", "0.05",
                                      "--derive", "budget"])
    cfg = _search_config(args)
    assert (cfg.auto_lambda, cfg.lambda_rate, cfg.lambda_on, cfg.target_ms, cfg.seed, cfg.train_largest,
            cfg.lambda_band, cfg.derive) == (True, 0.02, "derived", 40.0, 3, True, 0.05, "budget")
