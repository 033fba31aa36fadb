"""The binary tensor data extension's byte layouts, with the standard library's ``struct``.

Fixed-size elements are little-endian, row-major, without padding (BOOL: one byte, 0 or 1);
a BYTES element is a 4-byte little-endian length followed by that many bytes (Triton's
``docs/protocol/extension_binary_data.md``). No numpy: the base install stays small.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

from catwalk.protocol.tensors import ITEM_SIZE

# struct's codes with "<": little-endian, standard sizes, on every platform.
CODES = {
    "BOOL": "B",
    "UINT8": "B",
    "UINT16": "H",
    "UINT32": "I",
    "UINT64": "Q",
    "INT8": "b",
    "INT16": "h",
    "INT32": "i",
    "INT64": "q",
    "FP16": "e",
    "FP32": "f",
    "FP64": "d",
}
_LENGTH = struct.Struct("<I")
MAX_BYTES_ELEMENT = 2**32 - 1


def unpack(datatype: str, data: bytes | memoryview, count: int) -> list[Any]:
    """``count`` elements of ``datatype`` from ``data``; ValueError when the sizes disagree."""
    if datatype == "BYTES":
        return split_bytes(data, count)
    size = ITEM_SIZE[datatype] * count
    if len(data) != size:
        raise ValueError(
            f"{len(data)} bytes of binary data, expected {size} ({count} x {datatype})"
        )
    values = list(struct.unpack(f"<{count}{CODES[datatype]}", data))
    if datatype == "BOOL":
        if any(v > 1 for v in values):
            raise ValueError("a BOOL element is neither 0 nor 1")
        return [v == 1 for v in values]
    return values


def split_bytes(data: bytes | memoryview, count: int) -> list[bytes]:
    """The ``count`` length-prefixed elements of a BYTES tensor, all of ``data``."""
    view = memoryview(data)
    out: list[bytes] = []
    at, end = 0, len(view)
    unpack_length = _LENGTH.unpack_from
    while at < end:
        if end - at < 4:
            raise ValueError(f"BYTES element {len(out)}: {end - at} bytes left, no 4-byte length")
        (length,) = unpack_length(view, at)
        at += 4
        if length > end - at:
            raise ValueError(
                f"BYTES element {len(out)}: length {length} runs past the end of the data"
            )
        out.append(bytes(view[at : at + length]))
        at += length
        if len(out) > count:
            break
    if len(out) != count:
        raise ValueError(f"binary data holds {len(out)} BYTES elements, expected {count}")
    return out


def pack(datatype: str, values: Sequence[Any]) -> bytes:
    """The binary form of ``values`` (already of ``datatype``'s kind; bytes for BYTES).

    Raises ValueError (struct.error is one) when a value does not fit the datatype.
    """
    if datatype == "BYTES":
        return join_bytes(values)
    try:
        return struct.pack(f"<{len(values)}{CODES[datatype]}", *values)
    except (struct.error, OverflowError, TypeError) as exc:
        raise ValueError(str(exc)) from None


def join_bytes(values: Sequence[bytes]) -> bytes:
    """BYTES elements, each behind its 4-byte length."""
    parts: list[bytes] = []
    length = _LENGTH.pack
    for value in values:
        if len(value) > MAX_BYTES_ELEMENT:
            raise ValueError(f"a BYTES element of {len(value)} bytes (the limit is 2**32 - 1)")
        parts.append(length(len(value)))
        parts.append(value)
    return b"".join(parts)
