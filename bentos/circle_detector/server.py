"""The model server every way of serving shares: model, dataplane, gRPC and readiness.

`bentoml serve` (`service.py`) and the single-process launcher (`standalone.py`) each build one
`ModelServer` from the settings and a model folder, put its dataplane on the REST app, and call
`start` and `stop` from their own start-up and shutdown hooks.

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
from .model.detector import CircleDetector
from .protocol import Limits
from .runtime.circle import CircleRuntime
from .settings import BentoSettings

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
    """Loads the model folder with the configured runtime; serves it once warmed up."""

    def __init__(self, model_folder: Path, settings: BentoSettings) -> None:
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
        detector = CircleDetector.load(model_folder, settings.runtime, settings.threads)
        self.runtime = CircleRuntime(
            detector,
            name=settings.model_name or None,
            max_batch_size=settings.max_batch_size,
            max_latency_ms=settings.max_latency_ms,
            max_queue_size=settings.max_queue_size,
            max_pixels=settings.max_pixels,
            max_images=settings.max_images,
            max_request_pixels=settings.max_request_pixels or None,
            threads=settings.preprocess_threads,
            pixel_budget=pixel_budget,
        )
        self.dataplane = DataPlane.serving(self.runtime, ready_deadline_s=settings.ready_deadline_s)
        self.grpc_port: int | None = None
        self._grpc_server: Any = None
        self._task: asyncio.Task[None] | None = None
        logger.info(
            "loaded %s version %s from %s (%s, %d threads)",
            detector.info.name,
            detector.info.version,
            model_folder,
            detector.network.name,
            detector.network.threads,
        )

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
