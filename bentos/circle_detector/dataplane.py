"""The transport-free core of the V2 protocol, for any model: health, metadata, `infer`, and
the statistics, model configuration and model repository extensions.

REST (`rest/`) and gRPC (`grpc/`) translate their messages to `protocol.types` and call this;
nothing here knows about HTTP or gRPC, nor about the circle model: models are reached only
through the registry (`registry.py`) of runtimes (`runtime.ModelRuntime`), which do the
model's own work (the circle detector's is `runtime/circle.py`), and loaded or unloaded at run
time by the repository (`repository.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from . import metrics
from .protocol import InferRequest, InferResponse, NotReady
from .registry import ModelRegistry
from .runtime import ModelRuntime

if TYPE_CHECKING:
    from .repository import ModelRepository

SERVER_NAME = "circle-detector-bento"
EXTENSIONS = [
    "binary_tensor_data",
    "model_repository",
    "model_repository(unload_dependents)",
    "model_configuration",
    "statistics",
]
#: Longest wait for a retired version's requests in flight before it is closed anyway.
DRAIN_TIMEOUT_S = 60.0
logger = logging.getLogger(__name__)


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
        #: Loads and unloads versions at run time (None: only what was loaded at start).
        self.repository: ModelRepository | None = None
        #: Requests in flight per runtime (by id), so that a retired one is drained first.
        self._inflight: dict[int, int] = {}
        self._drained: asyncio.Condition | None = None

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

    # -- statistics, configuration, repository ---------------------------------------------------

    def model_statistics(self, name: str = "", version: str | None = None) -> dict[str, Any]:
        """Triton's statistics: of every loaded model (no name), of every loaded version of
        `name` (no version), or of one version."""
        if not name:
            runtimes = self.registry.runtimes()
        elif version is not None:
            runtimes = [self.check_model(name, version)]
        else:
            self.check_model(name, None)
            runtimes = [self.registry.get(name, v) for v in self.registry.versions(name)]
        return {"model_stats": [runtime.stats.as_dict() for runtime in runtimes]}

    def model_config(self, name: str, version: str | None = None) -> dict[str, Any]:
        """Triton's model configuration (JSON form) of a loaded version."""
        runtime = self.check_model(name, version)
        config: dict[str, Any] = {"name": runtime.name, "platform": runtime.platform}
        config.update(runtime.config())
        if self.repository is not None:
            config["version_policy"] = self.repository.policy.as_config()
        return config

    def repository_index(self, ready_only: bool = False) -> list[dict[str, str]]:
        if self.repository is not None:
            return self.repository.index(ready_only)
        return [
            {"name": r.name, "version": r.version, "state": "READY", "reason": ""}
            for r in self.registry.runtimes()
            if r.ready() or not ready_only
        ]

    async def load_model(self, name: str, parameters: Mapping[str, Any]) -> None:
        await self._repository().load(name, parameters)

    async def unload_model(self, name: str, parameters: Mapping[str, Any]) -> None:
        await self._repository().unload(name, parameters)

    def _repository(self) -> ModelRepository:
        if self.repository is None:
            from .repository import ReadOnly

            raise ReadOnly("this server has no model repository: load and unload are refused")
        return self.repository

    async def retire(self, name: str, version: str) -> None:
        """Stop routing to a version, let its requests in flight finish, then close it."""
        await self._drain_and_close(self.registry.remove(name, version))

    async def replace(self, runtime: ModelRuntime) -> None:
        """Route a loaded version's requests to `runtime` (a reload), let the old runtime's
        requests in flight finish, then close it."""
        await self._drain_and_close(self.registry.replace(runtime))

    async def _drain_and_close(self, runtime: ModelRuntime) -> None:
        name, version = runtime.name, runtime.version
        key = id(runtime)
        if self._inflight.get(key):
            drained = self._condition()
            async with drained:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        drained.wait_for(lambda: not self._inflight.get(key)), DRAIN_TIMEOUT_S
                    )
            if self._inflight.get(key):
                logger.warning(
                    "closing %s version %s with %d requests still in flight after %g s",
                    name,
                    version,
                    self._inflight[key],
                    DRAIN_TIMEOUT_S,
                )
        await runtime.close()

    def _condition(self) -> asyncio.Condition:
        if self._drained is None:
            self._drained = asyncio.Condition()
        return self._drained

    # -- inference ----------------------------------------------------------------------------

    async def infer(
        self, name: str, request: InferRequest, version: str | None = None
    ) -> InferResponse:
        runtime = self.check_model(name, version)
        if not (self._ready and runtime.ready()):
            raise NotReady(f"model '{name}' is not ready yet")
        key = id(runtime)
        self._inflight[key] = self._inflight.get(key, 0) + 1
        started = time.perf_counter_ns()
        try:
            response = await runtime.infer(request)
        except Exception:
            metrics.INFERENCES.labels(runtime.name, "failure").inc()
            runtime.stats.failed(time.perf_counter_ns() - started)
            raise
        finally:
            await self._left(key)
        elapsed = time.perf_counter_ns() - started
        runtime.stats.succeeded(elapsed)
        metrics.INFERENCES.labels(runtime.name, "success").inc()
        self.answered.set()
        metrics.INFERENCE_SECONDS.labels(runtime.name).observe(elapsed / 1e9)
        return response

    async def _left(self, key: int) -> None:
        left = self._inflight[key] - 1
        if left:
            self._inflight[key] = left
            return
        del self._inflight[key]
        if self._drained is not None:
            async with self._drained:
                self._drained.notify_all()
