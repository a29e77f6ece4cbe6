"""The transport-free core of the V2 protocol: health, metadata and `infer`, for any model.

REST (`rest/`) and gRPC (`grpc/`) translate their messages to `protocol.types` and call this;
nothing here knows about HTTP or gRPC, nor about the circle model: models are reached only
through the registry (`registry.py`) of runtimes (`runtime.ModelRuntime`), which do the
model's own work (the circle detector's is `runtime/circle.py`).
"""

from __future__ import annotations

import asyncio
import time
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from . import metrics
from .protocol import InferRequest, InferResponse, NotReady
from .registry import ModelRegistry
from .runtime import ModelRuntime

SERVER_NAME = "circle-detector-bento"
EXTENSIONS = ["binary_tensor_data"]


def _server_version() -> str:
    try:
        return version("circle-detector")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0"


class DataPlane:
    """The loaded models behind the V2 protocol: readiness, metadata, inference."""

    def __init__(
        self, registry: ModelRegistry | None = None, *, ready_deadline_s: float = float("inf")
    ) -> None:
        self.registry = registry or ModelRegistry()
        self._ready = False
        self._started = time.monotonic()
        self.ready_deadline_s = ready_deadline_s
        #: Set by the first inference a client got an answer to (not the warm-up's).
        self.answered = asyncio.Event()

    @classmethod
    def serving(cls, *runtimes: ModelRuntime, **options: Any) -> DataPlane:
        """A dataplane with these runtimes loaded (not yet warmed up)."""
        plane = cls(**options)
        for runtime in runtimes:
            plane.registry.add(runtime)
        return plane

    # -- health and metadata ------------------------------------------------------------------

    def live(self) -> bool:
        """Live unless the server has failed to become ready within its deadline."""
        return self._ready or self.not_ready_for() <= self.ready_deadline_s

    def not_ready_for(self) -> float:
        """Seconds since start-up without having become ready (0 once ready)."""
        return 0.0 if self._ready else time.monotonic() - self._started

    def liveness_error(self) -> str | None:
        """Why the server is not live (past its ready deadline), or None when it is."""
        if self.live():
            return None
        return (
            f"not ready {self.not_ready_for():.0f} s after start-up, past the deadline of "
            f"{self.ready_deadline_s:g} s (CIRCLE_DETECTOR_READY_DEADLINE_S)"
        )

    def ready(self) -> bool:
        return self._ready

    def set_ready(self, ready: bool) -> None:
        """Let the service withdraw readiness (e.g. a transport failed to start)."""
        self._ready = ready

    def server_metadata(self) -> dict[str, Any]:
        return {"name": SERVER_NAME, "version": _server_version(), "extensions": EXTENSIONS}

    def check_model(self, name: str, version: str | None) -> ModelRuntime:
        """The runtime of `name` (`version`, else the newest), or `NotFound`."""
        return self.registry.get(name, version)

    def model_ready(self, name: str, version: str | None = None) -> bool:
        runtime = self.check_model(name, version)
        return self._ready and runtime.ready()

    def model_metadata(self, name: str, version: str | None = None) -> dict[str, Any]:
        runtime = self.check_model(name, version)
        return {
            "name": runtime.name,
            "versions": self.registry.versions(name),
            "platform": runtime.platform,
            "inputs": [t.as_dict() for t in runtime.inputs],
            "outputs": [t.as_dict() for t in runtime.outputs],
        }

    async def warm_up(self, full_size: bool = False) -> None:
        """Warm up every loaded model through its whole path, then report ready."""
        for runtime in self.registry.runtimes():
            await runtime.warm_up(full_size)
        self._ready = True

    async def close(self) -> None:
        self._ready = False
        for runtime in self.registry.runtimes():
            await runtime.close()

    # -- inference ----------------------------------------------------------------------------

    async def infer(
        self, name: str, request: InferRequest, version: str | None = None
    ) -> InferResponse:
        runtime = self.check_model(name, version)
        if not (self._ready and runtime.ready()):
            raise NotReady(f"model '{name}' is not ready yet")
        started = time.perf_counter()
        try:
            response = await runtime.infer(request)
        except Exception:
            metrics.INFERENCES.labels(runtime.name, "failure").inc()
            raise
        metrics.INFERENCES.labels(runtime.name, "success").inc()
        self.answered.set()
        metrics.INFERENCE_SECONDS.labels(runtime.name).observe(time.perf_counter() - started)
        return response
