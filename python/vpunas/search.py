"""ProxylessNAS search, task-agnostic: alternating weight steps (train split) and architecture steps
(validation split) on a supernet whose forward takes explicit `PathSample`s (see `vpunas.supernet`).

The trainer needs
  * a supernet: `supernet(x, samples) -> output`, with one PathSample per row of the candidate mask;
  * a `Task`: `loss(output, target) -> tensor`, `metric(output, target) -> float` (higher is better),
    `metric_name` (e.g. ClassificationTask: cross-entropy / top-1 %; an SR task: L1 / PSNR);
  * `LatencyTerms`: the LUT matrix F [N, M] (ms), the mask and the fixed ops' latency;
  * datasets (train / valid) and a `SearchConfig`.
Loss forms (`SearchConfig.loss`): 'add'  CE + lambda * E[lat]                  (whitepaper; lambda_1 ||w||^2
is the weight decay), 'mul' CE * (E[lat] / target)^beta, 'hinge' CE + lambda * max(0, E[lat]/target - 1),
'abs' CE + lambda * |E[lat]/target - 1| (TuNAS's absolute reward: spending less than the target costs too).
With `auto_lambda`, lambda starts at lambda_lat / target (so the latency term starts near lambda_lat) and is
scaled by exp(rate * clip((E[lat]/target - 1) / lambda_band, -1, 1)) after every architecture step, which
drives E[lat] to the target (with lambda_on="derived": the argmax architecture's latency instead of E[lat]).
With derive="budget" the final net is the most probable one whose latency fits the target (a knapsack over
blocks) instead of the plain argmax, which the controller may leave a little above it.

Everything random comes from one generator seeded by `seed` (paths) and per-epoch permutations (data),
so a run killed and `resume`d from its last epoch checkpoint reaches the same architecture; under
torchrun every rank draws the same paths, and architecture gradients are averaged over ranks, so all
ranks hold identical alpha.
"""
from __future__ import annotations

import json
import math
import os
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from .data.loaders import epoch_loader
from .supernet import ArchFactors, ArchParameters, FactorizedArchParameters, PathSample

LOSS_FORMS = ("add", "mul", "hinge", "abs")
WEIGHT_OPTIMIZERS = ("sgd", "adam")
ARCH_PARAMS = ("joint", "factorized")


def check_optimizer(name: str) -> None:
    if name not in WEIGHT_OPTIMIZERS:
        raise ValueError(f"unknown weight optimizer {name!r}; use one of {', '.join(WEIGHT_OPTIMIZERS)}")


def weight_optimizer(params, name: str, lr: float, momentum: float, weight_decay: float) -> torch.optim.Optimizer:
    """SGD + Nesterov (ProxylessNAS, classification) or Adam (the usual recipe for SR nets, which have no BN)."""
    check_optimizer(name)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=True, weight_decay=weight_decay)


class Task(Protocol):
    metric_name: str

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor: ...

    def metric(self, output: torch.Tensor, target: torch.Tensor) -> float: ...


class ClassificationTask:
    """Cross-entropy loss, top-1 accuracy in percent."""

    metric_name = "top1"

    def __init__(self, label_smoothing: float = 0.0):
        self.label_smoothing = label_smoothing

    def loss(self, output, target):
        return F.cross_entropy(output, target, label_smoothing=self.label_smoothing)

    def metric(self, output, target) -> float:
        return 100.0 * (output.argmax(1) == target).float().mean().item()


@dataclass
class LatencyTerms:
    """Per-block candidate latencies F [N, M] in ms (masked entries ignored) plus the fixed ops' sum."""

    table: torch.Tensor
    mask: torch.Tensor
    fixed_ms: float = 0.0
    device: str = ""
    source: str = ""

    def __post_init__(self):
        self.table = torch.as_tensor(self.table, dtype=torch.float64)
        self.mask = torch.as_tensor(self.mask, dtype=torch.bool)
        if self.table.shape != self.mask.shape:
            raise ValueError(f"latency table {tuple(self.table.shape)} and mask {tuple(self.mask.shape)} differ")
        if not torch.isfinite(self.table[self.mask]).all() or (self.table[self.mask] < 0).any():
            raise ValueError("latency table has negative or non-finite entries for valid candidates")

    def expected(self, alpha: torch.Tensor) -> torch.Tensor:
        """E[lat] (ms) under softmax(alpha), differentiable in alpha."""
        try:
            from .latency import expected_latency

            lat = expected_latency(alpha, self.table, self.mask)
        except (ImportError, AttributeError):  # extension built without the kernel: same sum in torch
            probs = torch.softmax(alpha.masked_fill(~self.mask, float("-inf")), dim=1)
            lat = (probs.double() * self.table.masked_fill(~self.mask, 0.0)).sum()
        return lat.to(alpha.dtype) + self.fixed_ms

    def discrete(self, choices) -> float:
        """Latency (ms) of one architecture."""
        idx = torch.as_tensor(list(choices), dtype=torch.long)
        if idx.shape[0] != self.table.shape[0] or not bool(self.mask[torch.arange(len(idx)), idx].all()):
            raise ValueError(f"choices {list(choices)} do not fit the latency table {tuple(self.table.shape)}")
        return float(self.table[torch.arange(len(idx)), idx].sum()) + self.fixed_ms


@dataclass
class SearchConfig:
    epochs: int = 10
    warmup_epochs: int = 2  # weight-only epochs before architecture steps start
    batch_size: int = 64
    w_lr: float = 0.05
    w_momentum: float = 0.9
    optimizer: str = "sgd"  # weight optimizer: 'sgd' or 'adam'
    weight_decay: float = 4e-5  # lambda_1
    a_lr: float = 0.01
    arch_every: int = 1  # an architecture step after every `arch_every` weight steps
    loss: str = "add"
    lambda_lat: float = 0.05  # lambda_2 (per ms for 'add'; dimensionless for 'hinge' and 'abs')
    target_ms: float | None = None
    beta: float = 0.6
    auto_lambda: bool = False
    lambda_rate: float = 0.1
    lambda_on: str = "expected"  # auto lambda steers E[lat] ('expected') or the argmax net's latency ('derived')
    # Auto lambda moves at its full rate once the latency is this fraction off target (1.0: only when 2x off).
    # A narrow band takes the pressure off quickly when the net is just under target, so the task loss can
    # spend the rest of the budget instead of the search freezing a few % below it.
    lambda_band: float = 1.0
    derive: str = "argmax"  # the final net: 'argmax', or 'budget' (the most probable net within target_ms)
    grad_clip: float = 5.0
    arch_params: str = "joint"  # one logit per candidate, or 'factorized' (the space's `arch_factors()`)
    # Each weight step also trains the most expensive candidate of every block (the max side of BigNAS's
    # sandwich rule): with shared weights the channels / taps only large candidates use are otherwise
    # trained least, so architecture steps see large candidates at their worst and drift to small ones.
    train_largest: bool = False
    seed: int = 0
    max_steps_per_epoch: int | None = None

    def validate(self) -> None:
        check_optimizer(self.optimizer)
        if self.loss not in LOSS_FORMS:
            raise ValueError(f"unknown latency loss form {self.loss!r}; use one of {', '.join(LOSS_FORMS)}")
        if self.loss in ("mul", "hinge", "abs") or self.auto_lambda:
            if not self.target_ms or self.target_ms <= 0:
                raise ValueError(f"loss {self.loss!r}{' with auto lambda' if self.auto_lambda else ''} needs a "
                                 "positive latency target (--target-ms)")
        if self.epochs < 1 or not 0 <= self.warmup_epochs <= self.epochs:
            raise ValueError(f"need epochs >= 1 and 0 <= warmup_epochs <= epochs (got {self.epochs}, "
                             f"{self.warmup_epochs})")
        if self.arch_params not in ARCH_PARAMS:
            raise ValueError(f"arch_params must be one of {', '.join(ARCH_PARAMS)}; got {self.arch_params!r}")
        if self.lambda_on not in ("expected", "derived"):
            raise ValueError(f"lambda_on must be 'expected' or 'derived', got {self.lambda_on!r}")
        if not self.lambda_band > 0:
            raise ValueError(f"lambda_band must be > 0 (a fraction of the target), got {self.lambda_band}")
        if self.derive not in ("argmax", "budget"):
            raise ValueError(f"derive must be 'argmax' or 'budget', got {self.derive!r}")
        if self.derive == "budget" and not (self.target_ms and self.target_ms > 0):
            raise ValueError("derive='budget' needs a positive latency target (--target-ms)")
        if self.batch_size < 1 or self.arch_every < 1:
            raise ValueError("batch_size and arch_every must be >= 1")


def latency_loss(task_loss: torch.Tensor, exp_lat: torch.Tensor, cfg: SearchConfig, lam: float) -> torch.Tensor:
    if cfg.loss == "add":
        return task_loss + lam * exp_lat
    if cfg.loss == "mul":
        return task_loss * (exp_lat / cfg.target_ms) ** cfg.beta
    if cfg.loss == "abs":
        return task_loss + lam * (exp_lat / cfg.target_ms - 1.0).abs()
    return task_loss + lam * torch.relu(exp_lat / cfg.target_ms - 1.0)


def most_probable_within(log_probs: torch.Tensor, latency: LatencyTerms, budget_ms: float,
                         bins: int = 4000) -> list[int] | None:
    """argmax over architectures of sum_b log p_b(c_b) subject to latency <= budget_ms: a knapsack over blocks
    solved by dynamic programming on latency rounded *up* to budget/bins, so the result never exceeds the
    budget (it may miss a net within budget/bins * blocks of it). None when nothing fits."""
    room = budget_ms - latency.fixed_ms
    if room < 0:
        return None
    step = room / bins if room > 0 else 1.0
    lp = log_probs.double().masked_fill(~latency.mask, float("-inf")).numpy()
    cost = np.ceil(latency.table.numpy() / step).astype(np.int64).clip(min=0)
    best = np.full(bins + 1, -np.inf)  # best[k]: highest log-probability of the blocks so far costing k bins
    best[0] = 0.0
    picks = []
    for b in range(lp.shape[0]):
        new, pick = np.full(bins + 1, -np.inf), np.full(bins + 1, -1, dtype=np.int64)
        for j in np.flatnonzero(np.isfinite(lp[b])):
            c = int(cost[b, j])
            if c > bins:
                continue
            cand = np.full(bins + 1, -np.inf)
            cand[c:] = best[:bins + 1 - c] + lp[b, j]
            better = cand > new
            new[better], pick[better] = cand[better], j
        best = new
        picks.append(pick)
    k = int(np.argmax(best))
    if not np.isfinite(best[k]):
        return None
    choices = []
    for b in range(len(picks) - 1, -1, -1):
        j = int(picks[b][k])
        choices.append(j)
        k -= int(cost[b, j])
    return choices[::-1]


def _dist_info() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _all_average(t: torch.Tensor, world: int) -> torch.Tensor:
    if world > 1:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        t /= world
    return t


def _cosine_lr(base: float, step: int, total: int) -> float:
    return 0.5 * base * (1.0 + math.cos(math.pi * min(step, total) / max(1, total)))


@dataclass
class SearchResult:
    choices: list
    probs: list
    expected_latency_ms: float
    derived_latency_ms: float
    target_ms: float | None
    history: list = field(default_factory=list)
    argmax: list | None = None  # the plain argmax net (differs from choices when derive='budget' moved it)


class ProxylessSearch:
    """Alternating weight / architecture optimisation. `run()` returns the derived choices and history."""

    def __init__(self, supernet: nn.Module, mask, task: Task, train_set, valid_set, latency: LatencyTerms,
                 config: SearchConfig, out_dir: str | Path | None = None, progress: bool = True,
                 block_names: list | None = None, choice_names: list | None = None,
                 torch_device: str | torch.device = "cpu", factors: ArchFactors | None = None):
        config.validate()
        self.dev = torch.device(torch_device)
        self.cfg = config
        self.task = task
        self.latency = latency
        self.train_set, self.valid_set = train_set, valid_set
        self.out_dir = Path(out_dir) if out_dir else None
        self.progress = progress
        self.rank, self.world = _dist_info()
        self.block_names = block_names
        self.choice_names = choice_names
        self.net = supernet.to(self.dev)
        if config.arch_params == "factorized":
            if factors is None:
                raise ValueError("arch_params='factorized' needs the space's factors (space.arch_factors()); "
                                 "this search was given none")
            self.arch = FactorizedArchParameters(mask, factors).to(self.dev)
        else:
            self.arch = ArchParameters(mask).to(self.dev)
        if tuple(self.arch.mask.shape) != tuple(latency.mask.shape):
            raise ValueError(f"supernet mask {tuple(self.arch.mask.shape)} != latency table mask "
                             f"{tuple(latency.mask.shape)}: the LUT was built for another space")
        self.model = self.net
        if self.world > 1:
            # Weight gradients are averaged by DDP; every rank runs the same sampled path, so the set
            # of unused parameters agrees across ranks.
            self.model = nn.parallel.DistributedDataParallel(
                self.net, device_ids=[self.dev.index] if self.dev.type == "cuda" else None,
                find_unused_parameters=True)
        self.w_opt = weight_optimizer(self.net.parameters(), config.optimizer, config.w_lr, config.w_momentum,
                                      config.weight_decay)
        # beta1 = 0 as in ProxylessNAS: no momentum leaks updates into paths that were not sampled.
        self.a_opt = torch.optim.Adam(list(self.arch.parameters()), lr=config.a_lr, betas=(0.0, 0.999), eps=1e-8)
        self.gen = torch.Generator().manual_seed(config.seed + 12345)
        costs = latency.table.masked_fill(~latency.mask, float("-inf"))
        self.largest = [PathSample((int(j),)) for j in costs.argmax(dim=1)]
        self.lam = float(config.lambda_lat / config.target_ms if config.auto_lambda else config.lambda_lat)
        self.initial_lambda = self.lam
        self.epoch = 0  # next epoch to run
        self.history: list = []

    # ----- steps -------------------------------------------------------------------------------------
    def weight_step(self, x, y, lr: float) -> tuple[float, float]:
        x, y = x.to(self.dev, non_blocking=True), y.to(self.dev, non_blocking=True)
        samples = self.arch.sample_single(self.gen)
        for g in self.w_opt.param_groups:
            g["lr"] = lr
        self.w_opt.zero_grad(set_to_none=True)
        out = self.model(x, samples)
        loss = self.task.loss(out, y)
        loss.backward()
        if self.cfg.train_largest:
            self.task.loss(self.model(x, self.largest), y).backward()
        if self.cfg.grad_clip:
            nn.utils.clip_grad_norm_(self.net.parameters(), self.cfg.grad_clip)
        self.w_opt.step()
        return loss.item(), self.task.metric(out.detach(), y)

    def arch_step(self, x, y) -> tuple[float, float]:
        x, y = x.to(self.dev, non_blocking=True), y.to(self.dev, non_blocking=True)
        samples = self.arch.sample_binary(self.gen)
        out = self.net(x, samples)  # plain module: weight gradients are not wanted here
        task_loss = self.task.loss(out, y)
        exp_lat = self.latency.expected(self.arch.logits().cpu()).to(self.dev)  # LUT maths stays on the CPU
        loss = latency_loss(task_loss, exp_lat, self.cfg, self.lam)
        params = list(self.arch.parameters())
        grads = torch.autograd.grad(loss, params)
        self.a_opt.zero_grad(set_to_none=True)
        for p, g in zip(params, grads):
            p.grad = _all_average(g.contiguous(), self.world)
        old = self.arch.logits().detach().clone()
        self.a_opt.step()
        self.arch.rescale_(old, samples)
        if self.cfg.auto_lambda:
            # 'derived' steers the net that will be kept (argmax), whose latency can sit far from E[lat]
            now = float(exp_lat.detach()) if self.cfg.lambda_on == "expected" else \
                self.latency.discrete(self.arch.argmax())
            excess = min(1.0, max(-1.0, (now / self.cfg.target_ms - 1.0) / self.cfg.lambda_band))
            self.lam = float(min(1e4, max(1e-6, self.lam * math.exp(self.cfg.lambda_rate * excess))))
        return float(exp_lat.detach()), self.task.metric(out.detach(), y)

    # ----- loop --------------------------------------------------------------------------------------
    def _steps_per_epoch(self) -> int:
        n = len(self.train_set) // self.world // self.cfg.batch_size
        if self.cfg.max_steps_per_epoch:
            n = min(n, self.cfg.max_steps_per_epoch)
        if n < 1:
            raise ValueError(f"the train split ({len(self.train_set)} samples over {self.world} rank(s)) is smaller "
                             f"than one batch of {self.cfg.batch_size}")
        return n

    def run(self, resume: bool = False) -> SearchResult:
        if resume:
            self.load_checkpoint()
        steps = self._steps_per_epoch()
        total = steps * self.cfg.epochs
        bar = None
        if self.progress and self.rank == 0:
            from tqdm import tqdm

            bar = tqdm(total=total, initial=self.epoch * steps, desc="search", unit="step", dynamic_ncols=True)
        for epoch in range(self.epoch, self.cfg.epochs):
            self.net.train()
            train_loader = epoch_loader(self.train_set, self.cfg.batch_size, epoch, self.cfg.seed, True,
                                        self.rank, self.world)
            valid_iter = self._valid_batches(epoch)
            search_arch = epoch >= self.cfg.warmup_epochs
            stats = {"loss": 0.0, "train_" + self.task.metric_name: 0.0, "arch_steps": 0,
                     "valid_" + self.task.metric_name: 0.0}
            for i, (x, y) in enumerate(train_loader):
                if i >= steps:
                    break
                lr = _cosine_lr(self.cfg.w_lr, epoch * steps + i, total)
                loss, metric = self.weight_step(x, y, lr)
                stats["loss"] += loss / steps
                stats["train_" + self.task.metric_name] += metric / steps
                if search_arch and (i + 1) % self.cfg.arch_every == 0:
                    vx, vy = next(valid_iter)
                    _, vmetric = self.arch_step(vx, vy)
                    stats["arch_steps"] += 1
                    stats["valid_" + self.task.metric_name] += vmetric
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(ep=epoch, loss=f"{loss:.3f}", **{self.task.metric_name: f"{metric:.1f}"},
                                    E_lat=f"{self.expected_latency_ms():.4f}ms", lam=f"{self.lam:.3g}")
            if stats["arch_steps"]:
                stats["valid_" + self.task.metric_name] /= stats["arch_steps"]
            self._end_epoch(epoch, stats)
        if bar is not None:
            bar.close()
        choices = self.derive()
        return SearchResult(choices=choices, probs=self.arch.probs().tolist(),
                            expected_latency_ms=self.expected_latency_ms(),
                            derived_latency_ms=self.latency.discrete(choices), target_ms=self.cfg.target_ms,
                            history=self.history, argmax=self.arch.argmax())

    @torch.no_grad()
    def derive(self) -> list[int]:
        """The final architecture: the argmax, or with derive='budget' the most probable one within target."""
        choices = self.arch.argmax()
        if self.cfg.derive == "budget" and self.latency.discrete(choices) > self.cfg.target_ms:
            within = most_probable_within(torch.log(self.arch.probs().cpu()), self.latency,
                                          self.cfg.target_ms)
            if within is None:
                warnings.warn(f"no architecture of this space fits {self.cfg.target_ms} ms; keeping the argmax "
                              f"({self.latency.discrete(choices):.3f} ms)")
            else:
                choices = within
        return choices

    def _valid_batches(self, epoch: int):
        cycle = 0
        while True:  # cycle through the valid split, a fresh deterministic permutation per pass
            loader = epoch_loader(self.valid_set, self.cfg.batch_size, epoch * 1000 + cycle, self.cfg.seed + 1,
                                  True, self.rank, self.world)
            yield from loader
            cycle += 1

    @torch.no_grad()
    def expected_latency_ms(self) -> float:
        return float(self.latency.expected(self.arch.logits().detach().cpu()))

    def _end_epoch(self, epoch: int, stats: dict) -> None:
        if self.world > 1:
            # Architecture steps update BN statistics on each rank's own valid batches; DDP only
            # re-broadcasts them at its next forward, so align them before checkpointing.
            for buf in self.net.buffers():
                dist.broadcast(buf, 0)
        choices = self.arch.argmax()
        record = {"epoch": epoch, **stats, "lambda": self.lam, "expected_latency_ms": self.expected_latency_ms(),
                  "derived_latency_ms": self.latency.discrete(choices), "argmax": choices,
                  "alpha": self.arch.logits().detach().tolist(), "probs": self.arch.probs().detach().tolist()}
        if isinstance(self.arch, FactorizedArchParameters):
            record["factors"] = self.arch.factor_logits()
        self.history.append(record)
        self.epoch = epoch + 1
        if self.rank == 0 and self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self.save_checkpoint()
            # The whole log is rewritten each epoch, so a resumed run never duplicates epochs.
            log = {"config": asdict(self.cfg), "block_names": self.block_names,
                   "choice_names": self.choice_names, "latency_device": self.latency.device,
                   "latency_source": self.latency.source, "epochs": self.history}
            tmp = self.out_dir / "search_log.json.tmp"
            tmp.write_text(json.dumps(log, indent=1))
            os.replace(tmp, self.out_dir / "search_log.json")
        if self.world > 1:
            dist.barrier()

    # ----- checkpoints -------------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path | None:
        return self.out_dir / "search_checkpoint.pt" if self.out_dir else None

    def save_checkpoint(self) -> None:
        state = {"epoch": self.epoch, "net": self.net.state_dict(), "arch": self.arch.state_dict(),
                 "w_opt": self.w_opt.state_dict(), "a_opt": self.a_opt.state_dict(), "lambda": self.lam,
                 "gen": self.gen.get_state(), "history": self.history, "config": asdict(self.cfg)}
        tmp = self.checkpoint_path.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.checkpoint_path)  # atomic: a kill mid-write leaves the previous checkpoint

    def load_checkpoint(self) -> bool:
        path = self.checkpoint_path
        if path is None or not path.is_file():
            return False
        state = torch.load(path, map_location="cpu", weights_only=False)
        saved = dict(state["config"])
        for k in ("epochs", "max_steps_per_epoch"):  # a resumed run may extend the schedule, nothing else
            saved.pop(k, None)
        mine = {k: v for k, v in asdict(self.cfg).items() if k in saved}
        if mine != saved:
            diff = {k: (saved[k], mine[k]) for k in saved if saved[k] != mine.get(k)}
            raise ValueError(f"--resume with a different configuration than the checkpoint {path}: {diff}")
        self.net.load_state_dict(state["net"])  # map_location cpu; load_state_dict copies onto self.dev
        self.arch.load_state_dict(state["arch"])
        self.w_opt.load_state_dict(state["w_opt"])
        self.a_opt.load_state_dict(state["a_opt"])
        self.lam = float(state["lambda"])
        self.gen.set_state(state["gen"])
        self.history = list(state["history"])
        self.epoch = int(state["epoch"])
        return True


# ----- plain training (retrain derived nets and baselines with one recipe) ----------------------------
@dataclass
class TrainConfig:
    epochs: int = 5
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 4e-5
    label_smoothing: float = 0.0
    seed: int = 0
    max_steps_per_epoch: int | None = None
    optimizer: str = "sgd"  # 'sgd' (Nesterov) or 'adam'


def train_network(model: nn.Module, task: Task, train_set, test_set, cfg: TrainConfig, desc: str = "train",
                  progress: bool = True, torch_device: str | torch.device = "cpu") -> dict:
    """`cfg.optimizer` (SGD + Nesterov or Adam) with a cosine schedule; returns {'history': [...],
    metric_name: final test metric}."""
    from tqdm import tqdm

    torch.manual_seed(cfg.seed)
    dev = torch.device(torch_device)
    model.to(dev)
    opt = weight_optimizer(model.parameters(), cfg.optimizer, cfg.lr, cfg.momentum, cfg.weight_decay)
    steps = len(train_set) // cfg.batch_size
    if cfg.max_steps_per_epoch:
        steps = min(steps, cfg.max_steps_per_epoch)
    total = steps * cfg.epochs
    history = []
    bar = tqdm(total=total, desc=desc, unit="step", dynamic_ncols=True, disable=not progress)
    for epoch in range(cfg.epochs):
        model.train()
        loader = epoch_loader(train_set, cfg.batch_size, epoch, cfg.seed)
        run_loss = 0.0
        for i, (x, y) in enumerate(loader):
            if i >= steps:
                break
            for g in opt.param_groups:
                g["lr"] = _cosine_lr(cfg.lr, epoch * steps + i, total)
            x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
            out = model(x)
            loss = task.loss(out, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            run_loss += loss.item() / steps
            bar.update(1)
            bar.set_postfix(ep=epoch, loss=f"{loss.item():.3f}")
        metric = evaluate(model, task, test_set, torch_device=dev)
        history.append({"epoch": epoch, "loss": run_loss, "test_" + task.metric_name: metric})
        bar.set_postfix(ep=epoch, loss=f"{run_loss:.3f}", **{task.metric_name: f"{metric:.2f}"})
    bar.close()
    model.to("cpu")
    return {"history": history, task.metric_name: history[-1]["test_" + task.metric_name]}


@torch.no_grad()
def evaluate(model: nn.Module, task: Task, dataset, batch_size: int = 500,
             torch_device: str | torch.device = "cpu") -> float:
    """Sample-weighted mean of `task.metric` over a data set."""
    model.eval()
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)
    total, n = 0.0, 0
    for x, y in loader:
        x, y = x.to(torch_device), y.to(torch_device)
        total += task.metric(model(x), y) * x.shape[0]
        n += x.shape[0]
    return total / max(1, n)


# ----- latency tables -> LatencyTerms -----------------------------------------------------------------
def build_latency_terms(space, device: str = "VPU_2_0", vpunn_model: str | Path | None = None,
                        lut_path: str | Path | None = None) -> LatencyTerms:
    """LatencyTerms for `space` from a saved LUT (`lut_path`) or built with VPUNN (`vpunn_model`, a
    .vpunn file) / the theoretical model (neither given) for `device`."""
    from .lut import LatencyTable, VpuCostSource

    if lut_path is not None:
        table = LatencyTable.load(lut_path)
        source = f"lut {Path(lut_path).name}"
    else:
        table = LatencyTable.build(space, VpuCostSource(device, model=str(vpunn_model) if vpunn_model else None))
        source = f"vpunn {Path(vpunn_model).name}" if vpunn_model else "theoretical"
    f, mask = table.matrix(space)
    table_device = getattr(table, "device", device)
    return LatencyTerms(torch.as_tensor(f), torch.as_tensor(mask), float(table.fixed_latency_ms(space)),
                        device=str(table_device), source=source)
