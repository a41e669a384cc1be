"""Helpers to locate fields inside a real .vpunn flatbuffer, so tests can corrupt one field on purpose.

Only reads the layout (VPUNN schema src/schema/vpunn.fbs: Model{name, tensors, inputs, outputs, operators,
buffers}, Tensor{name, shape, type, buffer}, Layer{name, inputs, outputs, implementation_type,
implementation, activation_function}, Buffer{data}); the tests then patch bytes at those positions.
"""
from __future__ import annotations

import struct


def u32(buf: bytes, pos: int) -> int:
    return struct.unpack_from("<I", buf, pos)[0]


def field_pos(buf: bytes, table: int, field_id: int) -> int | None:
    """Byte position of a field of the table at `table`, or None when absent."""
    vtable = table - struct.unpack_from("<i", buf, table)[0]
    vt_size = struct.unpack_from("<H", buf, vtable)[0]
    slot = 4 + 2 * field_id
    if slot + 2 > vt_size:
        return None
    off = struct.unpack_from("<H", buf, vtable + slot)[0]
    return table + off if off else None


def deref(buf: bytes, pos: int) -> int:
    return pos + u32(buf, pos)


def model_table(buf: bytes) -> int:
    return u32(buf, 0)


def vector(buf: bytes, table: int, field_id: int) -> tuple[int, int, int]:
    """(position of the length word, element count, position of element 0) of a vector field."""
    at = deref(buf, field_pos(buf, table, field_id))
    return at, u32(buf, at), at + 4


def table_element(buf: bytes, table: int, field_id: int, index: int) -> int:
    _, n, start = vector(buf, table, field_id)
    assert 0 <= index < n
    return deref(buf, start + 4 * index)


def layer(buf: bytes, i: int) -> int:
    return table_element(buf, model_table(buf), 4, i)


def tensor(buf: bytes, i: int) -> int:
    return table_element(buf, model_table(buf), 1, i)


def layer_inputs(buf: bytes, i: int) -> list[int]:
    _, n, start = vector(buf, layer(buf, i), 1)
    return [struct.unpack_from("<i", buf, start + 4 * k)[0] for k in range(n)]


def tensor_buffer_index(buf: bytes, t: int) -> int:
    return u32(buf, field_pos(buf, tensor(buf, t), 3))


def buffer_data_length_pos(buf: bytes, b: int) -> int:
    """Position of the length word of Buffer[b].data."""
    btab = table_element(buf, model_table(buf), 5, b)
    return vector(buf, btab, 0)[0]


def patch_u32(buf: bytes, pos: int, value: int) -> bytes:
    out = bytearray(buf)
    struct.pack_into("<I", out, pos, value & 0xFFFFFFFF)
    return bytes(out)


def patch_u8(buf: bytes, pos: int, value: int) -> bytes:
    out = bytearray(buf)
    out[pos] = value & 0xFF
    return bytes(out)


def layer_param_pos(buf: bytes, i: int, which: int) -> tuple[int, int]:
    """(position of the first float, float count) of layer i's weight (which=1) or bias (which=2) data."""
    t = layer_inputs(buf, i)[which]
    at = buffer_data_length_pos(buf, tensor_buffer_index(buf, t))
    return at + 4, u32(buf, at) // 4


def patch_floats(buf: bytes, pos: int, values) -> bytes:
    out = bytearray(buf)
    struct.pack_into(f"<{len(values)}f", out, pos, *values)
    return bytes(out)
