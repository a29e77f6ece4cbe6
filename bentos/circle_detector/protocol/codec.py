"""Tensor codec: V2 datatypes <-> numpy, for JSON data, binary data and gRPC raw contents.

Every check here raises `BadRequest` with a message naming the tensor, so that a malformed or
hostile tensor becomes a 400 / INVALID_ARGUMENT and never reaches the model.
"""

from __future__ import annotations

import base64
import binascii
import math
import struct
from typing import Any

import numpy as np

from .errors import BadRequest
from .limits import DEFAULT_LIMITS, Limits

#: V2 datatype -> little-endian numpy dtype (BYTES is an object array of `bytes`).
DATATYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype("?"),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "BYTES": np.dtype(object),
}
#: Which numpy kinds a JSON value may have for each datatype family.
_JSON_KINDS = {"b": "b", "u": "iu", "i": "iu", "f": "iuf"}
#: Refuse tensors with more elements than this, whatever their encoding (about 1 GB of UINT8).
MAX_ELEMENTS = 1 << 30


def check_datatype(name: str, datatype: Any) -> np.dtype:
    if not isinstance(datatype, str) or datatype not in DATATYPES:
        raise BadRequest(
            f"input '{name}' has unknown datatype {datatype!r}; use one of {', '.join(DATATYPES)}"
        )
    return DATATYPES[datatype]


def check_shape(name: str, shape: Any, max_elements: int = MAX_ELEMENTS) -> list[int]:
    """A shape is a list of non-negative integers with a bounded element count."""
    if not isinstance(shape, list | tuple) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise BadRequest(f"input '{name}' shape must be a list of non-negative integers")
    if len(shape) > 16:
        raise BadRequest(f"input '{name}' shape has {len(shape)} dimensions; at most 16")
    count = math.prod(shape)
    if count > min(max_elements, MAX_ELEMENTS):
        raise BadRequest(
            f"input '{name}' shape {list(shape)} has too many elements ({count}); "
            f"the limit is {min(max_elements, MAX_ELEMENTS)}"
        )
    return [int(d) for d in shape]


def check_bytes_count(name: str, shape: list[int], limits: Limits) -> int:
    """A BYTES tensor's element count, refused before any element becomes an object."""
    count = math.prod(shape)
    if count > limits.max_bytes_elements:
        raise BadRequest(
            f"BYTES input '{name}' has {count} elements, over the limit of "
            f"{limits.max_bytes_elements}"
        )
    return count


def from_json(
    name: str,
    datatype: str,
    shape: list[int],
    data: Any,
    parameters: dict[str, Any],
    limits: Limits = DEFAULT_LIMITS,
) -> np.ndarray:
    """Decode a JSON `data` field (flat or nested, row-major) into an array of `shape`."""
    dtype = check_datatype(name, datatype)
    count = math.prod(shape)
    if not isinstance(data, list):
        data = [data]
    if datatype == "BYTES":
        check_bytes_count(name, shape, limits)
        b64 = parameters.get("content_type") == "base64"
        flat = _flatten_bytes(name, data, b64, count)
        if len(flat) != count:
            raise _count_error(name, shape, len(flat))
        out = np.empty(count, dtype=object)
        out[:] = flat
        return out.reshape(shape)
    if len(data) > count:  # a flat list longer than the shape: refused before conversion
        raise _count_error(name, shape, len(data))
    try:
        arr = np.asarray(data)
    except (ValueError, TypeError) as exc:
        raise BadRequest(f"input '{name}' data is ragged or mixed: {exc}") from None
    if arr.size != count:
        raise _count_error(name, shape, arr.size)
    if count and arr.dtype.kind not in _JSON_KINDS[dtype.kind]:
        raise BadRequest(
            f"input '{name}' data has {_kind_name(arr.dtype)} values, "
            f"which datatype {datatype} cannot hold"
        )
    if count and dtype.kind in "iu":
        info = np.iinfo(dtype)
        if int(arr.min()) < info.min or int(arr.max()) > info.max:
            raise BadRequest(
                f"input '{name}' data is out of range for {datatype} ({info.min}..{info.max})"
            )
    return arr.reshape(-1).astype(dtype).reshape(shape)


def from_binary(
    name: str,
    datatype: str,
    shape: list[int],
    raw: bytes | memoryview,
    limits: Limits = DEFAULT_LIMITS,
) -> np.ndarray:
    """Decode raw little-endian bytes (binary extension or gRPC raw contents) into an array."""
    dtype = check_datatype(name, datatype)
    count = math.prod(shape)
    if datatype == "BYTES":
        check_bytes_count(name, shape, limits)
        items = _split_length_prefixed(name, raw, count)
        if len(items) != count:
            raise _count_error(name, shape, len(items))
        out = np.empty(count, dtype=object)
        out[:] = items
        return out.reshape(shape)
    expected = count * dtype.itemsize
    if len(raw) != expected:
        raise BadRequest(
            f"input '{name}' has {len(raw)} bytes of data, but shape {shape} of {datatype} "
            f"needs {expected}"
        )
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


def to_json(arr: np.ndarray) -> list[Any]:
    """Flat row-major list for a JSON `data` field."""
    if arr.dtype == object:
        return [b.decode("utf-8", "replace") if isinstance(b, bytes) else str(b) for b in arr.flat]
    return arr.reshape(-1).tolist()


def to_binary(datatype: str, arr: np.ndarray) -> bytes:
    """Raw little-endian bytes (BYTES: 4-byte length prefix per element)."""
    if datatype == "BYTES":
        parts = []
        for item in arr.flat:
            b = item if isinstance(item, bytes) else str(item).encode()
            parts.append(struct.pack("<I", len(b)))
            parts.append(b)
        return b"".join(parts)
    return np.ascontiguousarray(arr, dtype=DATATYPES[datatype]).tobytes()


def _split_length_prefixed(name: str, raw: bytes | memoryview, count: int) -> list[bytes]:
    """The elements, stopping at the first past `count` (a million 1-byte elements would
    otherwise cost a million objects before the count is checked)."""
    view = memoryview(raw)
    items, pos = [], 0
    while pos < len(view) and len(items) <= count:
        if pos + 4 > len(view):
            raise BadRequest(f"input '{name}' BYTES data is truncated (incomplete length prefix)")
        (length,) = struct.unpack_from("<I", view, pos)
        pos += 4
        if pos + length > len(view):
            raise BadRequest(
                f"input '{name}' BYTES element {len(items)} claims {length} bytes, "
                f"but only {len(view) - pos} remain"
            )
        items.append(bytes(view[pos : pos + length]))
        pos += length
    return items


def _flatten_bytes(name: str, data: list[Any], b64: bool, count: int) -> list[bytes]:
    """Nested strings to bytes, stopping at the first element past `count`."""
    flat: list[bytes] = []
    stack = [iter(data)]
    while stack and len(flat) <= count:
        try:
            item = next(stack[-1])
        except StopIteration:
            stack.pop()
            continue
        if isinstance(item, list):
            if len(stack) > 32:
                raise BadRequest(f"input '{name}' data is nested too deeply")
            stack.append(iter(item))
        elif isinstance(item, str):
            if b64:
                try:
                    flat.append(base64.b64decode(item, validate=True))
                except (binascii.Error, ValueError):
                    raise BadRequest(f"input '{name}' element {len(flat)} is not base64") from None
            else:
                flat.append(item.encode("utf-8", "surrogateescape"))
        else:
            raise BadRequest(
                f"input '{name}' BYTES data must be strings, got {type(item).__name__}"
            )
    return flat


def _count_error(name: str, shape: list[int], got: int) -> BadRequest:
    needed = math.prod(shape)
    has = f"more than {needed}" if got > needed else str(got)
    return BadRequest(f"input '{name}' has {has} elements, but shape {shape} needs {needed}")


def _kind_name(dtype: np.dtype) -> str:
    return {"b": "boolean", "i": "integer", "u": "integer", "f": "float", "U": "string"}.get(
        dtype.kind, "non-numeric"
    )
