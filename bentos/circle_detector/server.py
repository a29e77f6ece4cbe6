"""The model server every way of serving shares: model, dataplane, gRPC and readiness.

`bentoml serve` (`service.py`) and the single-process launcher (`standalone.py`) each build one
`ModelServer` from the settings and a model directory (a model folder, or one subfolder per
version), put its dataplane on the REST app, and call `start` and `stop` from their own
start-up and shutdown hooks. The versions the version policy selects are loaded at start; the
repository (`repository.py`) loads and unloads versions at run time unless read-only.

The server owns the process-wide admission budgets (`admission.py`) and the codecs' limits,
built from the settings, which both transports share.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from pathlib import Path
from typing import Any

from . import memory, tracing
from .admission import Budget
from .dataplane import DataPlane
from .protocol import Limits
from .repository import ModelRepository
from .runtime.circle import CircleRuntime
from .runtime.circle_source import CircleSource
from .settings import BentoSettings, is_read_only
from .version_policy import VersionPolicy

logger = logging.getLogger(__name__)
#: Longest wait for a first REST answer before gRPC starts anyway.
GRPC_DEFER_S = 1.0
#: Logged once the full-size warm-up is done (tests wait for it before measuring idle RSS).
FULL_WARM_UP_LOG = "warmed up at full size"
#: Warm-up retries back off from the first delay, doubling, to the cap (seconds).
WARMUP_RETRY_S = (0.5, 30.0)


class WarmUpFault(RuntimeError):
    """The deliberate warm-up failure of `CIRCLE_DETECTOR_WARMUP_FAULTS` (a test hook)."""


class ModelServer:
    """Loads the model directory's versions with the configured runtime; serves them once
    warmed up."""

    def __init__(self, model_dir: Path, settings: BentoSettings) -> None:
        memory.configure()  # before the runtime's threads take their malloc arenas
        try:  # OTEL_* variables; imports OpenTelemetry only when they turn tracing on
            tracing.configure()
        except tracing.TracingConfigError as exc:
            logger.error("tracing off: %s", exc)
        self.settings = settings
        self.limits = Limits(
            max_json_bytes=settings.max_json_bytes,
            max_body_bytes=settings.max_body_bytes,
            max_bytes_elements=settings.max_images,
            max_typed_elements=settings.max_typed_elements,
        )
        self.byte_budget = Budget(
            "in-flight bytes",
            settings.budget_bytes,
            settings.admission_timeout_s,
            on_release=memory.trim_after,
        )
        pixel_budget = Budget(
            "decoded pixels",
            settings.budget_pixels or 4 * settings.max_pixels,
            settings.admission_timeout_s,
            # a decoded pixel costs at least its 4-byte grey float: trim after big images too
            on_release=lambda pixels: memory.trim_after(4 * pixels),
        )
        self.dataplane = DataPlane(ready_deadline_s=settings.ready_deadline_s)
        self.repository = ModelRepository(
            self.dataplane,
            CircleSource(model_dir, settings, pixel_budget),
            VersionPolicy.parse(settings.version_policy),
            read_only=is_read_only(settings),
        )
        self.dataplane.repository = self.repository
        loaded = self.repository.load_initial()
        self.grpc_port: int | None = None
        self._grpc_server: Any = None
        self._task: asyncio.Task[None] | None = None
        for runtime in loaded:
            assert isinstance(runtime, CircleRuntime)
            network = runtime.detector.network
            logger.info(
                "loaded %s version %s from %s (%s, %d threads)",
                runtime.name,
                runtime.version,
                model_dir,
                network.name,
                network.threads,
            )
        logger.info(
            "version policy %s; repository %s",
            self.repository.policy,
            "read-only" if self.repository.read_only else "writable (load/unload allowed)",
        )

    def newest(self) -> CircleRuntime:
        """The newest loaded version (NotFound when every version was unloaded)."""
        runtime = self.dataplane.check_model(self.repository.source.name, None)
        assert isinstance(runtime, CircleRuntime)
        return runtime

    def attach(self, app: Any) -> None:
        """Serve this model on a REST app made by `rest.create_app`."""
        app.state.dataplane = self.dataplane
        app.state.limits = self.limits
        app.state.byte_budget = self.byte_budget
        app.state.body_timeout_s = self.settings.body_timeout_s

    async def start(self) -> None:
        """Start warming up in the background (liveness answers meanwhile); `stop` ends it."""
        self._task = asyncio.create_task(self._run(), name="warm-up")

    async def _warm_up(self) -> None:
        """Retry the warm-up with capped exponential backoff until it succeeds.

        A failing warm-up keeps the server not ready; past `ready_deadline_s` it also reports
        not live, so that Kubernetes restarts a server that cannot recover by itself.
        """
        delay, cap = WARMUP_RETRY_S
        attempt = 0
        while True:
            attempt += 1
            try:
                if attempt <= self.settings.warmup_faults:
                    raise WarmUpFault(f"warm-up fault {attempt} of CIRCLE_DETECTOR_WARMUP_FAULTS")
                await self.dataplane.warm_up()
                return
            except Exception:
                logger.exception(
                    "warm-up attempt %d failed; not ready; retrying in %.1f s", attempt, delay
                )
            await asyncio.sleep(delay)
            delay = min(2 * delay, cap)

    async def _run(self) -> None:
        """Warm up through the whole path, report ready, then start gRPC.

        gRPC starts once REST has answered its first request, or `GRPC_DEFER_S` after the
        warm-up: importing it takes about 0.15 s of CPU here, which would otherwise delay a cold
        start's first answer. Where gRPC is the served protocol (Knative's port is the gRPC
        port) it starts at once. If it cannot start, the server reports not ready.
        """
        await self._warm_up()
        logger.info("circle-detector warmed up; ready")
        if not self.settings.grpc_port:
            await self._warm_up_full_size()
            return
        if self.settings.port != self.settings.grpc_port:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.dataplane.answered.wait(), GRPC_DEFER_S)
        try:
            grpc_transport = await asyncio.to_thread(importlib.import_module, f"{__package__}.grpc")
            self._grpc_server, self.grpc_port = await grpc_transport.start_server(
                self.dataplane,
                self.settings.grpc_host,
                self.settings.grpc_port,
                max_message_bytes=self.settings.grpc_max_message_bytes,
                limits=self.limits,
                byte_budget=self.byte_budget,
            )
        except Exception:
            logger.exception("cannot start the V2 gRPC server; reporting not ready")
            self.dataplane.set_ready(False)
            return
        await self._warm_up_full_size()

    async def _warm_up_full_size(self) -> None:
        """One more warm-up at the network's largest input, once serving: the runtime's memory
        arena and the decoding buffers then reach their steady size at start-up, not with
        the first big client image (idle RSS is then what the server returns to)."""
        try:
            await self.dataplane.warm_up(full_size=True)
        except Exception:
            logger.exception("full-size warm-up failed (the server stays ready)")
        else:
            logger.info(FULL_WARM_UP_LOG)

    async def stop(self) -> None:
        """Stop the warm-up loop if it still runs, then gRPC and the dataplane."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._grpc_server is not None:
            await self._grpc_server.stop(grace=1.0)
        await self.dataplane.close()
        tracing.shutdown()  # exports the spans still buffered
