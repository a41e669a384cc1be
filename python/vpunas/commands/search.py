"""`vpunas search <task> ...`: one subparser per task (classification here; others add theirs below)."""
from __future__ import annotations

import argparse
import os


def _add_search_options(p: argparse.ArgumentParser) -> None:
    """ProxylessNAS options shared by every task."""
    g = p.add_argument_group("search")
    g.add_argument("--epochs", type=int, default=6, help="search epochs (default 6)")
    g.add_argument("--warmup-epochs", type=int, default=1, help="weight-only epochs first (default 1)")
    g.add_argument("--batch-size", type=int, default=64)
    g.add_argument("--w-lr", type=float, default=0.05, help="weight learning rate (cosine schedule)")
    g.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd",
                   help="weight optimizer of the search and the retraining (SGD + Nesterov, or Adam)")
    g.add_argument("--a-lr", type=float, default=0.01, help="architecture learning rate (Adam, beta1=0)")
    g.add_argument("--arch-every", type=int, default=1, help="an architecture step every N weight steps")
    g.add_argument("--weight-decay", type=float, default=4e-5, help="lambda_1 (L2 on the weights)")
    g.add_argument("--loss", choices=("add", "mul", "hinge", "abs"), default="add",
                   help="latency loss: add = CE + lambda*E[lat]; mul = CE*(E[lat]/target)^beta; "
                        "hinge = CE + lambda*max(0, E[lat]/target - 1); abs = CE + lambda*|E[lat]/target - 1|")
    g.add_argument("--lambda-lat", type=float, default=0.05, help="lambda_2 (initial value with --auto-lambda)")
    g.add_argument("--target-ms", type=float, default=None, help="latency target on --device, ms")
    g.add_argument("--target-frac", type=float, default=None,
                   help="latency target as a fraction of the MobileNetV2-style baseline's (instead of --target-ms)")
    g.add_argument("--beta", type=float, default=0.6, help="exponent of the 'mul' form")
    g.add_argument("--auto-lambda", action="store_true", help="adapt lambda so that E[lat] reaches --target-ms")
    g.add_argument("--lambda-on", choices=("expected", "derived"), default="expected",
                   help="what --auto-lambda steers to the target: E[lat] or the argmax net's latency")
    g.add_argument("--lambda-rate", type=float, default=0.1,
                   help="--auto-lambda's gain: lambda *= exp(rate * clip((latency / target - 1) / band, -1, 1)) "
                        "per arch step")
    g.add_argument("--lambda-band", type=float, default=1.0,
                   help="--auto-lambda moves at its full rate once the latency is this fraction off target")
    g.add_argument("--derive", choices=("argmax", "budget"), default="argmax",
                   help="final net: the argmax, or the most probable net within --target-ms")
    g.add_argument("--arch-params", choices=("joint", "factorized"), default="joint",
                   help="architecture logits: one per candidate (ProxylessNAS), or factorized (kernel, width, "
                        "activation, skip ... learned separately: far fewer parameters for large spaces)")
    g.add_argument("--train-largest", action="store_true",
                   help="each weight step also trains every block's most expensive candidate (sandwich rule), so "
                        "large candidates' shared weights are not the least trained")
    g.add_argument("--max-steps", type=int, default=None, help="cap on steps per epoch (quick runs)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--resume", action="store_true", help="continue from OUT/search/search_checkpoint.pt")
    g = p.add_argument_group("latency")
    g.add_argument("--device", default="VPU_2_0", choices=("VPU_2_0", "VPU_2_7", "VPU_4_0"),
                   help="target device of the latency loss (default VPU_2_0 as in the whitepaper)")
    g.add_argument("--vpunn-dir", default=None, help="directory with the .vpunn models (default: theoretical model)")
    g.add_argument("--lut", default=None, help="a saved LUT JSON (VPUNN, theoretical or measured) for the search")


def _search_config(args):
    from ..search import SearchConfig

    return SearchConfig(epochs=args.epochs, warmup_epochs=args.warmup_epochs, batch_size=args.batch_size,
                        w_lr=args.w_lr, optimizer=args.optimizer, a_lr=args.a_lr, arch_every=args.arch_every, weight_decay=args.weight_decay,
                        loss=args.loss, lambda_lat=args.lambda_lat, target_ms=args.target_ms, beta=args.beta,
                        auto_lambda=args.auto_lambda, lambda_rate=args.lambda_rate, lambda_on=args.lambda_on,
                        lambda_band=args.lambda_band, derive=args.derive, arch_params=args.arch_params, train_largest=args.train_largest, seed=args.seed,
                        max_steps_per_epoch=args.max_steps)


def _init_distributed() -> str:
    """Under torchrun: join the process group (nccl on GPU, gloo on CPU); returns the torch device."""
    import torch
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return "cuda" if torch.cuda.is_available() else "cpu"
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local)
        dist.init_process_group("nccl")
        return f"cuda:{local}"
    dist.init_process_group("gloo")
    return "cpu"


def _run_classification(args) -> int:
    from ..classification import run_classification
    from ..search import TrainConfig

    if args.target_ms is not None and args.target_frac is not None:
        raise ValueError("give either --target-ms or --target-frac, not both")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    torch_device = _init_distributed()
    train_cfg = TrainConfig(epochs=args.train_epochs, batch_size=args.train_batch_size, lr=args.train_lr,
                            weight_decay=args.weight_decay, seed=args.seed, max_steps_per_epoch=args.train_max_steps,
                            optimizer=args.optimizer)
    try:
        run_classification(args.out, data=args.data, preset=args.space, resolution=args.resolution,
                           in_ch=args.in_ch, width_mult=args.width_mult, device=args.device,
                           model_dir=args.vpunn_dir, lut=args.lut, search_cfg=_search_config(args),
                           train_cfg=train_cfg, search_train_size=args.search_train_size,
                           valid_size=args.valid_size, train_size=args.train_size, test_size=args.test_size,
                           baseline=not args.no_baseline, export=not args.no_export,
                           bench_repeats=args.bench_repeats, resume=args.resume, torch_device=torch_device,
                           target_frac=args.target_frac)
    finally:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("search", help="hardware-aware architecture search (ProxylessNAS)")
    tasks = p.add_subparsers(dest="task", metavar="TASK")
    tasks.required = True

    c = tasks.add_parser("classification", help="MBConv search on Fashion-MNIST or an ImageFolder tree",
                         formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    c.add_argument("--data", default=None, help="Fashion-MNIST IDX directory (default: Debian's "
                   "/usr/share/datasets/fashion-mnist) or an ImageFolder root with train/ and val/")
    c.add_argument("--out", default="runs/search-classification", help="output directory")
    c.add_argument("--space", default="small-32", choices=("small-32", "mobilenetv2-224"), help="space preset")
    c.add_argument("--resolution", type=int, default=28, help="input resolution (28 = Fashion-MNIST native)")
    c.add_argument("--in-ch", type=int, default=1, help="input channels (1 = grayscale)")
    c.add_argument("--width-mult", type=float, default=1.0, help="channel multiplier (rounded to 16s)")
    c.add_argument("--search-train-size", type=int, default=None, help="images for weight steps (default all)")
    c.add_argument("--valid-size", type=int, default=5000, help="held-out train images for architecture steps")
    c.add_argument("--train-size", type=int, default=None, help="images for the retraining (default all)")
    c.add_argument("--test-size", type=int, default=None, help="test images for the final accuracy (default all)")
    c.add_argument("--train-epochs", type=int, default=5, help="retraining epochs (searched net and baseline)")
    c.add_argument("--train-batch-size", type=int, default=128)
    c.add_argument("--train-lr", type=float, default=0.1)
    c.add_argument("--train-max-steps", type=int, default=None, help="cap on retraining steps per epoch")
    c.add_argument("--no-baseline", action="store_true", help="skip the MobileNetV2-style baseline")
    c.add_argument("--no-export", action="store_true", help="skip ONNX / OpenVINO export and fps")
    c.add_argument("--bench-repeats", type=int, default=200, help="timed runs per fps measurement")
    c.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's choice; 1 is fastest on a busy shared CPU)")
    _add_search_options(c)
    c.set_defaults(func=_run_classification)
    # Other tasks (e.g. `search sr`) register their subparser on `tasks` here.
    from .search_sr import add_sr_parser

    add_sr_parser(tasks, _add_search_options)
