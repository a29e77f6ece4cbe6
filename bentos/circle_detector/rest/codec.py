"""REST message codec: JSON bodies with the binary tensor extension <-> transport-neutral types.

The binary extension (https://github.com/kserve/kserve/.../binary_tensor_data_extension): the body
starts with a JSON header of `Inference-Header-Content-Length` bytes; tensors whose parameters
carry `binary_data_size` follow it, in order, as raw little-endian bytes.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from ..protocol import codec
from ..protocol.errors import BadRequest, PayloadTooLarge
from ..protocol.limits import DEFAULT_LIMITS, Limits
from ..protocol.types import InferInput, InferRequest, InferResponse, RequestedOutput

HEADER_LENGTH = "Inference-Header-Content-Length"


def parse_request(
    body: bytes | bytearray, header_length: str | None, limits: Limits = DEFAULT_LIMITS
) -> InferRequest:
    """Parse an infer request body; `header_length` is the extension header's value, if any."""
    json_part, binary = _split_body(body, header_length, limits.max_json_bytes)
    try:
        doc = json.loads(json_part)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise BadRequest("request body JSON is nested too deeply") from None
    if not isinstance(doc, dict):
        raise BadRequest("request body must be a JSON object")
    request_id = doc.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise BadRequest("'id' must be a string")
    parameters = _parameters(doc.get("parameters"), "request")
    raw_inputs = doc.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise BadRequest("'inputs' must be a non-empty list of tensors")
    inputs, offset = [], 0
    view = memoryview(binary)
    for i, raw in enumerate(raw_inputs):
        tensor, offset = _parse_input(i, raw, view, offset, limits)
        inputs.append(tensor)
    if offset != len(binary):
        raise BadRequest(
            f"request has {len(binary) - offset} bytes of binary data that no input claims"
        )
    default_binary = parameters.get("binary_data_output")
    if default_binary is not None and not isinstance(default_binary, bool):
        raise BadRequest("parameter 'binary_data_output' must be a boolean")
    outputs = _parse_outputs(doc.get("outputs"))
    return InferRequest(inputs=inputs, id=request_id, parameters=parameters, outputs=outputs)


def encode_response(response: InferResponse) -> tuple[bytes, int | None]:
    """The body, and the JSON header's length when any output travels as binary."""
    entries: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    for out in response.outputs:
        entry: dict[str, Any] = {"name": out.name, "datatype": out.datatype, "shape": out.shape}
        if out.binary:
            raw = codec.to_binary(out.datatype, out.data)
            entry["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            entry["data"] = codec.to_json(out.data)
        entries.append(entry)
    doc: dict[str, Any] = {"model_name": response.model_name}
    if response.model_version is not None:
        doc["model_version"] = response.model_version
    if response.id is not None:
        doc["id"] = response.id
    if response.parameters:
        doc["parameters"] = response.parameters
    doc["outputs"] = entries
    header = json.dumps(doc, separators=(",", ":")).encode()
    if not chunks:
        return header, None
    return header + b"".join(chunks), len(header)


#: Content-Encoding -> zlib window bits (what tritonclient's request compression sends).
_ENCODINGS = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


def decode_body(body: bytes, content_encoding: str | None, limit: int) -> bytes:
    """Undo `Content-Encoding: gzip|deflate`, refusing output over `limit` (zip bombs)."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding == "identity":
        return body
    if encoding not in _ENCODINGS:
        raise BadRequest(f"unsupported Content-Encoding {encoding!r}; use gzip or deflate")
    inflater = zlib.decompressobj(_ENCODINGS[encoding])
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise BadRequest(f"request body is not valid {encoding} data: {exc}") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise PayloadTooLarge(f"decompressed request body is over the limit of {limit} bytes")
    if not inflater.eof:
        raise BadRequest(f"request body is truncated {encoding} data")
    return out


def error_body(message: str) -> dict[str, str]:
    return {"error": message}


def json_header_length(header_length: str | None, max_json_bytes: int) -> int | None:
    """The binary extension's JSON header length, checked against the JSON limit (None: the
    body is all JSON)."""
    if header_length is None:
        return None
    try:
        n = int(header_length)
    except ValueError:
        raise BadRequest(f"{HEADER_LENGTH} must be an integer, got {header_length!r}") from None
    if n > max_json_bytes:
        raise PayloadTooLarge(
            f"{HEADER_LENGTH} is {n}; the JSON header's limit is {max_json_bytes} bytes"
        )
    return n


def _split_body(
    body: bytes | bytearray, header_length: str | None, max_json_bytes: int
) -> tuple[bytes | bytearray, memoryview]:
    n = json_header_length(header_length, max_json_bytes)
    if n is None:
        if len(body) > max_json_bytes:
            raise PayloadTooLarge(
                f"JSON request body is {len(body)} bytes; the limit is {max_json_bytes}"
            )
        return body, memoryview(b"")
    if not 0 < n <= len(body):
        raise BadRequest(f"{HEADER_LENGTH} is {n}, but the body has {len(body)} bytes")
    view = memoryview(body)
    return bytes(view[:n]), view[n:]


def _parameters(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(f"{where} 'parameters' must be a JSON object")
    return value


def _parse_input(
    index: int, raw: Any, binary: memoryview, offset: int, limits: Limits
) -> tuple[InferInput, int]:
    if not isinstance(raw, dict):
        raise BadRequest(f"inputs[{index}] must be a JSON object")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise BadRequest(f"inputs[{index}] needs a 'name' string")
    datatype = raw.get("datatype")
    codec.check_datatype(name, datatype)
    shape = codec.check_shape(name, raw.get("shape"), limits.max_elements)
    parameters = _parameters(raw.get("parameters"), f"input '{name}'")
    if "shared_memory_region" in parameters:
        raise BadRequest(
            f"input '{name}' uses the shared-memory extension, which this server does not offer"
        )
    size = parameters.get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise BadRequest(f"input '{name}' binary_data_size must be a non-negative integer")
        if offset + size > len(binary):
            raise BadRequest(
                f"input '{name}' claims {size} bytes of binary data, "
                f"but only {len(binary) - offset} remain"
            )
        data = codec.from_binary(name, datatype, shape, binary[offset : offset + size], limits)
        return InferInput(name, datatype, shape, data, parameters), offset + size
    if "data" not in raw:
        raise BadRequest(f"input '{name}' has neither 'data' nor binary_data_size")
    data = codec.from_json(name, datatype, shape, raw["data"], parameters, limits)
    return InferInput(name, datatype, shape, data, parameters), offset


def _parse_outputs(raw: Any) -> list[RequestedOutput] | None:
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise BadRequest("'outputs' must be a list")
    outputs = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise BadRequest(f"outputs[{i}] must be an object with a 'name' string")
        params = _parameters(item.get("parameters"), f"output '{item['name']}'")
        binary = params.get("binary_data")
        if binary is not None and not isinstance(binary, bool):
            raise BadRequest(f"output '{item['name']}' binary_data must be a boolean")
        outputs.append(RequestedOutput(item["name"], binary, params))
    return outputs


#: Largest body of a control request (repository index, load, unload).
MAX_CONTROL_BYTES = 64 * 1024


def parse_control(body: bytes | bytearray, allowed: tuple[str, ...]) -> dict[str, Any]:
    """A small JSON object body of a control request (empty: `{}`), with only `allowed` keys;
    a `parameters` key must hold an object."""
    if not body.strip():
        return {}
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise BadRequest("request body must be a JSON object")
    unknown = sorted(set(doc) - set(allowed))
    if unknown:
        keys = ", ".join(repr(k) for k in unknown)
        raise BadRequest(f"unknown field(s) {keys}; allowed: {', '.join(allowed) or 'none'}")
    if not isinstance(doc.get("parameters", {}), dict):
        raise BadRequest("'parameters' must be a JSON object")
    return doc
