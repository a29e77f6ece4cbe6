"""The Bento: the circle detector behind the V2 protocol (REST + gRPC) with adaptive batching.

Every V2 inference, REST or gRPC, goes through the batchable `detect` API via
`self.to_async.detect`, BentoML's adaptive batcher. What crosses that internal hop is small on
purpose: images are decoded and resized on the dataplane's thread pool (beside the network),
parked in this process under a random handle, and only the handles (32-character strings) go
through BentoML's JSON serialisation; `detect` runs the batched network on the parked images and
returns the raw candidates (at most 100 rows of 4 floats per image).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import bentoml
import numpy as np
from bentoml.exceptions import BentoMLException

from . import rest
from .protocol import Overloaded
from .settings import load_settings

if TYPE_CHECKING:
    from .model.detector import Prepared

logger = logging.getLogger(__name__)
SETTINGS = load_settings()
WEIGHTS_FILE = "circle_detector.pt"


def _model_ref(tag: str) -> bentoml.models.BentoModel:
    """The model-store reference, with a hint when the weights were never imported."""
    ref = bentoml.models.BentoModel(tag)
    if ref.stored is None:
        home = os.environ.get("BENTOML_HOME", "~/bentoml")
        raise BentoMLException(
            f"model {tag} is not in the BentoML model store of BENTOML_HOME={home}; "
            "import the committed weights with `circle-detector import-model` (`make model`)"
        )
    return ref


@bentoml.service(
    name="circle-detector",
    workers=SETTINGS.workers,
    http={"port": SETTINGS.port},
    # BentoML's internal client rebuilds its session every 100 requests by default, which drops
    # about 10% of self-calls under concurrency (see ARCHITECTURE.md, Lessons).
    runner_connection={"max_requests": 10**9, "max_age": 1e9},
    traffic={"timeout": 120},
)
@bentoml.asgi_app(rest.app, path="/")
class CircleDetectorService:
    """Loads the model from the BentoML model store, serves V2 over REST and gRPC."""

    model_ref = _model_ref(SETTINGS.model_tag)

    def __init__(self) -> None:
        # Heavy imports happen here, in the worker only: `bentoml serve` imports this module in
        # its CLI process too, and torch there would add seconds to every cold start.
        import torch

        from .dataplane import DataPlane
        from .model.detector import CircleDetector

        if SETTINGS.torch_threads:
            torch.set_num_threads(SETTINGS.torch_threads)
        self.detector = CircleDetector.load(self.model_ref.path_of(WEIGHTS_FILE))
        self._parked: dict[str, Prepared] = {}
        self.dataplane = DataPlane(
            self.detector,
            self._batched_candidates,
            max_pixels=SETTINGS.max_pixels,
            max_images=SETTINGS.max_images,
            max_request_pixels=SETTINGS.max_request_pixels or None,
            threads=SETTINGS.preprocess_threads,
        )
        self._grpc_server: Any = None
        self._warm_up_task: asyncio.Task[None] | None = None

    @bentoml.api(
        batchable=True,
        max_batch_size=SETTINGS.max_batch_size,
        max_latency_ms=SETTINGS.max_latency_ms,
    )
    def detect(self, handles: list[str]) -> list[list[list[float]] | None]:
        """Batched network + decoding for parked images: rows (cx, cy, r, heat) per handle.

        Handles are issued by this process's dataplane and valid only during its call; an
        unknown handle gives `null`.
        """
        found = [(i, self._parked.get(h)) for i, h in enumerate(handles)]
        known = [(i, p) for i, p in found if p is not None]
        results: list[list[list[float]] | None] = [None] * len(handles)
        rows = self.detector.candidates([p for _, p in known])
        for (i, _), r in zip(known, rows, strict=True):
            results[i] = r.tolist()
        return results

    async def _batched_candidates(self, prepared: list[Prepared]) -> list[np.ndarray]:
        handles = [secrets.token_hex(16) for _ in prepared]
        self._parked.update(zip(handles, prepared, strict=True))
        try:
            rows = await self.to_async.detect(handles)  # type: ignore[attr-defined]
        except BentoMLException as exc:
            if exc.error_code == HTTPStatus.SERVICE_UNAVAILABLE:
                raise Overloaded(
                    "the server is overloaded: the batch queue is longer than "
                    f"{SETTINGS.max_latency_ms} ms; retry later"
                ) from None
            raise
        finally:
            for h in handles:
                self._parked.pop(h, None)
        if any(r is None for r in rows):
            raise RuntimeError("the batched detect lost a parked image")
        return [np.asarray(r, dtype=np.float32).reshape(-1, 4) for r in rows]

    @bentoml.on_startup
    async def _start(self) -> None:
        rest.app.state.dataplane = self.dataplane
        rest.app.state.max_body_bytes = SETTINGS.max_body_bytes
        self._warm_up_task = asyncio.create_task(self._warm_up())

    async def _warm_up(self) -> None:
        """Wait for BentoML's self-proxy, warm up through the batcher, then start gRPC.

        gRPC starts after the first inference so that its imports (about 0.2 s) are not on the
        cold-start path of REST; if it cannot start, the server reports not ready.
        """
        for _ in range(6000):
            if hasattr(self, "__self_proxy__"):
                break
            await asyncio.sleep(0.01)
        try:
            await self.dataplane.warm_up()
            logger.info("circle-detector warmed up; ready")
        except Exception:
            logger.exception("warm-up inference failed; the server stays not ready")
            return
        if SETTINGS.grpc_port:
            from . import grpc as grpc_transport

            try:
                self._grpc_server, _ = await grpc_transport.start_server(
                    self.dataplane,
                    SETTINGS.grpc_host,
                    SETTINGS.grpc_port,
                    max_message_bytes=SETTINGS.max_body_bytes,
                )
            except Exception:
                logger.exception("cannot start the V2 gRPC server; reporting not ready")
                self.dataplane.set_ready(False)

    @bentoml.on_shutdown
    async def _stop(self) -> None:
        if self._grpc_server is not None:
            await self._grpc_server.stop(grace=1.0)
        self.dataplane.close()


CircleDetectorService.add_asgi_middleware(rest.V2Dispatch, v2_app=rest.app)
