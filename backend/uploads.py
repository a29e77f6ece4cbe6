"""Read a multipart upload while it streams in, refusing it (413) as soon as it is too big.

Starlette's form parser spools a whole file to disk before the route runs; this reader counts
bytes as they arrive and stops reading at the limit, so an oversized upload costs no more than
the limit in memory and time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from fastapi import Request
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from backend.errors import APIError

FIELD = "file"
#: Room for multipart boundaries, part headers and small form fields beyond the file itself.
OVERHEAD_BYTES = 64 * 1024
MAX_PARTS = 16
MAX_HEADER_BYTES = 8 * 1024


@dataclass
class Upload:
    """The uploaded file as received; `filename` is kept only as metadata."""

    data: bytes
    filename: str
    declared_type: str


@dataclass
class _Part:
    headers: dict[str, bytes] = field(default_factory=dict)
    data: bytearray = field(default_factory=bytearray)
    header_field: bytearray = field(default_factory=bytearray)
    header_value: bytearray = field(default_factory=bytearray)
    header_bytes: int = 0


def too_large(limit: int) -> APIError:
    """The 413 every size check raises."""
    return APIError(413, f"upload too large: the limit is {limit} bytes")


def clean_filename(raw: str) -> str:
    """Last path component without control characters, at most 255 characters (metadata only)."""
    name = re.split(r"[\\/]", raw)[-1]
    name = "".join(ch for ch in name if ch.isprintable())
    return name.strip()[:255]


async def read_upload(request: Request, max_bytes: int) -> Upload:
    """Parse the multipart body and return its `file` part; 413/415/422 on bad bodies.

    A refusal closes the connection (`Connection: close`) so that the server stops receiving
    the rest of the body instead of reading and discarding it.
    """
    try:
        return await _read_upload(request, max_bytes)
    except APIError as exc:
        exc.headers["Connection"] = "close"
        raise


async def _read_upload(request: Request, max_bytes: int) -> Upload:
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise APIError(
            415, "send the image as multipart/form-data with a 'file' field (and a boundary)"
        )
    declared = request.headers.get("content-length")
    body_limit = max_bytes + OVERHEAD_BYTES
    if declared is not None and declared.isdigit() and int(declared) > body_limit:
        raise too_large(max_bytes)

    parts: list[_Part] = []
    file_part: list[_Part] = []

    def current() -> _Part:
        return parts[-1]

    def on_part_begin() -> None:
        if len(parts) >= MAX_PARTS:
            raise APIError(422, f"too many form fields (at most {MAX_PARTS})")
        parts.append(_Part())

    def on_header_field(data: bytes, start: int, end: int) -> None:
        _count_header(current(), end - start)
        current().header_field += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        _count_header(current(), end - start)
        current().header_value += data[start:end]

    def on_header_end() -> None:
        part = current()
        name = part.header_field.decode("latin-1").strip().lower()
        part.headers[name] = bytes(part.header_value)
        part.header_field.clear()
        part.header_value.clear()

    def on_headers_finished() -> None:
        part = current()
        _, disp = _disposition(part)
        if disp.get(b"name") == FIELD.encode() and not file_part:
            file_part.append(part)

    def on_part_data(data: bytes, start: int, end: int) -> None:
        part = current()
        part.data += data[start:end]
        is_file = bool(file_part) and part is file_part[0]
        if is_file and len(part.data) > max_bytes:
            raise too_large(max_bytes)
        if not is_file and len(part.data) > OVERHEAD_BYTES:
            raise APIError(422, "form field too long")

    parser = MultipartParser(
        boundary,
        callbacks={
            "on_part_begin": on_part_begin,
            "on_part_data": on_part_data,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
        },
    )
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > body_limit:
                raise too_large(max_bytes)
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        raise APIError(422, f"malformed multipart body: {exc}") from exc
    if not file_part:
        raise APIError(422, f"the multipart body has no '{FIELD}' field")
    part = file_part[0]
    _, disp = _disposition(part)
    filename = disp.get(b"filename", b"").decode("utf-8", "replace")
    return Upload(
        data=bytes(part.data),
        filename=clean_filename(filename),
        declared_type=part.headers.get("content-type", b"").decode("latin-1")[:100],
    )


def _disposition(part: _Part) -> tuple[bytes, dict[bytes, bytes]]:
    """The part's Content-Disposition, parsed from raw bytes (names may be any UTF-8)."""
    try:
        return parse_options_header(part.headers.get("content-disposition", b""))
    except ValueError as exc:
        raise APIError(422, f"malformed Content-Disposition header: {exc}") from exc


def _count_header(part: _Part, size: int) -> None:
    part.header_bytes += size
    if part.header_bytes > MAX_HEADER_BYTES:
        raise APIError(422, "multipart part headers too long")
