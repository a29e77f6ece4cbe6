"""The real client: KServe V2 / Open Inference Protocol over tritonclient (aio HTTP or gRPC).

This module only translates: bytes -> a BYTES tensor (binary data), V2 outputs -> `Circle`s, and
transport errors -> the kinds of base.py, each with its retry policy (see retry.py):

| HTTP status; gRPC code | kind |
|---|---|
| 400 413 415 422; INVALID_ARGUMENT OUT_OF_RANGE FAILED_PRECONDITION | ModelRejectedError |
| 404 401 403, other 4xx; NOT_FOUND UNAUTHENTICATED ...; TLS failures | ModelMisconfiguredError |
| 500 501 505+; INTERNAL UNKNOWN DATA_LOSS | ModelServerError |
| 408 429 502 503 504; UNAVAILABLE DEADLINE_EXCEEDED ...; refused, timeout | ModelUnavailableError |

With MODEL_SERVER_TLS (an https:// or grpcs:// URL) both transports use TLS, verified against
MODEL_SERVER_CA_BUNDLE or the system's CAs; there is no fallback to plain text.
"""

from __future__ import annotations

import asyncio
import contextvars
import ssl
import time
from email.utils import parsedate_to_datetime
from typing import Any

import numpy as np
from tritonclient.utils import InferenceServerException

from backend import tracing
from backend.config import Protocol, Settings
from backend.inference.base import (
    Circle,
    InferenceError,
    InferenceResult,
    ModelMisconfiguredError,
    ModelRejectedError,
    ModelServerError,
    ModelUnavailableError,
)

OUTPUTS = ("num_detections", "boxes", "centers", "radii", "scores")
#: The request itself is wrong (this image): failed at once.
_REJECTED = {"400", "413", "415", "422"}
_REJECTED_GRPC = {"INVALID_ARGUMENT", "OUT_OF_RANGE", "FAILED_PRECONDITION"}
#: Worth retrying later (overload, gateway or scale-from-zero troubles).
_TRANSIENT = {"408", "429", "502", "503", "504"}
_TRANSIENT_GRPC = {"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "ABORTED", "CANCELLED"}
_SERVER_ERROR_GRPC = {"INTERNAL", "UNKNOWN", "DATA_LOSS"}
#: Words of gRPC's UNAVAILABLE message when TLS, not the network, failed.
_TLS_WORDS = ("handshake", "certificate", "ssl")
#: The Retry-After header of the last HTTP error answer, read by `_call` of the same task.
_retry_after: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "retry_after", default=None
)


class V2Client:
    """Calls `MODEL_NAME` on `MODEL_SERVER_URL` with one image per request."""

    def __init__(self, settings: Settings) -> None:
        self.model_name = settings.model_name
        self.url = settings.model_server_url
        self.protocol = settings.model_protocol
        self.timeout_s = settings.model_timeout_s
        self.ready_timeout_s = settings.ready_timeout_s
        self.headers = {"Host": settings.model_host_header} if settings.model_host_header else None
        self.tls = settings.model_server_tls
        ca = settings.model_server_ca_bundle
        self.ca_bundle = str(ca) if ca is not None else None
        self.scheme = (
            ("grpcs" if self.tls else "grpc")
            if self.protocol == Protocol.GRPC
            else ("https" if self.tls else "http")
        )
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
                tls = {"ssl": True, "root_certificates": self.ca_bundle} if self.tls else {}
                self._client = self._mod.InferenceServerClient(self.url, channel_args=args, **tls)
            else:
                tls = {"ssl": True, "ssl_context": self._ssl_context()} if self.tls else {}
                self._client = _http_client_class()(self.url, conn_timeout=self.timeout_s, **tls)
        return self._client

    def _ssl_context(self) -> ssl.SSLContext:
        """Verified TLS (hostname and chain) against the CA bundle or the system's CAs."""
        return ssl.create_default_context(cafile=self.ca_bundle)

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
        with tracing.client_span("ModelInfer", self._span_attributes()) as trace_headers:
            if trace_headers:  # W3C traceparent, as HTTP headers or gRPC metadata
                kwargs["headers"] = {**(kwargs["headers"] or {}), **trace_headers}
            call = client.infer(self.model_name, [image], outputs=outputs, **kwargs)
            result = await self._call(call)
        elapsed_ms = (time.perf_counter() - start) * 1000.0
        circles = parse_circles({name: result.as_numpy(name) for name in OUTPUTS})
        version = self._response_version(result) or await self._metadata_version()
        return InferenceResult(self.model_name, version, circles, elapsed_ms)

    def _span_attributes(self) -> dict[str, str]:
        return {
            "rpc.system": "grpc" if self._grpc else "http",
            "rpc.method": "ModelInfer",
            "server.address": self.where,
            "model.name": self.model_name,
        }

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
        """Ready, or ModelUnavailableError; ModelMisconfiguredError when the server is up but
        does not know MODEL_NAME (404), refuses us (401/403) or fails TLS verification."""
        client = self._get_client()
        if self._grpc:
            call = client.is_model_ready(self.model_name, client_timeout=self.ready_timeout_s)
        else:
            call = asyncio.wait_for(
                client.is_model_ready(self.model_name, headers=self.headers), self.ready_timeout_s
            )
        if await self._call(call):
            return
        # HTTP's is_model_ready is only "status == 200": the metadata's status says why not.
        if not self._grpc:
            await self._call(asyncio.wait_for(self._metadata(), self.ready_timeout_s))
        raise ModelUnavailableError(f"model {self.model_name!r} is not ready")

    async def _call(self, awaitable: Any) -> Any:
        """Await a tritonclient call, translating its errors into the kinds of base.py."""
        import aiohttp

        _retry_after.set(None)
        try:
            return await awaitable
        except InferenceServerException as exc:
            raise self._classify(exc) from exc
        except aiohttp.ClientSSLError as exc:
            raise ModelMisconfiguredError(
                f"TLS to the model server at {self.where} failed: {exc} "
                "(MODEL_SERVER_URL, MODEL_SERVER_CA_BUNDLE)"
            ) from exc
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            reason = type(exc).__name__ if isinstance(exc, TimeoutError) else str(exc)
            raise ModelUnavailableError(
                f"model server at {self.where} unreachable: {reason or type(exc).__name__}"
            ) from exc

    @property
    def where(self) -> str:
        """The model server as the operator configured it, scheme included."""
        return f"{self.scheme}://{self.url}"

    def _classify(self, exc: InferenceServerException) -> InferenceError:
        status = str(exc.status() or "").removeprefix("StatusCode.")
        text = str(exc.message() or "")
        message = f"model server at {self.where} answered {status or 'an error'}: {text}"
        if status in _REJECTED or status in _REJECTED_GRPC:
            return ModelRejectedError(message)
        if status == "404" or status == "NOT_FOUND":
            return ModelMisconfiguredError(
                f"{message} (is MODEL_NAME={self.model_name!r} served there?)"
            )
        if status == "UNAVAILABLE" and self.tls and any(w in text.lower() for w in _TLS_WORDS):
            return ModelMisconfiguredError(f"{message} (TLS: MODEL_SERVER_CA_BUNDLE?)")
        if status in _TRANSIENT or status in _TRANSIENT_GRPC or not status:
            error = ModelUnavailableError(message)
            error.retry_after_s = _parse_retry_after(_retry_after.get())
            return error
        if status in _SERVER_ERROR_GRPC or status.startswith("5"):
            return ModelServerError(message)
        return ModelMisconfiguredError(message)  # 401, 403, 405, ...; UNAUTHENTICATED, ...

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


def _http_client_class() -> type:
    """tritonclient's aio HTTP client that also keeps an error answer's Retry-After header
    (tritonclient itself drops the headers of errors) and reads every error answer's body, so
    that its connection goes back to the pool (tritonclient's `is_model_ready` never reads it,
    leaving the connection to be closed by the garbage collector)."""
    global _HTTP_CLIENT
    if _HTTP_CLIENT is None:
        import tritonclient.http.aio as httpclient

        class Client(httpclient.InferenceServerClient):
            async def _get(self, *args: Any, **kwargs: Any) -> Any:
                return await _keep_retry_after(await super()._get(*args, **kwargs))

            async def _post(self, *args: Any, **kwargs: Any) -> Any:
                return await _keep_retry_after(await super()._post(*args, **kwargs))

        _HTTP_CLIENT = Client
    return _HTTP_CLIENT


_HTTP_CLIENT: type | None = None


async def _keep_retry_after(response: Any) -> Any:
    if response.status != 200:
        _retry_after.set(response.headers.get("Retry-After"))
        await response.read()  # cached for tritonclient's own read; releases the connection
    return response


def _parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if absent/bad."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError):
        return None


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
