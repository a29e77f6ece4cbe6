"""The real client: KServe V2 / Open Inference Protocol over tritonclient (aio HTTP or gRPC).

This module only translates: bytes -> a BYTES tensor (binary data), V2 outputs -> `Circle`s, and
transport errors -> ModelUnavailableError (retry later) or ModelRejectedError (give up).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
from tritonclient.utils import InferenceServerException

from backend.config import Protocol, Settings
from backend.inference.base import (
    Circle,
    InferenceResult,
    ModelRejectedError,
    ModelUnavailableError,
)

OUTPUTS = ("num_detections", "boxes", "centers", "radii", "scores")
#: HTTP statuses and gRPC codes that mean "the request itself is wrong": retrying won't help.
_REJECTED = {"400", "413", "415", "422"}
_REJECTED_GRPC = {"StatusCode.INVALID_ARGUMENT", "StatusCode.OUT_OF_RANGE"}


class V2Client:
    """Calls `MODEL_NAME` on `MODEL_SERVER_URL` with one image per request."""

    def __init__(self, settings: Settings) -> None:
        self.model_name = settings.model_name
        self.url = settings.model_server_url
        self.protocol = settings.model_protocol
        self.timeout_s = settings.model_timeout_s
        self.ready_timeout_s = settings.ready_timeout_s
        self.headers = {"Host": settings.model_host_header} if settings.model_host_header else None
        self._client: Any = None
        self._version: str | None = None
        self._grpc = self.protocol == Protocol.GRPC
        if self._grpc:
            import tritonclient.grpc.aio as grpcclient

            self._mod: Any = grpcclient
        else:
            import tritonclient.http.aio as httpclient

            self._mod = httpclient

    def _get_client(self) -> Any:
        """Create the client lazily, inside the running event loop (aiohttp needs one)."""
        if self._client is None:
            if self._grpc:
                args = None
                if self.headers:
                    # Istio routes gRPC by :authority, the HTTP/2 form of the Host header.
                    args = [
                        ("grpc.default_authority", self.headers["Host"]),
                        ("grpc.max_send_message_length", 2**31 - 1),
                        ("grpc.max_receive_message_length", 2**31 - 1),
                    ]
                self._client = self._mod.InferenceServerClient(self.url, channel_args=args)
            else:
                self._client = self._mod.InferenceServerClient(
                    self.url, conn_timeout=self.timeout_s
                )
        return self._client

    def _grpc_headers(self) -> dict[str, str] | None:
        return None if self._grpc else self.headers

    async def infer(
        self, data: bytes, *, width: int, height: int, score_threshold: float, max_detections: int
    ) -> InferenceResult:
        client = self._get_client()
        image = self._mod.InferInput("image", [1], "BYTES")
        array = np.array([data], dtype=np.object_)
        if self._grpc:
            image.set_data_from_numpy(array)
        else:
            image.set_data_from_numpy(array, binary_data=True)
        outputs = [self._requested(name) for name in OUTPUTS]
        parameters = {"score_threshold": float(score_threshold), "max_detections": max_detections}
        kwargs: dict[str, Any] = {"headers": self._grpc_headers(), "parameters": parameters}
        if self._grpc:
            kwargs["client_timeout"] = self.timeout_s
        start = time.perf_counter()
        result = await self._call(client.infer(self.model_name, [image], outputs=outputs, **kwargs))
        elapsed_ms = (time.perf_counter() - start) * 1000.0
        circles = parse_circles({name: result.as_numpy(name) for name in OUTPUTS})
        version = self._response_version(result) or await self._metadata_version()
        return InferenceResult(self.model_name, version, circles, elapsed_ms)

    def _requested(self, name: str) -> Any:
        if self._grpc:
            return self._mod.InferRequestedOutput(name)
        return self._mod.InferRequestedOutput(name, binary_data=True)

    def _response_version(self, result: Any) -> str:
        response = result.get_response()
        if isinstance(response, dict):
            return str(response.get("model_version") or "")
        return str(getattr(response, "model_version", "") or "")

    async def _metadata_version(self) -> str:
        """The newest version listed in the model's metadata (cached), or "" when none."""
        if self._version is None:
            try:
                meta = await self._call(self._metadata())
            except ModelUnavailableError:
                return ""
            versions = meta.get("versions") or [] if isinstance(meta, dict) else meta.versions
            self._version = str(versions[-1]) if versions else ""
        return self._version

    async def _metadata(self) -> Any:
        client = self._get_client()
        if self._grpc:
            return await client.get_model_metadata(
                self.model_name, headers=None, client_timeout=self.ready_timeout_s
            )
        return await client.get_model_metadata(self.model_name, headers=self.headers)

    async def ready(self) -> None:
        client = self._get_client()
        if self._grpc:
            call = client.is_model_ready(self.model_name, client_timeout=self.ready_timeout_s)
        else:
            call = asyncio.wait_for(
                client.is_model_ready(self.model_name, headers=self.headers), self.ready_timeout_s
            )
        if not await self._call(call):
            raise ModelUnavailableError(f"model {self.model_name!r} is not ready")

    async def _call(self, awaitable: Any) -> Any:
        """Await a tritonclient call, translating its errors into the backend's two kinds."""
        import aiohttp

        try:
            return await awaitable
        except InferenceServerException as exc:
            status = str(exc.status() or "")
            message = f"model server at {self.url} answered {status or 'an error'}: {exc.message()}"
            if status in _REJECTED or status in _REJECTED_GRPC:
                raise ModelRejectedError(message) from exc
            raise ModelUnavailableError(message) from exc
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            reason = type(exc).__name__ if isinstance(exc, TimeoutError) else str(exc)
            raise ModelUnavailableError(
                f"model server at {self.url} unreachable: {reason or type(exc).__name__}"
            ) from exc

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


def parse_circles(outputs: dict[str, np.ndarray | None]) -> list[Circle]:
    """The first image's circles from V2 outputs (rows past num_detections are padding)."""
    missing = [name for name, value in outputs.items() if value is None]
    if missing:
        raise ModelRejectedError(f"model response lacks output(s) {', '.join(missing)}")
    count = int(np.asarray(outputs["num_detections"]).reshape(-1)[0])
    boxes = np.asarray(outputs["boxes"], dtype=np.float64)
    centers = np.asarray(outputs["centers"], dtype=np.float64)
    radii = np.asarray(outputs["radii"], dtype=np.float64)
    scores = np.asarray(outputs["scores"], dtype=np.float64)
    if (
        boxes.ndim != 3
        or boxes.shape[2] != 4
        or centers.shape[:2] != boxes.shape[:2]
        or radii.shape != boxes.shape[:2]
        or scores.shape != boxes.shape[:2]
        or not 0 <= count <= boxes.shape[1]
    ):
        raise ModelRejectedError("model response has inconsistent output shapes")
    finite = np.isfinite(boxes[0]).all(-1) & np.isfinite(centers[0]).all(-1)
    finite &= np.isfinite(radii[0]) & np.isfinite(scores[0])
    circles = [
        Circle(
            x1=float(boxes[0, i, 0]),
            y1=float(boxes[0, i, 1]),
            x2=float(boxes[0, i, 2]),
            y2=float(boxes[0, i, 3]),
            cx=float(centers[0, i, 0]),
            cy=float(centers[0, i, 1]),
            radius=float(radii[0, i]),
            score=float(np.clip(scores[0, i], 0.0, 1.0)),
        )
        for i in range(count)
        if finite[i]  # a NaN row would break the database's CHECK constraints
    ]
    return sorted(circles, key=lambda c: -c.score)
