"""The model server every way of serving shares: model, dataplane, gRPC and readiness.

`bentoml serve` (`service.py`) and the single-process launcher (`standalone.py`) each build one
`ModelServer` from the settings and a model folder, put its dataplane on the REST app, and call
`start` and `stop` from their own start-up and shutdown hooks.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from pathlib import Path
from typing import Any

from .dataplane import DataPlane
from .model.detector import CircleDetector
from .settings import BentoSettings

logger = logging.getLogger(__name__)
#: Longest wait for a first REST answer before gRPC starts anyway.
GRPC_DEFER_S = 1.0


class ModelServer:
    """Loads the model folder with the configured runtime; serves it once warmed up."""

    def __init__(self, model_folder: Path, settings: BentoSettings) -> None:
        self.settings = settings
        detector = CircleDetector.load(model_folder, settings.runtime, settings.threads)
        self.dataplane = DataPlane(
            detector,
            max_batch_size=settings.max_batch_size,
            max_latency_ms=settings.max_latency_ms,
            max_pixels=settings.max_pixels,
            max_images=settings.max_images,
            max_request_pixels=settings.max_request_pixels or None,
            threads=settings.preprocess_threads,
        )
        self.grpc_port: int | None = None
        self._grpc_server: Any = None
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
        app.state.max_body_bytes = self.settings.max_body_bytes

    async def start(self) -> None:
        """Warm up through the whole path, report ready, then start gRPC.

        gRPC starts once REST has answered its first request, or `GRPC_DEFER_S` after the
        warm-up: importing it takes about 0.15 s of CPU here, which would otherwise delay a cold
        start's first answer. Where gRPC is the served protocol (Knative's port is the gRPC
        port) it starts at once. If it cannot start, the server reports not ready.
        """
        try:
            await self.dataplane.warm_up()
        except Exception:
            logger.exception("warm-up inference failed; the server stays not ready")
            return
        logger.info("circle-detector warmed up; ready")
        if not self.settings.grpc_port:
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
                max_message_bytes=self.settings.max_body_bytes,
            )
        except Exception:
            logger.exception("cannot start the V2 gRPC server; reporting not ready")
            self.dataplane.set_ready(False)

    async def stop(self) -> None:
        if self._grpc_server is not None:
            await self._grpc_server.stop(grace=1.0)
        await self.dataplane.close()
