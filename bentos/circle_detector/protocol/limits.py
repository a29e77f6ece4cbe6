"""Size limits the codecs check before they materialise anything a client sent.

A request's cost in memory is bounded by these before it becomes Python objects or arrays:
JSON text expands about 20-fold into Python objects, so JSON gets a far smaller limit than raw
binary tensors; BYTES elements each cost an object, so their count is bounded separately from
numeric elements; gRPC typed `contents` are converted element by element, so they get their own
bound (large arrays belong in `raw_input_contents`).
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Per-request limits; the server builds them from its settings."""

    #: A JSON-only REST body, or the JSON header of the binary extension, after decompression.
    max_json_bytes: int = 8 * MIB
    #: A whole REST body with binary tensors, after decompression.
    max_body_bytes: int = 256 * MIB
    #: Elements of one numeric tensor, whatever its encoding.
    max_elements: int = 1 << 28
    #: Elements of one BYTES tensor (each is a Python `bytes` object).
    max_bytes_elements: int = 1024
    #: Elements of one gRPC tensor sent as typed `contents` (e.g. `uint_contents`).
    max_typed_elements: int = 1 << 21


DEFAULT_LIMITS = Limits()
