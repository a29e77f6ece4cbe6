"""V2 REST transport: a Starlette app that only translates HTTP to the dataplane and back.

Plain Starlette rather than FastAPI: nothing here needs request models or generated docs (the
protocol's OpenAPI document is KServe's), and FastAPI's import alone costs half a second of a
cold start. The Bento mounts this app with `@bentoml.asgi_app`; the single-process launcher
serves it itself. Whoever starts the model puts its `DataPlane` on `app.state.dataplane`.
Errors become `{"error": "..."}` with the protocol's status (503s with `Retry-After`); an
unexpected error is a 500 `{"error": "internal error", "request_id": ...}`, logged with the id.

Memory: an infer body is checked against the JSON or binary limit (`protocol.Limits`) from its
`Content-Length` before any of it is read, and while it streams in (decompressed size counts);
it holds its estimated in-memory cost of the process-wide byte budget from before it is read
until it is answered. Big bodies are decompressed and parsed off the event loop, so liveness
answers meanwhile; a body that trickles in is cut off after the body timeout (408).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .. import tracing
from ..admission import Budget, unbounded
from ..protocol import (
    BadRequest,
    Limits,
    NotReady,
    PayloadTooLarge,
    ProtocolError,
    RequestTimeout,
)
from ..protocol.limits import DEFAULT_LIMITS
from .codec import (
    HEADER_LENGTH,
    MAX_CONTROL_BYTES,
    decode_body,
    encode_response,
    json_header_length,
    parse_control,
    parse_request,
)

if TYPE_CHECKING:
    from ..dataplane import DataPlane

logger = logging.getLogger(__name__)
#: Bodies larger than this are parsed off the event loop.
_THREAD_PARSE_BYTES = 1 << 20
#: Default cap on an infer request body of an app without `app.state.limits` (the server
#: sets those; `app.state.max_body_bytes` alone also works, see `_limits`).
DEFAULT_MAX_BODY_BYTES = 256 * 1024 * 1024
#: In-memory cost of a body per byte: JSON becomes Python objects (measured: 64 MiB of JSON
#: BYTES grew the worker by 1.7 GB); binary tensors are the body plus their arrays.
JSON_COST, BINARY_COST = 20, 2
#: Default body timeout (seconds) when the server sets none (`app.state.body_timeout_s`).
DEFAULT_BODY_TIMEOUT_S = 60.0
REQUEST_ID_HEADER = "x-request-id"


def _dataplane(request: Request) -> DataPlane:
    dataplane = getattr(request.app.state, "dataplane", None)
    if dataplane is None:
        raise NotReady("the model is still loading")
    return dataplane


def _version(request: Request) -> str | None:
    return request.path_params.get("version")


async def server_metadata(request: Request) -> Response:
    return JSONResponse(_dataplane(request).server_metadata())


async def server_live(request: Request) -> Response:
    dataplane = getattr(request.app.state, "dataplane", None)
    error = dataplane.liveness_error() if dataplane is not None else None
    if error is not None:
        return JSONResponse({"live": False, "error": error}, status_code=503)
    return JSONResponse({"live": True})


async def server_ready(request: Request) -> Response:
    if not _dataplane(request).ready():
        raise NotReady("the model is loading or warming up")
    return JSONResponse({"ready": True})


async def model_metadata(request: Request) -> Response:
    name = request.path_params["name"]
    return JSONResponse(_dataplane(request).model_metadata(name, _version(request)))


async def model_ready(request: Request) -> Response:
    name = request.path_params["name"]
    if not _dataplane(request).model_ready(name, _version(request)):
        raise NotReady(f"model '{name}' is loading or warming up")
    return JSONResponse({"name": name, "ready": True})


async def model_statistics(request: Request) -> Response:
    name = request.path_params.get("name", "")
    return JSONResponse(_dataplane(request).model_statistics(name, _version(request)))


async def model_config(request: Request) -> Response:
    name = request.path_params["name"]
    return JSONResponse(_dataplane(request).model_config(name, _version(request)))


async def repository_index(request: Request) -> Response:
    doc = await _control(request, ("ready", "repository_name"))
    ready = doc.get("ready", False)
    if not isinstance(ready, bool):
        raise BadRequest("'ready' must be a boolean")
    return JSONResponse(_dataplane(request).repository_index(ready))


async def repository_load(request: Request) -> Response:
    doc = await _control(request, ("parameters",))
    await _dataplane(request).load_model(request.path_params["name"], doc.get("parameters", {}))
    return JSONResponse({})


async def repository_unload(request: Request) -> Response:
    doc = await _control(request, ("parameters",))
    await _dataplane(request).unload_model(request.path_params["name"], doc.get("parameters", {}))
    return JSONResponse({})


async def _control(request: Request, allowed: tuple[str, ...]) -> dict[str, Any]:
    """A control request's small JSON body, read within the body timeout."""
    _declared_length(request, MAX_CONTROL_BYTES)
    timeout = getattr(request.app.state, "body_timeout_s", DEFAULT_BODY_TIMEOUT_S)
    try:
        async with asyncio.timeout(timeout):
            body = await _read_body(request, MAX_CONTROL_BYTES)
    except TimeoutError:
        raise RequestTimeout(f"request body not received within {timeout:g} s") from None
    return parse_control(body, allowed)


async def infer(request: Request) -> Response:
    with tracing.server_span("V2 ModelInfer", request.headers):
        return await _infer(request)


async def _infer(request: Request) -> Response:
    dataplane = _dataplane(request)
    name, version = request.path_params["name"], _version(request)
    dataplane.check_model(name, version)
    state = request.app.state
    limits = _limits(state)
    header_length = request.headers.get(HEADER_LENGTH)
    json_length = json_header_length(header_length, limits.max_json_bytes)
    limit = limits.max_json_bytes if json_length is None else limits.max_body_bytes
    encoding = request.headers.get("content-encoding")
    cost = _memory_cost(_declared_length(request, limit), limit, json_length, bool(encoding))
    # An app whose server set no budget admits everything (one per request: a budget's
    # condition belongs to one event loop).
    budget: Budget = getattr(state, "byte_budget", None) or unbounded("in-flight bytes")
    async with budget.hold(cost):
        timeout = getattr(state, "body_timeout_s", DEFAULT_BODY_TIMEOUT_S)
        try:
            async with asyncio.timeout(timeout):
                body = await _read_body(request, limit)
        except TimeoutError:
            raise RequestTimeout(f"request body not received within {timeout:g} s") from None
        if encoding:
            body = await run_in_threadpool(decode_body, body, encoding, limit)
        if len(body) > _THREAD_PARSE_BYTES:
            infer_request = await run_in_threadpool(parse_request, body, header_length, limits)
        else:
            infer_request = parse_request(body, header_length, limits)
        del body
        response = await dataplane.infer(name, infer_request, version)
        del infer_request
    payload, json_length = encode_response(response)
    if json_length is None:
        return Response(payload, media_type="application/json")
    return Response(
        payload,
        media_type="application/octet-stream",
        headers={HEADER_LENGTH: str(json_length)},
    )


def _limits(state: Any) -> Limits:
    """The server's limits; an app given only `max_body_bytes` caps JSON at it too."""
    limits = getattr(state, "limits", None)
    if limits is not None:
        return limits
    body = getattr(state, "max_body_bytes", DEFAULT_MAX_BODY_BYTES)
    json_bytes = min(DEFAULT_LIMITS.max_json_bytes, body)
    return dataclasses.replace(DEFAULT_LIMITS, max_json_bytes=json_bytes, max_body_bytes=body)


def _memory_cost(
    declared: int | None, limit: int, json_length: int | None, compressed: bool
) -> int:
    """A body's estimated cost in memory once parsed, held of the byte budget.

    Unknown length (chunked): the limit's cost. Compressed: the decompressed size is unknown
    until decoded, so 16 times the declared size is held (the limit still applies while
    inflating, whatever was held).
    """
    size = limit if declared is None else min(limit, declared * (16 if compressed else 1))
    if json_length is None:
        return JSON_COST * size
    return BINARY_COST * size + JSON_COST * json_length


def _declared_length(request: Request, limit: int) -> int | None:
    """`Content-Length`, refused with 413 when over the limit (None: not given)."""
    declared = request.headers.get("content-length", "")
    if not (declared.isascii() and declared.isdigit()):
        return None
    if int(declared) > limit:
        raise PayloadTooLarge(f"request body is {declared} bytes; the limit is {limit}")
    return int(declared)


async def _read_body(request: Request, limit: int) -> bytearray:
    """The body, refused with 413 as soon as it is over the limit; grown in place (no second
    copy from joining chunks)."""
    body = bytearray()
    async for chunk in request.stream():
        if len(body) + len(chunk) > limit:
            raise PayloadTooLarge(f"request body is over the limit of {limit} bytes")
        body += chunk
    return body


async def _protocol_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProtocolError)
    headers = {}
    if exc.retry_after_s is not None:
        headers["Retry-After"] = str(exc.retry_after_s)
    if isinstance(exc, RequestTimeout | PayloadTooLarge):
        headers["Connection"] = "close"  # the rest of the body is not read
    return JSONResponse({"error": exc.message}, status_code=exc.http_status, headers=headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse(
        {"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers
    )


async def _unexpected(request: Request, exc: Exception) -> Response:
    """A generic 500: the exception's text stays in the log, found by the request id."""
    request_id = request.headers.get(REQUEST_ID_HEADER) or uuid.uuid4().hex
    logger.error(
        "unexpected error serving %s (request id %s)", request.url.path, request_id, exc_info=exc
    )
    return JSONResponse(
        {"error": "internal error", "request_id": request_id},
        status_code=500,
        headers={"X-Request-Id": request_id},
    )


def _routes() -> list[Route]:
    routes = [
        Route("/v2", server_metadata, methods=["GET"]),
        Route("/v2/health/live", server_live, methods=["GET"]),
        Route("/v2/health/ready", server_ready, methods=["GET"]),
        # before /v2/models/{name}: the statistics of every model, as Triton serves them
        Route("/v2/models/stats", model_statistics, methods=["GET"]),
        Route("/v2/repository/index", repository_index, methods=["POST"]),
        Route("/v2/repository/models/{name}/load", repository_load, methods=["POST"]),
        Route("/v2/repository/models/{name}/unload", repository_unload, methods=["POST"]),
    ]
    for base in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
        routes += [
            Route(base, model_metadata, methods=["GET"]),
            Route(f"{base}/ready", model_ready, methods=["GET"]),
            Route(f"{base}/infer", infer, methods=["POST"]),
            Route(f"{base}/stats", model_statistics, methods=["GET"]),
            Route(f"{base}/config", model_config, methods=["GET"]),
        ]
    return routes


def create_app(extra_routes: list[Route] | None = None, lifespan: Any = None) -> Starlette:
    """The ASGI app holding the V2 routes (and `extra_routes`, e.g. `/metrics`)."""
    return Starlette(
        routes=[*_routes(), *(extra_routes or [])],
        lifespan=lifespan,
        exception_handlers={
            ProtocolError: _protocol_error,
            HTTPException: _http_error,
            Exception: _unexpected,
        },
    )


class V2Dispatch:
    """ASGI middleware for the Bento: every `/v2` request goes straight to the V2 app.

    BentoML's mount only matches paths its router understands (a path with an encoded newline
    falls through to a plain-text 404); dispatching on the prefix makes every V2 answer, 404s
    included, a JSON `{"error": ...}`.
    """

    def __init__(self, app: ASGIApp, v2_app: ASGIApp) -> None:
        self.app = app
        self.v2_app = v2_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and (path == "/v2" or path.startswith("/v2/")):
            await self.v2_app(scope, receive, send)
        else:
            await self.app(scope, receive, send)


app = create_app()
