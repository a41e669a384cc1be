"""Operator specs: shapes, keys, cost items, validation."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch
from torch import nn

from vpunas import ops

ALL_OPS = [
    ops.MBConv(24, 40, 5, 6, 2, 112, 112),
    ops.MBConv(32, 32, 3, 1, 1, 28, 28),
    ops.MBConv(16, 16, 7, 3, 1, 56, 56, act="relu"),
    ops.Conv2d(3, 32, 3, 2, 224, 224, act="relu6"),
    ops.Conv2d(64, 64, 3, 1, 90, 160, act="leaky_relu", bias=False),
    ops.Conv2d(64, 64, 5, 1, 90, 160, act="prelu"),
    ops.DepthwiseConv2d(96, 3, 1, 14, 14, "relu6"),
    ops.Add(24, 28, 28),
    ops.Pool("max", 64, 3, 2, 112, 112, 1),
    ops.Pool("avg", 64, 2, 2, 56, 56),
    ops.GlobalAvgPool(1280, 7, 7),
    ops.Linear(1280, 1000),
    ops.Activation("leaky_relu", 64, 90, 160),
    ops.Activation("gelu", 64, 9, 16),
    ops.Upsample("bilinear", 2, 64, 90, 160),
    ops.Upsample("nearest", 3, 3, 90, 160),
    ops.DepthToSpace(256, 2, 90, 160),
    ops.Skip(32, 28, 28),
]


@pytest.mark.parametrize("op", ALL_OPS, ids=lambda o: o.key)
def test_key_and_dict_round_trip(op):
    assert ops.op_from_key(op.key) == op
    assert ops.op_from_dict(op.to_dict()) == op
    assert hash(op) == hash(ops.op_from_key(op.key))


def test_key_format_example():
    assert ops.MBConv(24, 40, 5, 6, 2, 112, 112).key == "mbconv_k5_e6_s2_i24_o40_112x112_act-relu6"


def test_keys_are_distinct():
    assert len({op.key for op in ALL_OPS}) == len(ALL_OPS)


def _torch_module(op):
    if isinstance(op, ops.Conv2d):
        return nn.Conv2d(op.in_ch, op.out_ch, op.kernel, op.stride, op.padding, bias=op.bias)
    if isinstance(op, ops.DepthwiseConv2d):
        return nn.Conv2d(op.ch, op.ch, op.kernel, op.stride, op.kernel // 2, groups=op.ch)
    if isinstance(op, ops.Pool):
        cls = nn.MaxPool2d if op.kind == "max" else nn.AvgPool2d
        return cls(op.kernel, op.stride, op.padding)
    if isinstance(op, ops.Upsample):
        return nn.Upsample(scale_factor=op.scale, mode=op.mode)
    if isinstance(op, ops.DepthToSpace):
        return nn.PixelShuffle(op.block)
    return None


@pytest.mark.parametrize("op", [o for o in ALL_OPS if _torch_module(o) is not None], ids=lambda o: o.key)
def test_out_shape_matches_torch(op):
    module = _torch_module(op)
    c_in = getattr(op, "in_ch", None) or getattr(op, "ch", None) or op.ch_in
    h, w = (op.in_h, op.in_w)
    y = module(torch.zeros(1, c_in, h, w))
    assert tuple(y.shape[1:]) == op.out_shape
    if isinstance(op, (ops.Conv2d, ops.DepthwiseConv2d)):
        n_params = sum(p.numel() for p in module.parameters())
        if isinstance(op, ops.DepthwiseConv2d):
            assert op.params == n_params
        else:
            assert op.params == n_params + (op.out_ch if op.act == "prelu" else 0)


def test_mbconv_parts_and_counts():
    m = ops.MBConv(24, 40, 5, 6, 2, 112, 112)
    parts = m.parts()
    assert [type(p).__name__ for p in parts] == ["Conv2d", "DepthwiseConv2d", "Conv2d"]
    assert m.out_shape == (40, 56, 56)
    # expand 24->144 on 112x112, dw 5x5 stride 2 -> 56x56, project 144->40
    assert m.macs == 112 * 112 * 144 * 24 + 56 * 56 * 144 * 25 + 56 * 56 * 40 * 144
    assert m.params == (24 * 144 + 144) + (144 * 25 + 144) + (144 * 40 + 40)
    res = ops.MBConv(32, 32, 3, 1, 1, 28, 28)
    assert [type(p).__name__ for p in res.parts()] == ["DepthwiseConv2d", "Conv2d", "Add"]  # expand 1: no expand conv


def test_dpu_layers_pad_channels_and_fuse_activations():
    layers = ops.MBConv(24, 40, 5, 6, 2, 112, 112).dpu_layers("VPU_2_7", "FLOAT16")
    assert [l.op for l in layers] == ["CONVOLUTION", "DW_CONVOLUTION", "CONVOLUTION"]
    exp, dw, proj = layers
    assert (exp.in_c, exp.out_c, exp.activation) == (32, 144, "RELU")  # 24 padded to 32, relu6 fused as clamp
    assert (dw.in_w, dw.out_w, dw.k_w, dw.s_w, dw.pad_t) == (112, 56, 5, 2, 2)
    assert (proj.in_c, proj.out_c, proj.activation) == (144, 48, "NONE")
    assert all(l.dtype == "FLOAT16" and l.device == "VPU_2_7" for l in layers)
    stem = ops.Conv2d(3, 32, 3, 2, 224, 224)
    assert stem.dpu_layers("VPU_2_7")[0].in_c == 3  # channel-major convolution keeps the real channel count
    assert stem.dpu_layers("VPU_2_0")[0].in_c == 16  # VPU 2.0 has no CM-conv path in VPUNN: padded
    lrelu = ops.Conv2d(64, 64, 3, 1, 90, 160, act="leaky_relu").dpu_layers("VPU_4_0")
    assert lrelu[0].activation == "LRELU" and ops.Conv2d(64, 64, 3, 1, 90, 160, act="leaky_relu").shave_ops("VPU_4_0") == []
    gap = ops.GlobalAvgPool(1280, 7, 7).dpu_layers("VPU_2_7")[0]
    assert (gap.op, gap.k_w, gap.out_w) == ("AVEPOOL", 7, 1)


def test_shave_ops():
    assert ops.Conv2d(64, 64, 3, 1, 9, 16, act="prelu").shave_ops("VPU_2_7") == [
        ops.ShaveOp("prelu", (64, 9, 16), (64, 9, 16))]
    assert ops.Upsample("nearest", 2, 3, 90, 160).shave_ops("VPU_2_7")[0].out_shape == (3, 180, 320)
    d2s = ops.DepthToSpace(256, 2, 90, 160).shave_ops("VPU_4_0")[0]
    assert (d2s.in_shape, d2s.out_shape) == ((256, 90, 160), (64, 180, 320))
    assert ops.Upsample("nearest", 2, 3, 9, 16).dpu_layers("VPU_2_7") == []
    assert ops.Skip(16, 4, 4).dpu_layers("VPU_2_7") == [] and ops.Skip(16, 4, 4).shave_ops("VPU_2_7") == []


@pytest.mark.parametrize("make, message", [
    (lambda: ops.Conv2d(0, 16, 3, 1, 8, 8), "in_ch"),
    (lambda: ops.Conv2d(16, 16, 3, 1, 8, 8, act="swishy"), "act"),
    (lambda: ops.Conv2d(16, 16, 9, 1, 2, 2, padding=0), "larger"),
    (lambda: ops.MBConv(16, 16, 3, 0, 1, 8, 8), "expand"),
    (lambda: ops.Pool("median", 16, 3, 1, 8, 8), "kind"),
    (lambda: ops.DepthToSpace(30, 2, 8, 8), "divisible"),
    (lambda: ops.Upsample("nearest", 2, 3, 8, 8, align_corners=True), "align_corners"),
    (lambda: ops.op_from_key("mbconv_k5_e6"), "not a valid op key"),
    (lambda: ops.op_from_dict({"type": "Nope"}), "type"),
    (lambda: ops.Add(16, 4, 4).dpu_layers("VPU_9_9"), "device"),
])
def test_bad_input_is_a_clear_error(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_register_op_type_for_composite_ops():
    @dataclass(frozen=True)
    class TwoConvs(ops.OpSpec):
        ch: int
        h: int
        w: int
        KEY_TEMPLATE: ClassVar[str] = "twoconvs_c{ch}_{h}x{w}"

        def dpu_layers(self, device, dtype="UINT8"):
            conv = ops.Conv2d(self.ch, self.ch, 3, 1, self.h, self.w)
            return conv.dpu_layers(device, dtype) * 2

    ops.register_op_type(TwoConvs)
    op = TwoConvs(32, 8, 8)
    assert ops.op_from_key(op.key) == op and ops.op_from_dict(op.to_dict()) == op
    with pytest.raises(ValueError, match="not an OpSpec"):
        ops.register_op_type(int)
