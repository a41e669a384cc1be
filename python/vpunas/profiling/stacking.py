"""Operator stacking: graphs that make one op's latency measurable, and the formulas that recover it.

Timing one small op through a runtime call is dominated by the call's fixed overhead and its noise.
Stacking amortises both:

* shape-keeping op A (output shape == input shape): time A applied N times,
  F(A) = (T(A^N) - T_overhead) / N.
* shape-changing op B (stride 2, channel change, upsampling, ...): time B between shape-keeping
  filler ops whose costs are themselves measured by stacking: N/2 fillers A_in on B's input and N/2
  fillers A_out on its output, F(B) = (T(A_in^(N/2) B A_out^(N/2)) - T_overhead) - N/2 F(A_in) - N/2 F(A_out)
  (the issue's F(B) = T(subgraph) - N F(A), with the N fillers split over both sides).
  When B's output is not an NCHW map (Linear) or is the network's output, all N fillers go before B;
  when B reads the network's input (the stem), all N go after it.

T_overhead is the fixed cost of one call, measured the same way: the empty (identity) graph's latency
plus, when boundary correction is on, the graph's boundary cost. Runtimes keep activations in their own
blocked layouts inside a graph but convert the plain NCHW graph input and output at the boundary; an
op inside a network never pays that, and on a CPU it can cost as much as a small op. The boundary cost
io(s) of a shape s comes from two stacks of the filler at s (N and N/2 copies): the slope gives the
filler's own cost, the intercept minus the call overhead gives io(s) = in(s) + out(s), the input and
output conversions of the filler at s. A graph reading s_in and writing s_out is charged
(io(s_in) + io(s_out)) / 2.

Why fillers on both sides: the conversion a graph pays depends on the op at its boundary, not only on
the shape. An op that can read the plain layout itself (a conv on a 3-channel image, GlobalAvgPool)
pays no input conversion, so subtracting the filler's io(s_in) / 2 from it under-counts it (the stem
came out at half of its naive time and GlobalAvgPool below 0). With filler ops at both ends every
graph converts exactly like the filler stacks that measured io, and the half-split error cancels in a
network's sum: each inner tensor s is charged in(s)/2 + out(s)/2 as B's input and as the previous
op's output, io(s) in all, which is what the two graphs paid. The network itself pays the conversions
of its real first and last ops: the op reading the network input is measured without fillers before
it and without an input-side subtraction (its entry includes the network's input conversion, as in a
real net), and the op writing the network output likewise on its output side.
With N = 1 and no fillers this degenerates to naive single-op timing, kept for comparison.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import onnx

from . import onnx_ops


def is_shape_keeping(op) -> bool:
    """True when the op's output tensor has the same shape as its input (it can be chained on itself)."""
    in_shape = onnx_ops.op_input_shape(op)
    out = onnx_ops.output_shape([op])
    if onnx_ops.op_name(op) == "Linear":
        return op.in_f == op.out_f
    return tuple(out) == tuple(in_shape)


def is_zero_cost(op) -> bool:
    """Ops that emit no node at all (Skip): cost 0 without measuring."""
    return onnx_ops.op_name(op) == "Skip"


def filler_for(shape) -> object:
    """The shape-keeping filler op A on an NCHW tensor `shape`: a plain depthwise 3x3 convolution.

    Chosen because it is cheap (so N * F(A) does not swamp F(B)), it is a real op of the search
    spaces, and runtimes do not fuse it into a preceding conv / pool / resize."""
    from vpunas.ops import DepthwiseConv2d  # the op-spec module; imported lazily to keep this module light

    _, c, h, w = shape
    return DepthwiseConv2d(ch=c, kernel=3, stride=1, in_h=h, in_w=w, act="none")


@dataclass(frozen=True)
class StackPlan:
    """How one op is measured: the graph's op sequence and how to turn its time into F(op)."""

    op: object
    n: int                            # stack size N (copies of a shape-keeping op; fillers in all otherwise)
    filler: Optional[object]          # shape-keeping op A_out on the op's output; None for a stack
    filler_in: Optional[object] = None  # shape-keeping op A_in on the op's input
    n_in: int = 0                     # how many of the N fillers are A_in (before the op)

    def __post_init__(self):
        if not 0 <= self.n_in <= self.n or (self.n_in > 0) != (self.filler_in is not None) \
                or (self.filler is None and self.filler_in is None and self.n_in):
            raise ValueError(f"inconsistent stack plan: n={self.n}, n_in={self.n_in}, filler_in={self.filler_in}")

    @property
    def n_out(self) -> int:
        return self.n - self.n_in if self.filler is not None else 0

    @property
    def method(self) -> str:
        if self.filler is None and self.filler_in is None:
            return "stack" if self.n > 1 else "single"
        return "filler"

    def fillers(self) -> list:
        """(filler op, count) pairs of the plan (empty for a stack)."""
        return [(f, k) for f, k in ((self.filler_in, self.n_in), (self.filler, self.n_out)) if f is not None and k]

    def ops(self) -> list:
        if self.method != "filler":
            return [self.op] * self.n
        return [self.filler_in] * self.n_in + [self.op] + [self.filler] * self.n_out

    def graph(self, seed: int = 0) -> onnx.ModelProto:
        return onnx_ops.chain_graph(self.ops(), seed=seed, name=f"{self.method}{self.n}")

    def latency(self, t_graph_ms: float, t_overhead_ms: float, filler_ms: Optional[dict] = None) -> float:
        """F(op) from the graph's time; `filler_ms` = {filler key: F(A)}, needed when the plan uses fillers."""
        if self.method != "filler":
            return shape_keeping_latency(t_graph_ms, t_overhead_ms, self.n)
        missing = [f.key for f, _ in self.fillers() if f.key not in (filler_ms or {})]
        if missing:
            raise ValueError(f"a plan with filler ops needs the fillers' latencies F(A): missing {missing}")
        return shape_changing_latency(t_graph_ms, t_overhead_ms, [(k, filler_ms[f.key]) for f, k in self.fillers()])


def shape_keeping_latency(t_stack_ms: float, t_overhead_ms: float, n: int) -> float:
    """F(A) = (T(A^N) - T_overhead) / N."""
    if n < 1:
        raise ValueError(f"stack size must be >= 1, got {n}")
    return (t_stack_ms - t_overhead_ms) / n


def shape_changing_latency(t_sub_ms: float, t_overhead_ms: float, fillers) -> float:
    """F(B) = (T(subgraph) - T_overhead) - sum of count * F(A) over the subgraph's fillers [(count, F(A))]."""
    if any(k < 0 for k, _ in fillers):
        raise ValueError(f"filler counts must be >= 0, got {[k for k, _ in fillers]}")
    return (t_sub_ms - t_overhead_ms) - sum(k * f for k, f in fillers)


def slope_and_boundary(t_n_ms: float, t_m_ms: float, n: int, m: int, t_overhead_ms: float) -> tuple:
    """Two stacks (n > m copies) of one shape-keeping op: (per-op cost from the slope,
    boundary cost = intercept - call overhead, floored at 0)."""
    if n <= m or m < 1:
        raise ValueError(f"need two stack sizes n > m >= 1, got n={n}, m={m}")
    per_op = (t_n_ms - t_m_ms) / (n - m)
    return per_op, max(t_n_ms - t_overhead_ms - n * per_op, 0.0)


def plan_for(op, n: int, reads_network_input: bool = False, writes_network_output: bool = False) -> StackPlan:
    """Stack a shape-keeping op N times; put a shape-changing op between N filler ops, N/2 on each side
    (all on the output side when it reads the network input, all on the input side when it writes the
    network output or its output is not an NCHW map).

    n = 1 gives naive single-op timing for every op (no fillers)."""
    if n < 1:
        raise ValueError(f"stack size must be >= 1, got {n}")
    if n == 1 or is_shape_keeping(op):
        return StackPlan(op, n, None)
    in_shape, out = onnx_ops.op_input_shape(op), onnx_ops.output_shape([op])
    if len(out) != 4 or (writes_network_output and not reads_network_input):
        return StackPlan(op, n, None, filler_for(in_shape), n)
    n_in = 0 if reads_network_input else n // 2
    return StackPlan(op, n, filler_for(out), filler_for(in_shape) if n_in else None, n_in)
