"""The interface between the model-agnostic dataplane and one loaded model version.

Shaped like MLServer's `MLModel` and KServe's `Model`: the dataplane asks a runtime for its
name, version, tensors and readiness, warms it up, runs `infer` on transport-neutral messages
and closes it when the version is unloaded. Everything model-specific (which inputs it takes,
how images are decoded, how calls are batched) stays behind it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from ..protocol import InferRequest, InferResponse


@dataclass(frozen=True)
class TensorSpec:
    """One input or output as the V2 metadata lists it (-1: any size)."""

    name: str
    datatype: str
    shape: tuple[int, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


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
