"""gRPC message codec: tritonclient's `service_pb2` messages <-> transport-neutral types.

Inputs may come as `raw_input_contents` (what tritonclient sends) or typed `contents`; outputs
always go back as `raw_output_contents`, the only form tritonclient's `as_numpy` reads.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from google.protobuf.message import DecodeError
from tritonclient.grpc import service_pb2

from ..protocol import codec
from ..protocol.errors import BadRequest
from ..protocol.limits import DEFAULT_LIMITS, Limits
from ..protocol.types import InferInput, InferRequest, InferResponse, RequestedOutput

#: V2 datatype -> the `InferTensorContents` field that carries it.
_CONTENTS_FIELD = {
    "BOOL": "bool_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}
#: `InferTensorContents` field -> the numpy dtype of its protobuf element type.
_FIELD_DTYPES = {
    "bool_contents": np.dtype("?"),
    "uint_contents": np.dtype("<u4"),
    "uint64_contents": np.dtype("<u8"),
    "int_contents": np.dtype("<i4"),
    "int64_contents": np.dtype("<i8"),
    "fp32_contents": np.dtype("<f4"),
    "fp64_contents": np.dtype("<f8"),
}


def parameters_to_dict(params: Any) -> dict[str, Any]:
    """`map<string, InferParameter>` -> plain dict."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        kind = value.WhichOneof("parameter_choice")
        out[key] = getattr(value, kind) if kind else None
    return out


def parse_request(
    message: service_pb2.ModelInferRequest, limits: Limits = DEFAULT_LIMITS
) -> InferRequest:
    raw = list(message.raw_input_contents)
    if raw and len(raw) != len(message.inputs):
        raise BadRequest(
            f"request has {len(raw)} raw_input_contents for {len(message.inputs)} inputs"
        )
    if not message.inputs:
        raise BadRequest("'inputs' must be a non-empty list of tensors")
    inputs = []
    for i, tensor in enumerate(message.inputs):
        name = tensor.name
        if not name:
            raise BadRequest(f"inputs[{i}] needs a name")
        codec.check_datatype(name, tensor.datatype)
        shape = codec.check_shape(name, list(tensor.shape), limits.max_elements)
        params = parameters_to_dict(tensor.parameters)
        if raw:
            data = codec.from_binary(name, tensor.datatype, shape, raw[i], limits)
        else:
            data = _from_contents(name, tensor.datatype, shape, tensor.contents, limits)
        inputs.append(InferInput(name, tensor.datatype, shape, data, params))
    outputs = [
        RequestedOutput(o.name, True, parameters_to_dict(o.parameters)) for o in message.outputs
    ] or None
    return InferRequest(
        inputs=inputs,
        id=message.id or None,
        parameters=parameters_to_dict(message.parameters),
        outputs=outputs,
    )


def encode_response(response: InferResponse) -> service_pb2.ModelInferResponse:
    message = service_pb2.ModelInferResponse(
        model_name=response.model_name,
        model_version=response.model_version or "",
        id=response.id or "",
    )
    for out in response.outputs:
        tensor = message.outputs.add()
        tensor.name = out.name
        tensor.datatype = out.datatype
        tensor.shape.extend(out.shape)
        message.raw_output_contents.append(codec.to_binary(out.datatype, out.data))
    return message


#: `ModelInferRequest.raw_input_contents`'s field number.
_RAW_FIELD = 7
#: Bytes an element a message's typed part may take on the wire before it is refused unparsed.
TYPED_WIRE_BYTES = 2
#: Top-level fields `wire_sizes` reads before it counts the rest as typed: a real request has
#: a handful, and the walk is pure Python on the event loop (64 MiB of 2-byte unknown fields
#: would hold it for tens of seconds, liveness included).
MAX_TOP_LEVEL_FIELDS = 4096


def parse_message(data: bytes, limits: Limits = DEFAULT_LIMITS) -> service_pb2.ModelInferRequest:
    """A serialised ModelInferRequest, its typed part checked on the wire first: protobuf's
    parser holds the GIL (about 11 ns an element), and typed elements cost 4-8 bytes each
    parsed, so a message of millions of them is refused before it is parsed."""
    raw, _ = wire_sizes(data)
    typed = len(data) - raw
    allowed = TYPED_WIRE_BYTES * limits.max_typed_elements + (1 << 20)
    if typed > allowed:
        raise BadRequest(
            f"request has {typed} bytes outside raw_input_contents, over the limit of {allowed} "
            f"({limits.max_typed_elements} typed elements); send large tensors as "
            "raw_input_contents"
        )
    try:
        return service_pb2.ModelInferRequest.FromString(data)
    except DecodeError as exc:
        raise BadRequest(f"request is not a valid ModelInferRequest: {exc}") from None


def wire_sizes(data: bytes) -> tuple[int, int]:
    """(bytes of raw_input_contents, estimated bytes in memory once parsed), from a walk over
    the message's top-level fields only: raw contents cost about twice their size (bytes and
    arrays), anything else (typed contents) up to 8 times. Past `MAX_TOP_LEVEL_FIELDS` fields
    the rest counts as typed."""
    raw, pos, end = 0, 0, len(data)
    try:
        for _ in range(MAX_TOP_LEVEL_FIELDS):
            if pos >= end:
                break
            key, pos = _read_varint(data, pos)
            wire_type = key & 7
            if wire_type == 2:
                length, pos = _read_varint(data, pos)
                if key >> 3 == _RAW_FIELD:
                    raw += length
                pos += length
            elif wire_type == 0:
                _, pos = _read_varint(data, pos)
            elif wire_type in (1, 5):
                pos += 8 if wire_type == 1 else 4
            else:
                break  # malformed: FromString reports it
    except IndexError:
        pass
    raw = min(raw, end)
    return raw, 2 * raw + 8 * (end - raw)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _from_contents(
    name: str, datatype: str, shape: list[int], contents: Any, limits: Limits
) -> np.ndarray:
    """Typed contents to an array; the element count is checked (an O(1) `len`) before any
    element is converted, and conversion goes straight into an array (no Python list)."""
    field = _CONTENTS_FIELD.get(datatype)
    if field is None:
        raise BadRequest(f"input '{name}' of {datatype} must be sent as raw_input_contents")
    values = getattr(contents, field)
    if datatype == "BYTES":
        codec.check_bytes_count(name, shape, limits)
    needed = int(np.prod(shape)) if shape else 1
    if len(values) != needed:
        raise BadRequest(
            f"input '{name}' has {len(values)} elements, but shape {shape} needs {needed}"
        )
    if datatype == "BYTES":
        out = np.empty(needed, dtype=object)
        out[:] = list(values)
        return out.reshape(shape)
    if needed > limits.max_typed_elements:
        raise BadRequest(
            f"input '{name}' has {needed} typed {field} elements, over the limit of "
            f"{limits.max_typed_elements}; send large tensors as raw_input_contents"
        )
    arr = np.fromiter(values, dtype=_FIELD_DTYPES[field], count=needed)
    target = codec.DATATYPES[datatype]
    if target.kind in "iu" and arr.size and target != arr.dtype:
        info = np.iinfo(target)
        if int(arr.min()) < info.min or int(arr.max()) > info.max:
            raise BadRequest(
                f"input '{name}' data is out of range for {datatype} ({info.min}..{info.max})"
            )
    return arr.astype(target, copy=False).reshape(shape)
