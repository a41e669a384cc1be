"""Operator stacking: graphs that make one op's latency measurable, and the formulas that recover it.

Timing one small op through a runtime call is dominated by the call's fixed overhead and its noise.
Stacking amortises both:

* shape-keeping op A (output shape == input shape): time A applied N times,
  F(A) = (T(A^N) - T_overhead) / N.
* shape-changing op B (stride 2, channel change, upsampling, ...): time B followed by N copies of a
  shape-keeping filler op A whose cost F(A) is itself measured by stacking,
  F(B) = (T(B A^N) - T_overhead) - N * F(A).
  When B's output is not an NCHW map (Linear), the fillers go before B on its input instead.

T_overhead is the fixed cost of one call, measured the same way: the empty (identity) graph's latency
plus, when boundary correction is on, the graph's boundary cost. Runtimes keep activations in their own
blocked layouts inside a graph but convert the plain NCHW graph input and output at the boundary; an
op inside a network never pays that, and on a CPU it can cost as much as a small op. The boundary cost
io(s) of a shape s comes from two stacks of the filler at s (N and N/2 copies): the slope gives the
filler's own cost, the intercept minus the call overhead gives io(s); a graph reading shape s_in and
writing s_out pays (io(s_in) + io(s_out)) / 2.
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
    n: int                      # stack size N
    filler: Optional[object]    # shape-keeping op A for a shape-changing op; None for a stack
    fillers_before: bool = False

    @property
    def method(self) -> str:
        if self.filler is None:
            return "stack" if self.n > 1 else "single"
        return "filler"

    def ops(self) -> list:
        if self.filler is None:
            return [self.op] * self.n
        fill = [self.filler] * self.n
        return fill + [self.op] if self.fillers_before else [self.op] + fill

    def graph(self, seed: int = 0) -> onnx.ModelProto:
        return onnx_ops.chain_graph(self.ops(), seed=seed, name=f"{self.method}{self.n}")

    def latency(self, t_graph_ms: float, t_overhead_ms: float, filler_ms: Optional[float] = None) -> float:
        """F(op) from the graph's time; `filler_ms` = F(A), needed when the plan uses fillers."""
        if self.filler is None:
            return shape_keeping_latency(t_graph_ms, t_overhead_ms, self.n)
        if filler_ms is None:
            raise ValueError("a plan with filler ops needs the filler's latency F(A)")
        return shape_changing_latency(t_graph_ms, t_overhead_ms, self.n, filler_ms)


def shape_keeping_latency(t_stack_ms: float, t_overhead_ms: float, n: int) -> float:
    """F(A) = (T(A^N) - T_overhead) / N."""
    if n < 1:
        raise ValueError(f"stack size must be >= 1, got {n}")
    return (t_stack_ms - t_overhead_ms) / n


def shape_changing_latency(t_sub_ms: float, t_overhead_ms: float, n: int, filler_ms: float) -> float:
    """F(B) = (T(B A^N) - T_overhead) - N * F(A)."""
    if n < 0:
        raise ValueError(f"filler count must be >= 0, got {n}")
    return (t_sub_ms - t_overhead_ms) - n * filler_ms


def slope_and_boundary(t_n_ms: float, t_m_ms: float, n: int, m: int, t_overhead_ms: float) -> tuple:
    """Two stacks (n > m copies) of one shape-keeping op: (per-op cost from the slope,
    boundary cost = intercept - call overhead, floored at 0)."""
    if n <= m or m < 1:
        raise ValueError(f"need two stack sizes n > m >= 1, got n={n}, m={m}")
    per_op = (t_n_ms - t_m_ms) / (n - m)
    return per_op, max(t_n_ms - t_overhead_ms - n * per_op, 0.0)


def plan_for(op, n: int) -> StackPlan:
    """Stack a shape-keeping op N times; surround a shape-changing op with N filler ops.

    n = 1 gives naive single-op timing for every op (no fillers)."""
    if n < 1:
        raise ValueError(f"stack size must be >= 1, got {n}")
    if n == 1 or is_shape_keeping(op):
        return StackPlan(op, n, None)
    out = onnx_ops.output_shape([op])
    if len(out) == 4:
        return StackPlan(op, n, filler_for(out))
    in_shape = onnx_ops.op_input_shape(op)
    return StackPlan(op, n, filler_for(in_shape), fillers_before=True)
