"""`vpunas search sr ...`: EDSR-space super-resolution search (added to `vpunas search` by commands.search)."""
from __future__ import annotations

import argparse


def _ints(text: str) -> tuple:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _names(text: str) -> tuple:
    return tuple(v.strip() for v in text.split(",") if v.strip())


def _run_sr(args) -> int:
    from ..search import SearchConfig, TrainConfig
    from ..sr import LATENCY_DEVICE, run_sr
    from .search import _init_distributed, _search_config

    if args.device != LATENCY_DEVICE:
        raise ValueError(f"the SR search targets {LATENCY_DEVICE} (the whitepaper's Meteor Lake NPU); got --device {args.device}")
    torch_device = _init_distributed()
    search_cfg: SearchConfig = _search_config(args)
    train_cfg = TrainConfig(epochs=args.train_epochs, batch_size=args.train_batch_size, lr=args.train_lr,
                            weight_decay=args.weight_decay, seed=args.seed, max_steps_per_epoch=args.train_max_steps,
                            optimizer=args.optimizer)
    h, w = args.bench_size
    run_sr(args.out, data=args.data, scale=args.scale, width=args.width, max_blocks=args.max_blocks,
           kernels=args.kernels, mids=args.mids, acts=args.acts, upsamplers=args.upsamplers,
           up_widths=args.up_widths, bench_hw=(h, w),
           model_dir=args.vpunn_dir, lut=args.lut, search_cfg=search_cfg, train_cfg=train_cfg,
           lr_patch=args.patch, baseline=not args.no_baseline, export=not args.no_export,
           bench_repeats=args.bench_repeats, resume=args.resume, torch_device=torch_device)
    return 0


def add_sr_parser(tasks, add_search_options) -> None:
    s = tasks.add_parser("sr", help="EDSR-style x2/x3/x4 super-resolution search for VPU 2.7",
                         formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    s.add_argument("--data", default=None, help="folder of HR images (DIV2K layout, train/ + val/, or flat); "
                   "default: scikit-image's bundled photos, holding out astronaut, chelsea, coffee")
    s.add_argument("--out", default="runs/search-sr", help="output directory")
    s.add_argument("--scale", type=int, default=2, choices=(2, 3, 4))
    s.add_argument("--width", type=int, default=32, help="trunk channels (multiple of 16)")
    s.add_argument("--max-blocks", type=int, default=4, help="searchable residual blocks (each may be skipped)")
    s.add_argument("--kernels", type=_ints, default=(1, 3, 5), help="kernel choices of each conv")
    s.add_argument("--mids", type=_ints, default=(16, 32), help="residual-block widths (multiples of 16)")
    s.add_argument("--acts", type=_names, default=("relu", "leaky_relu"), help="activation choices")
    s.add_argument("--upsamplers", type=_names, default=("nearest", "bilinear", "d2s"), help="upsampler choices")
    s.add_argument("--up-widths", type=_ints, default=(16, 3),
                   help="narrower channel counts at the HR size to offer the upsampler (the trunk width always is); "
                        "3 = the LR conv writes the image and no conv runs at the HR size (ESPCN's sub-pixel tail; d2s only)")
    s.add_argument("--patch", type=int, default=32, help="LR training patch size")
    s.add_argument("--bench-size", type=_ints, default=(360, 640), help="LR input H,W for latency and fps")
    s.add_argument("--train-epochs", type=int, default=4, help="retraining epochs (searched net and EDSR3)")
    s.add_argument("--train-batch-size", type=int, default=16)
    s.add_argument("--train-lr", type=float, default=0.05)
    s.add_argument("--train-max-steps", type=int, default=150, help="cap on retraining steps per epoch")
    s.add_argument("--no-baseline", action="store_true", help="skip the EDSR3 baseline")
    s.add_argument("--no-export", action="store_true", help="skip ONNX / OpenVINO export and fps")
    s.add_argument("--bench-repeats", type=int, default=5, help="timed OpenVINO runs per fps measurement")
    add_search_options(s)
    # factorized: the EDSR space has dozens of candidates per block, too many for one logit each
    s.set_defaults(func=_run_sr, device="VPU_2_7", batch_size=16, epochs=4, max_steps=100, weight_decay=0.0,
                   lambda_lat=0.02, arch_params="factorized")
