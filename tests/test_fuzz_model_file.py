"""Fuzzing the .vpunn reader: thousands of mutated copies of a real model (byte flips, truncations,
inflated lengths and offsets). Each must either load (and then run) or raise ValueError; anything else
(a crash, another exception type) fails. The same mutations run natively, under AddressSanitizer, in
tests/cpp/test_model_file_fuzz.cpp.
"""
from __future__ import annotations

import struct

import numpy as np
import pytest

from conftest import model_path
from vpunas import _core

N_VARIANTS = 3000


def _offset_like_positions(buf: bytes) -> np.ndarray:
    """4-aligned positions whose u32 is a plausible offset or length: the structural words to hit."""
    words = np.frombuffer(buf[: len(buf) // 4 * 4], dtype="<u4")
    return np.flatnonzero((words > 0) & (words < len(buf))) * 4


def _mutate(buf: bytes, rng: np.random.Generator, structural: np.ndarray) -> bytes:
    kind = rng.integers(6)
    out = bytearray(buf)
    if kind == 0:  # random byte flips anywhere
        for pos in rng.integers(0, len(out), size=rng.integers(1, 9)):
            out[pos] ^= 1 << int(rng.integers(8))
    elif kind == 1:  # flips in the first 4 KiB and the last 4 KiB (tables and vtables live there)
        for _ in range(rng.integers(1, 5)):
            pos = int(rng.integers(0, 4096)) if rng.random() < 0.5 else len(out) - 1 - int(rng.integers(0, 4096))
            out[pos] = int(rng.integers(256))
    elif kind == 2:  # truncation
        return bytes(out[: int(rng.integers(0, len(out)))])
    elif kind == 3:  # inflate / corrupt a length or offset word
        pos = int(rng.choice(structural))
        value = int(rng.choice([0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, len(buf), len(buf) - pos, 0, 1]))
        if rng.random() < 0.3:
            value = struct.unpack_from("<I", out, pos)[0] + int(rng.integers(-64, 65))
        struct.pack_into("<I", out, pos, value & 0xFFFFFFFF)
    elif kind == 4:  # random 16-bit value into a vtable-ish position
        pos = int(rng.integers(0, len(out) - 2))
        struct.pack_into("<H", out, pos, int(rng.integers(0, 65536)))
    else:  # cut a piece out of the middle (shifts every later offset)
        a = int(rng.integers(0, len(out)))
        b = min(len(out), a + int(rng.integers(1, 256)))
        del out[a:b]
    return bytes(out)


def test_fuzz_mutated_models_load_or_raise_value_error():
    buf = model_path("vpu_2_7.fast.vpunn").read_bytes()
    rng = np.random.default_rng(20261128)
    structural = _offset_like_positions(buf)
    x = np.random.default_rng(1).random((3, 93), dtype=np.float32)
    loaded = refused = 0
    messages = set()
    for _ in range(N_VARIANTS):
        data = _mutate(buf, rng, structural)
        try:
            m = _core.MlpModel.from_bytes(data)
        except ValueError as exc:
            refused += 1
            messages.add(str(exc).split(":")[0])
            continue
        loaded += 1
        if m.input_size > 0:  # a variant that still parses must also run
            y = m.forward(np.ascontiguousarray(np.resize(x, (3, m.input_size)), dtype=np.float32))
            assert y.shape == (3, m.output_size)
    # Both outcomes occur, so the mutations really reach the checks (not all rejected at the header).
    assert loaded > 100 and refused > 500, (loaded, refused)
    assert len(messages) >= 3, messages


@pytest.mark.parametrize("size", range(0, 64))
def test_every_tiny_prefix_is_refused(size):
    buf = model_path("vpu_2_7.fast.vpunn").read_bytes()
    with pytest.raises(ValueError):
        _core.MlpModel.from_bytes(buf[:size])
