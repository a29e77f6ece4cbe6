"""gRPC message codec: tritonclient's `service_pb2` messages <-> transport-neutral types.

Inputs may come as `raw_input_contents` (what tritonclient sends) or typed `contents`; outputs
always go back as `raw_output_contents`, the only form tritonclient's `as_numpy` reads.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from tritonclient.grpc import service_pb2

from . import codec
from .errors import BadRequest
from .types import InferInput, InferRequest, InferResponse, RequestedOutput

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


def parameters_to_dict(params: Any) -> dict[str, Any]:
    """`map<string, InferParameter>` -> plain dict."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        kind = value.WhichOneof("parameter_choice")
        out[key] = getattr(value, kind) if kind else None
    return out


def parse_request(message: service_pb2.ModelInferRequest) -> InferRequest:
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
        shape = codec.check_shape(name, list(tensor.shape))
        params = parameters_to_dict(tensor.parameters)
        if raw:
            data = codec.from_binary(name, tensor.datatype, shape, raw[i])
        else:
            data = _from_contents(name, tensor.datatype, shape, tensor.contents)
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


def _from_contents(name: str, datatype: str, shape: list[int], contents: Any) -> np.ndarray:
    field = _CONTENTS_FIELD.get(datatype)
    if field is None:
        raise BadRequest(f"input '{name}' of {datatype} must be sent as raw_input_contents")
    values = list(getattr(contents, field))
    if datatype == "BYTES":
        return (
            codec.from_json(name, datatype, shape, [], {})
            if not values
            else _bytes(name, shape, values)
        )
    return codec.from_json(name, datatype, shape, values, {})


def _bytes(name: str, shape: list[int], values: list[bytes]) -> np.ndarray:
    count = int(np.prod(shape)) if shape else 1
    if len(values) != count:
        raise BadRequest(
            f"input '{name}' has {len(values)} elements, but shape {shape} needs {count}"
        )
    out = np.empty(count, dtype=object)
    out[:] = values
    return out.reshape(shape)
