"""V2 REST transport: a Starlette app that only translates HTTP to the dataplane and back.

Plain Starlette rather than FastAPI: nothing here needs request models or generated docs (the
protocol's OpenAPI document is KServe's), and FastAPI's import alone costs half a second of a
cold start. The Bento mounts this app with `@bentoml.asgi_app`; the single-process launcher
serves it itself. Whoever starts the model puts its `DataPlane` on `app.state.dataplane`.
Errors become `{"error": "..."}` with the protocol's status.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .protocol import NotReady, PayloadTooLarge, ProtocolError
from .protocol.rest_codec import HEADER_LENGTH, decode_body, encode_response, parse_request

if TYPE_CHECKING:
    from .dataplane import DataPlane

logger = logging.getLogger(__name__)
#: Bodies larger than this are parsed off the event loop.
_THREAD_PARSE_BYTES = 1 << 20
#: Default cap on an infer request body; the server sets `app.state.max_body_bytes`.
DEFAULT_MAX_BODY_BYTES = 256 * 1024 * 1024


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


async def infer(request: Request) -> Response:
    dataplane = _dataplane(request)
    name, version = request.path_params["name"], _version(request)
    dataplane.check_model(name, version)
    limit = getattr(request.app.state, "max_body_bytes", DEFAULT_MAX_BODY_BYTES)
    body = await _read_body(request, limit)
    if "content-encoding" in request.headers:
        body = await run_in_threadpool(
            decode_body, body, request.headers["content-encoding"], limit
        )
    header_length = request.headers.get(HEADER_LENGTH)
    if len(body) > _THREAD_PARSE_BYTES:
        infer_request = await run_in_threadpool(parse_request, body, header_length)
    else:
        infer_request = parse_request(body, header_length)
    response = await dataplane.infer(name, infer_request, version)
    payload, json_length = encode_response(response)
    if json_length is None:
        return Response(payload, media_type="application/json")
    return Response(
        payload,
        media_type="application/octet-stream",
        headers={HEADER_LENGTH: str(json_length)},
    )


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to be over the limit."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body is {declared} bytes; the limit is {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _protocol_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProtocolError)
    return JSONResponse({"error": exc.message}, status_code=exc.http_status)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse(
        {"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers
    )


async def _unexpected(request: Request, exc: Exception) -> Response:
    logger.error("unexpected error serving %s", request.url.path, exc_info=exc)
    return JSONResponse({"error": f"internal error: {type(exc).__name__}"}, status_code=500)


def _routes() -> list[Route]:
    routes = [
        Route("/v2", server_metadata, methods=["GET"]),
        Route("/v2/health/live", server_live, methods=["GET"]),
        Route("/v2/health/ready", server_ready, methods=["GET"]),
    ]
    for base in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
        routes += [
            Route(base, model_metadata, methods=["GET"]),
            Route(f"{base}/ready", model_ready, methods=["GET"]),
            Route(f"{base}/infer", infer, methods=["POST"]),
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
