"""Measured-LUT pipeline: ONNX op graphs, stacking formulas, resumable profiling, JSON, validation metrics.

Graph outputs are checked numerically against an independent torch reference (onnxruntime runs the
graphs); the profiler's plumbing is checked with a fake runner whose latency is an exact, known
function of the graph, so every formula must recover the per-op costs exactly.
"""
from __future__ import annotations

import json
import math

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F

from vpunas import ops as O
from vpunas.profiling import onnx_ops, profiler, runners, stacking, validate
from vpunas.profiling.runners import CompileError


# ------------------------------------------------------------------------------ torch reference of op specs
_ACT = {"none": lambda x: x, "relu": F.relu, "relu6": F.relu6, "leaky_relu": lambda x: F.leaky_relu(x, 0.1),
        "sigmoid": torch.sigmoid, "tanh": torch.tanh, "hswish": F.hardswish, "swish": F.silu,
        "gelu": F.gelu}


class _Params:
    """Initializers of a graph in node order, consumed by the reference as it applies ops."""

    def __init__(self, model: onnx.ModelProto):
        init = {t.name: torch.from_numpy(onnx.numpy_helper.to_array(t).copy()) for t in model.graph.initializer}
        self.items = []
        for node in model.graph.node:
            if node.op_type in ("Conv", "Gemm"):
                self.items.append((init[node.input[1]], init[node.input[2]] if len(node.input) > 2 else None))
            if node.op_type == "PRelu":
                self.items.append((init[node.input[1]], None))
        self.pos = 0

    def next(self):
        self.pos += 1
        return self.items[self.pos - 1]


def ref_apply(op, x, params: _Params, side=None):
    kind = type(op).__name__
    if kind == "Conv2d":
        w, b = params.next()
        y = F.conv2d(x, w, b, op.stride, op.padding)
        if op.act == "prelu":
            return F.prelu(y, params.next()[0].flatten())
        return _ACT[op.act](y)
    if kind == "DepthwiseConv2d":
        w, b = params.next()
        return _ACT[op.act](F.conv2d(x, w, b, op.stride, op.kernel // 2, groups=op.ch))
    if kind == "MBConv":
        y = x
        if op.expand != 1:
            w, b = params.next()
            y = F.relu6(F.conv2d(y, w, b))
        w, b = params.next()
        y = F.relu6(F.conv2d(y, w, b, op.stride, op.kernel // 2, groups=op.in_ch * op.expand))
        w, b = params.next()
        y = F.conv2d(y, w, b)
        return y + x if (op.stride == 1 and op.in_ch == op.out_ch) else y
    if kind == "Pool":
        if op.kind == "max":
            return F.max_pool2d(x, op.kernel, op.stride, op.padding)
        return F.avg_pool2d(x, op.kernel, op.stride, op.padding, count_include_pad=True)
    if kind == "GlobalAvgPool":
        return F.adaptive_avg_pool2d(x, 1)
    if kind == "Linear":
        w, b = params.next()
        return F.linear(x.flatten(1), w, b)
    if kind == "Activation":
        return _ACT[op.kind](x)
    if kind == "Upsample":
        if op.mode == "nearest":
            return F.interpolate(x, scale_factor=op.scale, mode="nearest")
        return F.interpolate(x, scale_factor=op.scale, mode="bilinear", align_corners=op.align_corners)
    if kind == "DepthToSpace":
        return F.pixel_shuffle(x, op.block)
    if kind == "Add":
        return x + side
    if kind == "Skip":
        return x
    raise AssertionError(kind)


def run_ort(model, inputs):
    r = runners.OnnxRuntimeRunner("CPU", "f32", threads=1)
    return r.run(model.SerializeToString(), inputs)[0]


SMALL_OPS = [
    O.Conv2d(8, 8, 3, 1, 6, 6, act="relu"),
    O.Conv2d(4, 8, 3, 2, 7, 7, act="relu6"),
    O.Conv2d(8, 8, 3, 1, 5, 5, act="prelu"),
    O.DepthwiseConv2d(8, 5, 1, 6, 6, act="leaky_relu"),
    O.MBConv(8, 8, 3, 3, 1, 6, 6),
    O.MBConv(8, 16, 5, 1, 2, 6, 6),
    O.Add(8, 4, 4),
    O.Pool("max", 8, 3, 2, 7, 7, padding=1),
    O.Pool("avg", 8, 3, 1, 5, 5, padding=1),
    O.GlobalAvgPool(8, 4, 4),
    O.Linear(8, 8),
    O.Linear(16, 5),
    O.Activation("hswish", 8, 4, 4),
    O.Activation("gelu", 8, 4, 4),
    O.Upsample("bilinear", 2, 4, 3, 3),
    O.Upsample("nearest", 2, 4, 3, 3, ),
    O.DepthToSpace(16, 2, 3, 3),
]


@pytest.mark.parametrize("op", SMALL_OPS, ids=lambda op: op.key)
def test_stacked_graph_equals_n_applications(op):
    n = 3
    plan = stacking.plan_for(op, n)
    model = plan.graph(seed=7)
    onnx.checker.check_model(model, full_check=True)
    inputs = onnx_ops.random_inputs(model, seed=1)
    got = run_ort(model, inputs)
    params = _Params(model)
    x = torch.from_numpy(inputs["input"])
    side = {k: torch.from_numpy(v) for k, v in inputs.items() if k.startswith("side_")}
    for step in plan.ops():
        shape = tuple(x.shape[1:])
        x = ref_apply(step, x, params, side.get("side_" + "x".join(map(str, shape))))
    assert params.pos == len(params.items), "every weight of the graph was used by the reference"
    np.testing.assert_allclose(got, x.numpy(), rtol=2e-4, atol=2e-4)
    # Output shape agrees with the op spec's own out_shape (Linear flattens to (1, out_f)).
    single = onnx_ops.output_shape([op])
    assert int(np.prod(single)) == int(np.prod(op.out_shape))


def test_stack_copies_have_distinct_weights_and_plan_kinds():
    op = O.Conv2d(8, 8, 3, 1, 6, 6)
    plan = stacking.plan_for(op, 4)
    assert plan.method == "stack" and plan.ops() == [op] * 4
    weights = [onnx.numpy_helper.to_array(t) for t in plan.graph().graph.initializer if t.dims == [8, 8, 3, 3]]
    assert len(weights) == 4 and not np.allclose(weights[0], weights[1])
    mb = O.MBConv(8, 16, 3, 3, 2, 8, 8)
    a_in, a_out = O.DepthwiseConv2d(8, 3, 1, 8, 8), O.DepthwiseConv2d(16, 3, 1, 4, 4)
    down = stacking.plan_for(mb, 4)  # N/2 fillers on each side
    assert down.method == "filler" and down.ops() == [a_in, a_in, mb, a_out, a_out]
    assert down.fillers() == [(a_in, 2), (a_out, 2)]
    stem = stacking.plan_for(mb, 4, reads_network_input=True)  # the network's own input conversion stays
    assert stem.ops() == [mb] + [a_out] * 4 and stem.n_in == 0 and stem.n_out == 4
    last = stacking.plan_for(mb, 4, writes_network_output=True)
    assert last.ops() == [a_in] * 4 + [mb] and last.n_out == 0
    fc = stacking.plan_for(O.Linear(32, 10), 4)
    assert fc.ops() == [O.DepthwiseConv2d(32, 3, 1, 1, 1)] * 4 + [O.Linear(32, 10)] and fc.n_out == 0
    with pytest.raises(ValueError, match="inconsistent"):
        stacking.StackPlan(mb, 4, a_out, None, 2)
    assert stacking.plan_for(O.MBConv(8, 16, 3, 3, 2, 8, 8), 1).method == "single"
    assert stacking.is_zero_cost(O.Skip(8, 4, 4)) and not stacking.is_zero_cost(O.Add(8, 4, 4))


def test_subnet_graph_chains_ops_and_checks_shapes():
    ops = [O.Conv2d(3, 8, 3, 2, 16, 16, act="relu6"), O.MBConv(8, 8, 3, 3, 1, 8, 8), O.Skip(8, 8, 8),
           O.MBConv(8, 16, 3, 6, 2, 8, 8), O.GlobalAvgPool(16, 4, 4), O.Linear(16, 10)]
    model = onnx_ops.chain_graph(ops, seed=3)
    inputs = onnx_ops.random_inputs(model)
    got = run_ort(model, inputs)
    params, x = _Params(model), torch.from_numpy(inputs["input"])
    for op in ops:
        x = ref_apply(op, x, params)
    np.testing.assert_allclose(got, x.numpy(), rtol=2e-4, atol=2e-4)
    with pytest.raises(ValueError, match="do not chain"):
        onnx_ops.chain_graph([O.Conv2d(3, 8, 3, 2, 16, 16), O.MBConv(16, 16, 3, 3, 1, 8, 8)])


# ------------------------------------------------------------------------------------------- formulas
def test_formulas():
    # Two stacks of 8 and 4 copies: 1 ms per op, 0.2 ms call overhead, 0.3 ms boundary conversion.
    per_op, io = stacking.slope_and_boundary(8.5, 4.5, 8, 4, 0.2)
    assert per_op == pytest.approx(1.0) and io == pytest.approx(0.3)
    with pytest.raises(ValueError):
        stacking.slope_and_boundary(8.5, 4.5, 4, 4, 0.2)
    assert stacking.shape_keeping_latency(8.2, 0.2, 8) == pytest.approx(1.0)
    assert stacking.shape_changing_latency(5.2, 0.2, [(8, 0.5)]) == pytest.approx(1.0)
    assert stacking.shape_changing_latency(5.2, 0.2, [(4, 0.25), (4, 0.75)]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match=">= 0"):
        stacking.shape_changing_latency(5.2, 0.2, [(-1, 0.5)])
    with pytest.raises(ValueError):
        stacking.shape_keeping_latency(1.0, 0.1, 0)
    plan = stacking.plan_for(O.MBConv(8, 16, 3, 3, 2, 8, 8), 8)
    with pytest.raises(ValueError, match="filler"):
        plan.latency(5.0, 0.1)
    (a_in, _), (a_out, _) = plan.fillers()
    assert plan.latency(5.2, 0.2, {a_in.key: 0.25, a_out.key: 0.75}) == pytest.approx(1.0)


class FakeRunner:
    """Latency = call overhead + boundary conversion of the graph's input and output + sum of per-node
    costs (exact, known); optional failure / interruption."""

    runtime = "fake"
    requested_precision = "f32"
    threads = 1
    OVERHEAD = 0.25
    BOUNDARY_PER_ELEMENT = 2e-4  # each of input and output; an identity graph converts nothing

    def __init__(self, fail_on=None, interrupt_after=None, jitter=0.0):
        self.calls = 0
        self.fail_on = fail_on
        self.interrupt_after = interrupt_after
        self.jitter = jitter

    @staticmethod
    def node_cost(node, init) -> float:
        if node.op_type == "Identity":
            return 0.0
        size = sum(int(np.prod(init[i])) for i in node.input if i in init)
        return 0.01 + 1e-4 * size + {"Conv": 0.02, "Resize": 0.03}.get(node.op_type, 0.005)

    @classmethod
    def boundary(cls, model) -> float:
        if all(n.op_type == "Identity" for n in model.graph.node):
            return 0.0
        dims = [[d.dim_value for d in vi.type.tensor_type.shape.dim] for vi in model.graph.input]
        dims += [[d.dim_value for d in vi.type.tensor_type.shape.dim] for vi in model.graph.output]
        # Only NCHW maps get a blocked layout inside the runtime; (1, features) tensors stay plain.
        return cls.BOUNDARY_PER_ELEMENT * sum(int(np.prod(d)) for d in dims if len(d) == 4)

    @classmethod
    def cost(cls, model) -> float:
        init = {t.name: tuple(t.dims) for t in model.graph.initializer}
        return cls.OVERHEAD + cls.boundary(model) + sum(cls.node_cost(n, init) for n in model.graph.node)

    def prepare(self, model_bytes, inputs):
        """The 'prepared call' of the fake runtime is the graph's exact cost."""
        model = onnx.load_from_string(model_bytes)
        if self.fail_on and any(n.op_type == self.fail_on for n in model.graph.node):
            raise CompileError(f"fake runtime: {self.fail_on} is not supported")
        return self.cost(model)

    def time_interleaved(self, calls, rounds, repeats, warmup=0):
        self.calls += len(calls)  # graph timings
        if self.interrupt_after is not None and self.calls > self.interrupt_after:
            raise KeyboardInterrupt
        jitter = 1 + self.jitter * np.linspace(-1, 1, rounds * repeats).reshape(rounds, repeats)
        return np.array([c * jitter for c in calls])

    def info(self):
        return {"runtime": "fake 1.0", "device": "CPU", "precision": "f32", "threads": 1}


def true_cost(op) -> float:
    """The fake runner's cost of one op inside a network (no call overhead, no boundary conversion)."""
    model = onnx_ops.chain_graph([op])
    return FakeRunner.cost(model) - FakeRunner.OVERHEAD - FakeRunner.boundary(model)


def naive_cost(op) -> float:
    """What timing the op alone measures after removing the call overhead: boundary included."""
    return FakeRunner.cost(onnx_ops.chain_graph([op])) - FakeRunner.OVERHEAD


TINY_OPS = [O.Conv2d(3, 8, 3, 2, 8, 8, act="relu6"), O.MBConv(8, 8, 3, 3, 1, 4, 4), O.MBConv(8, 16, 3, 3, 2, 4, 4),
            O.Skip(8, 4, 4), O.GlobalAvgPool(16, 2, 2), O.Linear(16, 10), O.Upsample("nearest", 2, 8, 4, 4)]


@pytest.mark.parametrize("stack", [1, 8])
def test_profiler_recovers_known_costs(stack, tmp_path):
    settings = profiler.ProfileSettings(stack=stack, warmup=0, repeats=3)
    table = profiler.profile_ops(TINY_OPS, FakeRunner(), settings, tmp_path / "lut.json", progress=False)
    by_key = {e["key"]: e for e in table["entries"]}
    for op in TINY_OPS:
        e = by_key[op.key]
        assert e["status"] == "ok", e
        if stacking.is_zero_cost(op):
            assert e["latency_ms"] == 0.0
        else:  # stacking removes the boundary conversion; naive timing keeps it
            expect_ms = true_cost(op) if stack > 1 else naive_cost(op)
            assert e["latency_ms"] == pytest.approx(expect_ms, abs=1e-6), op.key
    assert by_key[O.Skip(8, 4, 4).key]["method"] == "zero"
    expect = "single" if stack == 1 else "filler"
    assert by_key[O.MBConv(8, 16, 3, 3, 2, 4, 4).key]["method"] == expect
    src = table["source"]
    assert src["kind"] == "measured" and src["stack"] == stack and src["complete"] is True
    assert src["boundary_subtracted"] is (stack > 1) and bool(src["boundary_ms"]) is (stack > 1)
    assert src["runtime"] == "fake 1.0" and src["precision"] == "f32" and src["threads"] == 1


def test_no_overhead_subtraction_keeps_call_cost():
    settings = profiler.ProfileSettings(stack=1, warmup=0, repeats=3, subtract_overhead=False)
    table = profiler.profile_ops(TINY_OPS[:2], FakeRunner(), settings, None, progress=False)
    for op, e in zip(TINY_OPS[:2], table["entries"]):
        assert e["latency_ms"] == pytest.approx(naive_cost(op) + FakeRunner.OVERHEAD, abs=1e-6)


def test_noisy_entries_are_retried_and_flagged(tmp_path):
    runner = FakeRunner(jitter=0.5)
    settings = profiler.ProfileSettings(stack=2, warmup=0, repeats=5, max_spread=0.05, retries=2)
    op = O.Conv2d(8, 8, 3, 1, 4, 4)
    table = profiler.profile_ops([op], runner, settings, None, progress=False)
    e = {e["key"]: e for e in table["entries"]}[op.key]
    assert e["status"] == "noisy" and "3 attempts" in e["note"] and e["spread"] > 0.05
    # op stack, the two filler stacks of the boundary and the overhead graph, each timed in 1 + 2 sessions
    assert runner.calls == 4 * 3


def test_failed_op_is_marked_and_rest_produced(tmp_path):
    ops = [O.Conv2d(3, 8, 3, 1, 4, 4), O.Upsample("bilinear", 2, 8, 4, 4), O.Conv2d(8, 8, 3, 1, 8, 8)]
    settings = profiler.ProfileSettings(stack=2, warmup=0, repeats=3)
    table = profiler.profile_ops(ops, FakeRunner(fail_on="Resize"), settings, tmp_path / "l.json", progress=False)
    by_key = {e["key"]: e for e in table["entries"]}
    bad = by_key[ops[1].key]
    assert bad["status"] == "failed" and "Resize is not supported" in bad["error"] and bad["latency_ms"] is None
    assert by_key[ops[2].key]["status"] == "ok" and table["source"]["failed"] == 1
    profiler.read_lut_json(tmp_path / "l.json")  # a table with a failed entry is still a valid file


def test_resume_keeps_measured_entries(tmp_path):
    out = tmp_path / "lut.json"
    # checkpoint every 2 ops; the cold-weight probe's result is resumed too
    settings = profiler.ProfileSettings(stack=4, warmup=0, repeats=3, batch=2, cold_weights=True)
    with pytest.raises(KeyboardInterrupt):
        profiler.profile_ops(TINY_OPS, FakeRunner(interrupt_after=17), settings, out, progress=False)
    partial = profiler.read_lut_json(out)
    assert partial["source"]["complete"] is False
    done = {e["key"] for e in partial["entries"]}
    assert 0 < len(done) < len(TINY_OPS)
    runner = FakeRunner()
    table = profiler.profile_ops(TINY_OPS, runner, settings, out, progress=False)
    assert {op.key for op in TINY_OPS} <= {e["key"] for e in table["entries"]}
    assert table["source"]["complete"] is True
    fresh = FakeRunner()
    profiler.profile_ops(TINY_OPS, fresh, settings, tmp_path / "fresh.json", progress=False)
    assert runner.calls < fresh.calls  # the rerun measured only what was missing
    # Other settings do not silently mix with the old entries.
    with pytest.raises(profiler.LutFileError, match="other settings.*stack"):
        profiler.profile_ops(TINY_OPS, FakeRunner(), profiler.ProfileSettings(stack=2, warmup=0, repeats=3, batch=2),
                             out, progress=False)


def test_json_round_trip_and_corrupt_files(tmp_path):
    out = tmp_path / "lut.json"
    settings = profiler.ProfileSettings(stack=2, warmup=0, repeats=3)
    table = profiler.profile_ops(TINY_OPS[:3], FakeRunner(), settings, out, progress=False)
    loaded = profiler.read_lut_json(out)
    assert loaded == json.loads(json.dumps(table))
    assert loaded["format"] == "vpunas-lut" and loaded["version"] == 1 and loaded["unit"] == "ms"
    for e in loaded["entries"]:
        assert O.op_from_dict(e["op"]).key == e["key"]
        assert {"key", "op", "latency_ms", "std_ms", "n"} <= set(e)
    # The search side reads the measured table unchanged.
    from vpunas.lut import LatencyTable

    lut = LatencyTable.load(out)
    assert lut.source["kind"] == "measured" and len(lut) == len(loaded["entries"])
    for op in TINY_OPS[:3]:
        assert lut.latency_ms(op) == pytest.approx(true_cost(op), abs=1e-6)
    assert loaded["source"]["boundary_ms"] and loaded["source"]["call_overhead_ms"]
    text = out.read_text()
    (tmp_path / "cut.json").write_text(text[: len(text) // 2])
    with pytest.raises(profiler.LutFileError, match=r"cut\.json.*not valid JSON"):
        profiler.read_lut_json(tmp_path / "cut.json")
    bad = dict(loaded, entries=[dict(loaded["entries"][0], latency_ms=-1.0)])
    (tmp_path / "neg.json").write_text(json.dumps(bad))
    with pytest.raises(profiler.LutFileError, match=r"neg\.json.*invalid latency_ms"):
        profiler.read_lut_json(tmp_path / "neg.json")
    (tmp_path / "other.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(profiler.LutFileError, match="not a vpunas LUT"):
        profiler.read_lut_json(tmp_path / "other.json")
    with pytest.raises(FileNotFoundError, match="missing.json"):
        profiler.read_lut_json(tmp_path / "missing.json")


# ------------------------------------------------------------------------------------------ validation
def test_error_metrics_known_values():
    m = validate.error_metrics([1.1, 1.8, 3.0, 4.4], [1.0, 2.0, 3.0, 4.0])
    assert m["mape_pct"] == pytest.approx((10 + 10 + 0 + 10) / 4)
    assert m["max_err_pct"] == pytest.approx(10.0)
    assert m["spearman"] == pytest.approx(1.0)
    assert m["within10_pct"] == pytest.approx(100.0)
    # Spearman with a swapped pair: 1 - 6 * sum(d^2) / (n (n^2 - 1)) = 1 - 6 * 2 / 60
    assert validate.spearman([1, 2, 3, 5, 4], [1, 2, 3, 4, 5]) == pytest.approx(0.9)
    assert validate.spearman([1, 1, 2], [1, 2, 3]) == pytest.approx(validate.pearson([1.5, 1.5, 3], [1, 2, 3]))
    assert validate.pearson([1, 2, 3], [2, 4, 6.5]) == pytest.approx(np.corrcoef([1, 2, 3], [2, 4, 6.5])[0, 1])
    with pytest.raises(ValueError):
        validate.error_metrics([1.0], [0.0])


class _TinySpace:
    """Two searched blocks over a fixed stem and head (the shape of a real space's API)."""

    class _Block:
        def __init__(self, candidates):
            self.candidates = candidates

    def __init__(self):
        self.stem = O.Conv2d(3, 8, 3, 2, 8, 8, act="relu6")
        self.blocks = [self._Block([O.MBConv(8, 8, k, e, 1, 4, 4) for k in (3, 5) for e in (1, 3)] + [O.Skip(8, 4, 4)]),
                       self._Block([O.MBConv(8, 16, k, 3, 2, 4, 4) for k in (3, 5)])]
        self.fixed_ops = [self.stem, O.GlobalAvgPool(16, 2, 2), O.Linear(16, 10)]

    def sample_arch(self, rng):
        return [int(rng.integers(len(b.candidates))) for b in self.blocks]

    def chosen_ops(self, choices):
        return [self.stem] + [b.candidates[c] for b, c in zip(self.blocks, choices)] + self.fixed_ops[1:]


def test_validation_with_additive_runner_is_exact(tmp_path):
    space = _TinySpace()
    settings = profiler.ProfileSettings(stack=4, warmup=0, repeats=3)
    stacked = profiler.profile_ops(validate.space_ops(space), FakeRunner(), settings, None, progress=False)
    raw = profiler.profile_ops(validate.space_ops(space), FakeRunner(),
                               profiler.ProfileSettings(stack=1, warmup=0, repeats=3, subtract_overhead=False),
                               None, progress=False)
    res = validate.validate_tables(space, {"stacked": stacked, "naive raw": raw}, FakeRunner(), samples=6,
                                   settings=profiler.ProfileSettings(warmup=0, repeats=3, rounds=2), progress=False)
    assert res.metrics["stacked"]["mape_pct"] < 1e-6
    assert res.metrics[validate.NOISE_LABEL]["mape_pct"] < 1e-9  # the fake runner is noiseless
    # Naive timing counts the call overhead and boundary conversion once per op: always over-predicts.
    assert res.metrics["naive raw"]["bias_pct"] > 5 and res.boundary_ms > 0
    png = tmp_path / "scatter.png"
    validate.scatter_png(res, png)
    assert png.stat().st_size > 1000 and png.read_bytes()[:4] == b"\x89PNG"
    assert "stacked" in res.table_text()
    res.write_csv(tmp_path / "v.csv")
    assert len((tmp_path / "v.csv").read_text().splitlines()) == 7
    missing = dict(stacked, entries=[e for e in stacked["entries"] if e["key"] != space.stem.key])
    with pytest.raises(profiler.LutFileError, match="no usable entry"):
        validate.validate_tables(space, {"partial": missing}, FakeRunner(), samples=3, progress=False)


class LayoutRunner(FakeRunner):
    """Conversions as on a CPU runtime: they depend on the op at the graph's boundary, not only on the
    shape. A conv on a < 8-channel input and GlobalAveragePool read the plain input themselves (no input
    conversion); input and output conversions cost differently per element."""

    IN_PER_ELEMENT, OUT_PER_ELEMENT = 3e-4, 1e-4

    @classmethod
    def boundary(cls, model) -> float:
        nodes = [n for n in model.graph.node if n.op_type != "Identity"]
        if not nodes:
            return 0.0
        dims = {vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim] for vi in model.graph.input}
        first, x = nodes[0], dims["input"]
        reads_plain = first.op_type == "GlobalAveragePool" or (
            first.op_type == "Conv" and x[1] < 8 and all(a.i == 1 for a in first.attribute if a.name == "group"))
        out = [d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim]
        return (0.0 if reads_plain else cls.IN_PER_ELEMENT * int(np.prod(x))) + \
            (cls.OUT_PER_ELEMENT * int(np.prod(out)) if len(out) == 4 else 0.0)


def test_network_boundary_ops_keep_their_real_conversions():
    """With boundary-dependent, asymmetric conversions the LUT sum is still exact: fillers on both sides
    of a shape-changing op make every inner tensor's conversions cancel, and the stem keeps the network
    input conversion it really pays (none here). Without network_io the stem is charged a filler's
    input conversion the network never pays."""
    space = _TinySpace()
    net_io = validate.network_io(space)
    assert net_io == ((1, 3, 8, 8), (1, 10))
    settings = profiler.ProfileSettings(stack=4, warmup=0, repeats=3)
    tables = {"stacked": profiler.profile_ops(validate.space_ops(space), LayoutRunner(), settings, None,
                                              progress=False, network_io=net_io),
              "no network_io": profiler.profile_ops(validate.space_ops(space), LayoutRunner(), settings, None,
                                                    progress=False)}
    stem = {e["key"]: e for e in tables["stacked"]["entries"]}[space.stem.key]
    assert stem["includes_network_input"] and stem["fillers"] == {"in": 0, "out": 4}
    assert tables["stacked"]["source"]["network_input"] == "1x3x8x8"
    gap = {e["key"]: e for e in tables["stacked"]["entries"]}[O.GlobalAvgPool(16, 2, 2).key]
    assert gap["status"] == "ok" and gap["latency_ms"] > 0 and gap["fillers"] == {"in": 2, "out": 2}
    res = validate.validate_tables(space, tables, LayoutRunner(), samples=6,
                                   settings=profiler.ProfileSettings(warmup=0, repeats=3, rounds=2), progress=False)
    assert res.metrics["stacked"]["mape_pct"] < 1e-6
    assert res.metrics["no network_io"]["bias_pct"] > 0.5
    # A table from before network_io (no includes_network_* flags) still validates: io(s) / 2 is added.
    old = dict(tables["stacked"], entries=[{k: v for k, v in e.items() if not k.startswith("includes_")}
                                           for e in tables["stacked"]["entries"]])
    res_old = validate.validate_tables(space, {"old": old}, LayoutRunner(), samples=6,
                                       settings=profiler.ProfileSettings(warmup=0, repeats=3, rounds=2),
                                       progress=False)
    assert res_old.boundary_ms > 0 and res_old.metrics["old"]["bias_pct"] > 0.5


# -------------------------------------------------------------------------------------- real runtimes
def test_runners_measure_and_report():
    model = stacking.plan_for(O.Conv2d(8, 8, 3, 1, 8, 8), 2).graph()
    inputs = onnx_ops.random_inputs(model)
    for name in ("onnxruntime", "openvino"):
        for clock in ("wall", "cpu"):
            r = runners.make_runner(name, "CPU", "f32", threads=1, clock=clock)
            t = r.measure(model.SerializeToString(), inputs, warmup=1, repeats=3)
            assert t.shape == (3,) and np.all(t >= 0) and t.sum() > 0
            info = r.info()
            assert info["precision"] == "f32" and info["device"] == "CPU" and info["runtime"].startswith(name)
            assert info["clock"] == clock


def test_runner_errors_list_what_is_available():
    with pytest.raises(ValueError, match="available runtimes: openvino, onnxruntime"):
        runners.make_runner("tensorrt")
    with pytest.raises(ValueError, match=r"available devices: .*CPU"):
        runners.make_runner("openvino", "NOPE")
    with pytest.raises(ValueError, match=r"available: .*CPU"):
        runners.make_runner("onnxruntime", "NOPE")
    with pytest.raises(ValueError, match="cpu clock .* --threads 1"):
        runners.make_runner("openvino", "CPU", "f32", threads=2, clock="cpu")
    with pytest.raises(ValueError, match="unknown clock"):
        runners.make_runner("onnxruntime", "CPU", "f32", threads=1, clock="sundial")
    with pytest.raises(CompileError, match="OpenVINO CPU"):
        runners.make_runner("openvino", "CPU", "f32", 1).measure(b"not an onnx model", {}, 0, 3)
    with pytest.raises(CompileError, match="onnxruntime"):
        runners.make_runner("onnxruntime", "CPU", "f32", 1).measure(b"not an onnx model", {}, 0, 3)


def test_cli_profile_and_validate_small(tmp_path, capsys):
    import argparse

    from vpunas.commands import profile as cmd

    parser = argparse.ArgumentParser()
    cmd.register(parser.add_subparsers(dest="command"))
    out = tmp_path / "lut.json"
    args = parser.parse_args(["profile", "--space", "mbconv", "--input", "8", "--runtime", "onnxruntime",
                              "--threads", "1", "--stack", "2", "--warmup", "0", "--repeats", "3", "--retries", "0",
                              "--max-spread", "10", "-o", str(out)])
    assert args.func(args) == 0
    table = profiler.read_lut_json(out)
    assert table["source"]["space_kwargs"] == {"preset": "small-32", "resolution": 8}
    assert table["source"]["runtime"].startswith("onnxruntime") and table["source"]["complete"]
    from vpunas.lut import LatencyTable
    from vpunas.spaces import get_space

    lut_matrix, mask = LatencyTable.load(out).matrix(get_space("mbconv", preset="small-32", resolution=8))
    assert lut_matrix.shape == mask.shape and np.all(lut_matrix[mask] >= 0)
    args = parser.parse_args(["validate-lut", str(out), "--samples", "3", "--warmup", "0", "--repeats", "3",
                              "--rounds", "1", "--png", str(tmp_path / "v.png")])
    assert args.func(args) == 0
    text = capsys.readouterr().out
    assert "MAPE" in text and "Spearman" in text and (tmp_path / "v.png").exists()
    (tmp_path / "bad.json").write_text("{")
    args = parser.parse_args(["validate-lut", str(tmp_path / "bad.json")])
    with pytest.raises(ValueError, match="bad.json"):
        args.func(args)
    partial = dict(table, source=dict(table["source"], complete=False))
    (tmp_path / "partial.json").write_text(json.dumps(partial))
    args = parser.parse_args(["validate-lut", str(tmp_path / "partial.json")])
    with pytest.raises(ValueError, match="partial.json is a partial LUT"):
        args.func(args)


def test_space_kwargs_from_cli_input():
    from vpunas.spaces import space_kwargs_from_cli as space_kwargs

    assert space_kwargs("mbconv", None, "224") == {"preset": "mobilenetv2-224", "resolution": 224}
    assert space_kwargs("mbconv", "small-32", "64") == {"preset": "small-32", "resolution": 64}
    assert space_kwargs("edsr", None, "360x640") == {"input_hw": [360, 640]}
    with pytest.raises(ValueError, match="HxW"):
        space_kwargs("mbconv", None, "big")


# ------------------------------------------------------------------------------------- interleaved timing
def test_time_interleaved_visits_every_call_each_round_in_alternating_order():
    log = []
    calls = [lambda i=i: log.append(i) for i in range(3)]
    times = runners.time_interleaved(calls, rounds=3, repeats=2, warmup=1)
    assert times.shape == (3, 3, 2) and np.all(times >= 0)
    warm, body = log[:3], log[3:]
    assert warm == [0, 1, 2]
    # each visit: one untimed call + 2 timed ones; rounds alternate direction
    visits = [body[i] for i in range(0, len(body), 3)]
    assert visits == [0, 1, 2, 2, 1, 0, 0, 1, 2]
    assert all(body[i] == body[i + 1] == body[i + 2] for i in range(0, len(body), 3))
    with pytest.raises(ValueError, match="rounds and repeats"):
        runners.time_interleaved(calls, rounds=0, repeats=2)


class DriftRunner(FakeRunner):
    """Exact graph costs times a host slowdown that changes between rounds (a slow drift of the load)."""

    def time_interleaved(self, calls, rounds, repeats, warmup=0):
        self.calls += len(calls)
        slow = 1 + 0.5 * (np.arange(rounds) % 3 == 1)  # every third round 1.5x slower for every graph
        return np.array([c * np.repeat(slow[:, None], repeats, axis=1) for c in calls])


def test_time_graphs_per_round_values_and_failures():
    ok = onnx_ops.chain_graph([O.Conv2d(8, 8, 3, 1, 4, 4)])
    bad = onnx_ops.chain_graph([O.Upsample("bilinear", 2, 8, 4, 4)])
    settings = profiler.ProfileSettings(warmup=0, repeats=2, rounds=6, max_spread=10, estimator="min")
    t_ok, t_bad = profiler.time_graphs(DriftRunner(fail_on="Resize"), [ok, bad], settings)
    assert isinstance(t_bad, CompileError) and "Resize" in str(t_bad)
    cost = FakeRunner.cost(ok)
    assert t_ok.value_ms == pytest.approx(cost)  # min over the rounds: the unloaded cost
    assert t_ok.round_ms == pytest.approx((cost, 1.5 * cost, cost, cost, 1.5 * cost, cost))
    assert t_ok.n == 12 and not t_ok.noisy


def test_profile_session_interleaves_op_filler_boundary_and_overhead_graphs():
    """One session per batch: every graph an entry needs is timed in the same interleaved call."""
    class CountingRunner(FakeRunner):
        def __init__(self):
            super().__init__()
            self.sessions = []

        def time_interleaved(self, calls, rounds, repeats, warmup=0):
            self.sessions.append(len(calls))
            return super().time_interleaved(calls, rounds, repeats, warmup)

    runner = CountingRunner()
    settings = profiler.ProfileSettings(stack=4, warmup=0, repeats=2, rounds=2, batch=4)
    table = profiler.profile_ops(TINY_OPS, runner, settings, None, progress=False)
    # 7 ops in batches of 4 -> 2 sessions, each timing all its graphs together
    assert len(runner.sessions) == 2 and min(runner.sessions) > 4
    assert table["source"]["rounds"] == 2 and table["source"]["timing"] == "interleaved rounds"
    # A load drift shared by the graphs of a session cancels out of the min estimator exactly.
    mins = profiler.profile_ops(TINY_OPS, DriftRunner(), profiler.ProfileSettings(
        stack=4, warmup=0, repeats=2, rounds=3, estimator="min"), None, progress=False)
    by_key = {x["key"]: x for x in mins["entries"]}
    for op in TINY_OPS:
        if not stacking.is_zero_cost(op):
            assert by_key[op.key]["latency_ms"] == pytest.approx(true_cost(op), abs=1e-6), op.key


def test_split_half_noise_ceiling():
    rounds = np.array([[1.0, 1.1, 1.2, 1.1], [2.0, 2.0, 2.0, 2.0], [3.0, 2.7, 3.0, 2.7]])
    m = validate.split_half_noise(rounds, "median")  # odd rounds [1.1, 2.0, 2.7] vs even [1.1, 2.0, 3.0]
    assert m["mape_pct"] == pytest.approx((0 + 0 + 10) / 3)
    assert m["spearman"] == pytest.approx(1.0)
    # min: odd [1.1, 2.0, 2.7] vs even [1.0, 2.0, 3.0]
    assert validate.split_half_noise(rounds, "min")["mape_pct"] == pytest.approx((10 + 0 + 10) / 3)
    with pytest.raises(ValueError, match=">= 2 rounds"):
        validate.split_half_noise(rounds[:, :1])


def test_settings_reject_too_few_timed_calls():
    with pytest.raises(ValueError, match="rounds \\* repeats >= 3"):
        profiler.ProfileSettings(repeats=1, rounds=2)
    with pytest.raises(ValueError, match="batch"):
        profiler.ProfileSettings(batch=0)
    assert profiler.ProfileSettings(repeats=1, rounds=3).rounds == 3


def test_cold_weight_term_formula():
    # all of the op's weights cold in a network, none of it paid in a graph holding <= warm_mb of weights
    assert profiler.cold_weight_ms(2.0, 1.0, 0.025, 8.0, 32.0) == pytest.approx(0.05)
    assert profiler.cold_weight_ms(2.0, 20.0, 0.025, 8.0, 32.0) == pytest.approx(0.025)  # half paid in its graph
    assert profiler.cold_weight_ms(2.0, 40.0, 0.025, 8.0, 32.0) == 0.0  # its graph streamed them already
    assert profiler.cold_weight_ms(2.0, 1.0, -0.01, 8.0, 32.0) == 0.0  # no negative term from a noisy probe
    with pytest.raises(ValueError, match="cold_mb > warm_mb"):
        profiler.cold_weight_ms(1.0, 1.0, 0.025, 8.0, 8.0)


class CacheFakeRunner(FakeRunner):
    """FakeRunner whose weights cost twice as much per element in a graph holding more than 16 MB of
    them (they no longer stay in cache)."""

    CACHE_ELEMENTS = 4 * 2 ** 20

    @classmethod
    def cost(cls, model) -> float:
        n_weights = sum(int(np.prod(t.dims)) for t in model.graph.initializer)
        cold = 1e-4 * n_weights if n_weights > cls.CACHE_ELEMENTS else 0.0
        return FakeRunner.cost(model) + cold


def test_profiler_adds_measured_cold_weight_cost(tmp_path):
    out = tmp_path / "lut.json"
    settings = profiler.ProfileSettings(stack=4, warmup=0, repeats=3, cold_weights=True)
    table = profiler.profile_ops(TINY_OPS, CacheFakeRunner(), settings, out, progress=False)
    ws = table["source"]["weight_stream"]
    per_mb = 1e-4 * 2 ** 20 / 4  # the fake's extra cost per MB of cold float32 weights
    assert ws["extra_ms_per_mb"] == pytest.approx(per_mb, rel=1e-3)
    assert ws["cold_ms_per_mb"] > ws["warm_ms_per_mb"] > 0
    entries = {e["key"]: e for e in table["entries"]}
    for op in TINY_OPS:
        e = entries[op.key]
        if stacking.is_zero_cost(op):
            assert "cold_weights_ms" not in e
            continue
        op_mb = profiler.weights_mb(onnx_ops.chain_graph([op]))
        assert e["weight_mb"] == pytest.approx(op_mb, abs=1e-4) and e["graph_weight_mb"] < ws["warm_mb"]
        assert e["cold_weights_ms"] == pytest.approx(ws["extra_ms_per_mb"] * op_mb, rel=1e-3, abs=1e-6)
        assert e["latency_ms"] == pytest.approx(true_cost(op) + e["cold_weights_ms"], rel=1e-4, abs=1e-5)
    # without the term the entries are the in-cache costs, and a table without it still loads
    plain = profiler.profile_ops(TINY_OPS, CacheFakeRunner(), profiler.ProfileSettings(stack=4, warmup=0, repeats=3,
                                 cold_weights=False), None, progress=False)
    assert "weight_stream" not in plain["source"]
    e = {e["key"]: e for e in plain["entries"]}[TINY_OPS[1].key]
    assert "cold_weights_ms" not in e and e["latency_ms"] == pytest.approx(true_cost(TINY_OPS[1]), rel=1e-4)
    old = tmp_path / "old.json"
    profiler.write_json_atomic(old, plain)
    assert profiler.read_lut_json(old)["source"]["cold_weights"] is False
    with pytest.raises(profiler.LutFileError, match="cold_weights"):  # no silent mix of the two kinds
        profiler.profile_ops(TINY_OPS, CacheFakeRunner(), settings, old, progress=False)


def test_cold_weights_auto_follows_the_networks_weight_size():
    """auto: on for MobileNetV2 at 224 px (~14.6 MB of weights, more than the warm probe's 8 MB stays cached),
    off at 32 px (~1.7 MB); on / off override; anything else is refused."""
    from vpunas.spaces import get_space, space_kwargs_from_cli

    big = get_space("mbconv", **space_kwargs_from_cli("mbconv", None, "224"))
    small = get_space("mbconv", **space_kwargs_from_cli("mbconv", None, "32"))
    on, mb_big = validate.cold_weights_setting("auto", big)
    off, mb_small = validate.cold_weights_setting("auto", small)
    assert on and not off and mb_big > 8.0 > mb_small > 0
    assert validate.cold_weights_setting("off", big)[0] is False and validate.cold_weights_setting("on", small)[0] is True
    assert profiler.streams_weights(8.1) and not profiler.streams_weights(7.9)
    with pytest.raises(ValueError, match="auto, on or off"):
        validate.cold_weights_setting("yes", big)
