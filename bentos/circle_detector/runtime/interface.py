"""The interface between the model-agnostic dataplane and one loaded model version.

Shaped like MLServer's `MLModel` and KServe's `Model`: the dataplane asks a runtime for its
name, version, tensors, readiness, statistics and configuration, warms it up, runs `infer` on
transport-neutral messages and closes it when the version is unloaded. Everything
model-specific (which inputs it takes, how images are decoded, how calls are batched) stays
behind it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from ..protocol import InferRequest, InferResponse
from ..stats import ModelStats


@dataclass(frozen=True)
class TensorSpec:
    """One input or output as the V2 metadata lists it (-1: any size)."""

    name: str
    datatype: str
    shape: tuple[int, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}

    def as_config(self) -> dict[str, Any]:
        """Triton's `ModelInput`/`ModelOutput` of a batched tensor: dims without the batch
        dimension; a tensor that is only the batch dimension is dims [1] reshaped to []."""
        data_type = f"TYPE_{CONFIG_TYPES[self.datatype]}"
        doc: dict[str, Any] = {"name": self.name, "data_type": data_type}
        dims = list(self.shape[1:])
        if dims:
            doc["dims"] = dims
        else:
            doc.update(dims=[1], reshape={"shape": []})
        return doc


#: V2 datatype -> the model configuration's `TYPE_*` name (BYTES is Triton's STRING).
CONFIG_TYPES = {
    "BOOL": "BOOL",
    "UINT8": "UINT8",
    "UINT16": "UINT16",
    "UINT32": "UINT32",
    "UINT64": "UINT64",
    "INT8": "INT8",
    "INT16": "INT16",
    "INT32": "INT32",
    "INT64": "INT64",
    "FP16": "FP16",
    "FP32": "FP32",
    "FP64": "FP64",
    "BYTES": "STRING",
}


class ModelRuntime(Protocol):
    """One version of one model, loaded and servable."""

    #: The name it is served under, `/v2/models/{name}`.
    name: str
    #: Its version, `/v2/models/{name}/versions/{version}`.
    version: str
    #: The V2 metadata's `platform` (Triton's names, e.g. `onnxruntime_onnx`).
    platform: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    #: Its statistics since it was loaded (the dataplane counts requests, the runtime phases).
    stats: ModelStats

    def config(self) -> dict[str, Any]:
        """Its part of Triton's model configuration (JSON form): batching, tensors, backend."""
        ...

    def ready(self) -> bool:
        """Warmed up and not closing."""
        ...

    async def warm_up(self, full_size: bool = False) -> None:
        """Run one inference through the whole path (small, or at the largest input size)."""
        ...

    async def infer(self, request: InferRequest) -> InferResponse:
        """Answer one validated-by-the-transport request; `ProtocolError`s carry the status."""
        ...

    async def close(self) -> None:
        """Stop taking work; release threads. Requests in flight are refused as shutting down."""
        ...
