"""Validating a measured LUT (the whitepaper's Fig. 7): LUT sum vs end-to-end latency of whole subnets.

Random subnets of the search space are built as one ONNX graph each (fixed ops + chosen candidates in
order), timed end to end on the runtime / device the LUT was measured on, and compared with the LUT's
prediction: the sum of the ops' entries plus, once, the fixed per-call costs the table subtracted
from its entries: the call overhead, and, when the table subtracted boundaries, the network's input /
output layout conversion unless the entry of the subnet's first / last op already includes it (tables
measured with `network_io`, see stacking.py; older tables: the filler's conversion io(s) / 2 is added). Several tables (e.g. stacked N = 8 and naive
N = 1) can be scored on the same subnets.
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from . import onnx_ops
from .profiler import LutFileError, Profiler, ProfileSettings, estimate, latency_by_key, time_graphs


# ------------------------------------------------------------------------------------------------ metrics
def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks starting at 1, ties get their average rank (as Spearman's rho needs)."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.arange(1, len(x) + 1)
    for v in np.unique(x):
        tie = x == v
        if tie.sum() > 1:
            ranks[tie] = ranks[tie].mean()
    return ranks


def pearson(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(a) < 2 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def spearman(a, b) -> float:
    return pearson(_ranks(a), _ranks(b))


def error_metrics(predicted, measured) -> dict:
    """MAPE and max error (both in % of measured), Pearson, Spearman, share within +-10 %."""
    p, m = np.asarray(predicted, np.float64), np.asarray(measured, np.float64)
    if p.shape != m.shape or p.ndim != 1 or len(p) == 0:
        raise ValueError(f"predicted and measured must be equal-length 1-D sequences, got {p.shape} and {m.shape}")
    if np.any(m <= 0):
        raise ValueError("measured latencies must be positive")
    rel = np.abs(p - m) / m
    return {"n": int(len(p)), "mape_pct": float(rel.mean() * 100), "max_err_pct": float(rel.max() * 100),
            "within10_pct": float((rel <= 0.10 + 1e-9).mean() * 100), "bias_pct": float(((p - m) / m).mean() * 100),
            "pearson": pearson(p, m), "spearman": spearman(p, m)}


NOISE_LABEL = "odd vs even rounds (noise)"


def split_half_noise(round_ms: np.ndarray, estimator: str = "median") -> dict:
    """The noise ceiling of a measurement made of interleaved rounds: each subnet's odd rounds combined
    (with the tables' estimator) scored against its even rounds, like a LUT against the truth.
    round_ms: [subnet, round] per-round estimates. Each half has half the rounds, so this is a
    pessimistic bound for the full measurement."""
    r = np.asarray(round_ms, np.float64)
    if r.ndim != 2 or r.shape[1] < 2:
        raise ValueError(f"need per-round times [subnet, round] with >= 2 rounds, got shape {r.shape}")
    return error_metrics(estimate(r[:, 1::2], estimator, axis=1), estimate(r[:, 0::2], estimator, axis=1))


# ------------------------------------------------------------------------------------------------ subnets
def subnet_ops(space, choices) -> list:
    """The ops of one architecture of a space, in execution order."""
    if hasattr(space, "chosen_ops"):
        return list(space.chosen_ops(choices))
    if hasattr(space, "arch_from_indices"):  # EDSR-style spaces
        h, w = space.input_hw
        return list(space.arch_from_indices(choices).ops(h, w))
    raise ValueError(f"search space {type(space).__name__} cannot list the ops of an architecture")


def space_ops(space) -> list:
    """Every op a search space can use (fixed ops and all candidates), for profiling."""
    ops = list(space.fixed_ops)
    for block in space.blocks:
        ops.extend(block.candidates)
    return ops


def network_io(space) -> tuple:
    """(input shape, output shape) of the space's networks (those of one sampled architecture: every
    architecture of a space has the same)."""
    ops = subnet_ops(space, space.sample_arch(np.random.default_rng(0)))
    return tuple(onnx_ops.op_input_shape(ops[0])), tuple(onnx_ops.output_shape(ops))


def network_weight_mb(space, samples: int = 200, seed: int = 0) -> float:
    """Median float32 weight size (MB) of the space's networks, over `samples` random architectures."""
    rng = np.random.default_rng(seed)
    sizes = [sum(op.params for op in subnet_ops(space, space.sample_arch(rng))) * 4 / 2 ** 20 for _ in range(samples)]
    return float(np.median(sizes))


def cold_weights_setting(choice: str, space) -> tuple[bool, float]:
    """('auto' | 'on' | 'off', space) -> (add the cold-weight term?, the space's median network weight MB).
    auto: on when the space's networks stream their weights (`profiler.streams_weights`)."""
    from .profiler import streams_weights

    if choice not in ("auto", "on", "off"):
        raise ValueError(f"cold weights must be auto, on or off; got {choice!r}")
    mb = network_weight_mb(space)
    return (streams_weights(mb) if choice == "auto" else choice == "on"), mb


def predict_ms(latencies: dict, ops: Sequence, overhead_ms: float = 0.0, label: str = "LUT") -> float:
    """LUT prediction of a subnet: sum of its ops' entries (+ the call overhead once)."""
    missing = [op.key for op in ops if op.key not in latencies and onnx_ops.op_name(op) != "Skip"]
    if missing:
        raise LutFileError(f"{label} has no usable entry for {len(missing)} op(s) of this subnet, e.g. {missing[0]}; "
                           "profile the same space and input size (or resume the partial table)")
    return float(sum(latencies.get(op.key, 0.0) for op in ops) + overhead_ms)


@dataclass
class ValidationResult:
    archs: list
    measured_ms: np.ndarray
    predicted_ms: dict            # label -> array
    metrics: dict                 # label -> error_metrics
    overhead_ms: float
    spreads: np.ndarray = field(default_factory=lambda: np.zeros(0))
    boundary_ms: float = 0.0

    def table_text(self) -> str:
        head = f"{'LUT':<28} {'MAPE':>7} {'max err':>8} {'bias':>7} {'<=10%':>6} {'Pearson':>8} {'Spearman':>9}"
        rows = [head, "-" * len(head)]
        for label, m in self.metrics.items():
            rows.append(f"{label:<28} {m['mape_pct']:6.2f}% {m['max_err_pct']:7.2f}% {m['bias_pct']:+6.2f}% "
                        f"{m['within10_pct']:5.0f}% {m['pearson']:8.4f} {m['spearman']:9.4f}")
        lo, hi = self.measured_ms.min(), self.measured_ms.max()
        rows.append(f"{len(self.measured_ms)} subnets, measured {lo:.3f}-{hi:.3f} ms "
                    f"(median spread {np.median(self.spreads) * 100 if len(self.spreads) else float('nan'):.1f}%), "
                    f"call overhead {self.overhead_ms:.4f} ms, network boundary {self.boundary_ms:.4f} ms")
        return "\n".join(rows)

    def write_csv(self, path) -> None:
        labels = list(self.predicted_ms)
        with open(path, "w") as f:
            f.write(",".join(["arch", "measured_ms"] + [f"predicted_ms[{l}]" for l in labels]) + "\n")
            for i, arch in enumerate(self.archs):
                vals = [f"{self.measured_ms[i]:.6f}"] + [f"{self.predicted_ms[l][i]:.6f}" for l in labels]
                f.write(f"\"{'-'.join(map(str, arch))}\"," + ",".join(vals) + "\n")


def validate_tables(space, tables: dict, runner, samples: int = 50, seed: int = 0,
                    settings: ProfileSettings = ProfileSettings(warmup=3, repeats=3, rounds=10, max_spread=0.05,
                                                                retries=1),
                    progress: bool = True) -> ValidationResult:
    """Score one or more LUTs (label -> table dict) on the same random subnets of `space`.

    All subnets are compiled first and timed in one session of `settings.rounds` interleaved rounds
    (runners.time_interleaved), so a slow drift of the host's load hits every subnet alike; each
    subnet's time is the settings' estimator over its calls. With 2 or more rounds the odd rounds are
    also scored against the even ones (NOISE_LABEL): the noise ceiling of this measurement."""
    if samples < 2:
        raise ValueError(f"--samples must be >= 2 for correlations, got {samples}")
    latencies = {label: latency_by_key(t) for label, t in tables.items()}
    entries = {label: {e["key"]: e for e in t["entries"]} for label, t in tables.items()}
    subtracted = {label: bool(t["source"].get("overhead_subtracted", True)) for label, t in tables.items()}
    boundary = {label: bool(t["source"].get("boundary_subtracted", False)) for label, t in tables.items()}
    rng = np.random.default_rng(seed)
    archs = [space.sample_arch(rng) for _ in range(samples)]
    op_lists = [subnet_ops(space, a) for a in archs]
    for label, lat in latencies.items():  # fail before any timing when a table lacks ops
        for ops in op_lists:
            predict_ms(lat, ops, 0.0, label)
    # The fixed per-call costs, measured the way the tables measure theirs (one session).
    models = [onnx_ops.chain_graph(ops, seed=settings.seed + i) for i, ops in enumerate(op_lists)]
    prof = Profiler(runner, ProfileSettings(stack=8, warmup=settings.warmup, repeats=settings.repeats,
                                            rounds=settings.rounds, max_spread=settings.max_spread,
                                            retries=settings.retries, seed=settings.seed,
                                            estimator=settings.estimator), progress=False)
    net_in, net_out = onnx_ops.op_input_shape(op_lists[0][0]), onnx_ops.output_shape(op_lists[0])

    def lacks(label, ops, end) -> bool:  # the network conversion at this end is not in the end op's entry
        op = ops[0] if end == "input" else ops[-1]
        return boundary[label] and not entries[label].get(op.key, {}).get(f"includes_network_{end}")

    need = {end: any(lacks(label, ops, end) for label in tables for ops in op_lists) for end in ("input", "output")}
    nchw = [s for s, end in ((net_in, "input"), (net_out, "output")) if len(s) == 4 and need[end]]
    prof.measure_session(boundary_shapes=nchw, models=models[:1])
    overhead = prof.overhead_ms(models[0])
    io_in = prof.boundary_ms(net_in) / 2 if need["input"] else 0.0
    io_out = prof.boundary_ms(net_out) / 2 if need["output"] else 0.0

    def network_boundary(label, ops) -> float:
        return (io_in if lacks(label, ops, "input") else 0.0) + (io_out if lacks(label, ops, "output") else 0.0)

    if progress:
        print(f"validate: timing {samples} subnets in {settings.rounds} interleaved rounds ...", flush=True)
    timings = time_graphs(runner, models, settings)
    for i, t in enumerate(timings):
        if not hasattr(t, "value_ms"):
            raise t  # a subnet that does not compile: the runtime's message
    measured = np.array([t.value_ms for t in timings])
    spreads = np.array([t.spread for t in timings])
    predicted = {label: np.array([predict_ms(lat, ops, (overhead if subtracted[label] else 0.0)
                                             + network_boundary(label, ops), label) for ops in op_lists])
                 for label, lat in latencies.items()}
    metrics = {label: error_metrics(p, measured) for label, p in predicted.items()}
    if settings.rounds >= 2:
        metrics[NOISE_LABEL] = split_half_noise(np.array([t.round_ms for t in timings]), settings.estimator)
    return ValidationResult(archs, measured, predicted, metrics, overhead, spreads, io_in + io_out)


def scatter_png(result: ValidationResult, path, title: str = "LUT prediction vs measured latency") -> None:
    """Predicted vs measured scatter, one colour per table, with the y = x line and +-10 % band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 5.2), dpi=120)
    m = result.measured_ms
    allv = np.concatenate([m] + list(result.predicted_ms.values()))
    lo, hi = float(allv.min()) * 0.9, float(allv.max()) * 1.1
    xs = np.linspace(lo, hi, 2)
    ax.plot(xs, xs, "k-", lw=1, label="y = x")
    ax.fill_between(xs, xs * 0.9, xs * 1.1, color="0.9", label="±10 %")
    markers = ["o", "s", "^", "D"]
    for i, (label, p) in enumerate(result.predicted_ms.items()):
        met = result.metrics[label]
        ax.scatter(m, p, s=16, marker=markers[i % len(markers)], alpha=0.8,
                   label=f"{label}: MAPE {met['mape_pct']:.1f}%, ρ {met['spearman']:.3f}")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("measured end-to-end latency (ms)")
    ax.set_ylabel("LUT prediction (ms)")
    ax.set_title(textwrap.fill(title, 60), fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def table_label(table: dict, fallback: str) -> str:
    src = table.get("source", {})
    stack = src.get("stack")
    if stack is None:
        return fallback
    kind = "naive" if stack == 1 else "stacked"
    sub = "" if src.get("overhead_subtracted", True) else ", raw"
    if stack > 1 and not src.get("boundary_subtracted", False):
        sub += ", no boundary"
    return f"{kind} N={stack}{sub}"
