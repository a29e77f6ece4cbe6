"""The Open Inference Protocol (KServe V2): transport-neutral types, tensor codecs and errors.

`types` holds the request/response objects the dataplane works on, `codec` converts tensors
between numpy and the wire (JSON data, the binary tensor extension, gRPC raw contents), and
`errors` carries status codes. Whole messages are translated by each transport's own codec
(`rest/codec.py`, `grpc/codec.py`).
"""

from .errors import (
    BadRequest,
    Busy,
    NotFound,
    NotReady,
    Overloaded,
    PayloadTooLarge,
    ProtocolError,
    RequestTimeout,
)
from .limits import Limits
from .types import InferInput, InferOutput, InferRequest, InferResponse, RequestedOutput

__all__ = [
    "BadRequest",
    "Busy",
    "InferInput",
    "InferOutput",
    "InferRequest",
    "InferResponse",
    "Limits",
    "NotFound",
    "NotReady",
    "Overloaded",
    "PayloadTooLarge",
    "ProtocolError",
    "RequestTimeout",
    "RequestedOutput",
]
