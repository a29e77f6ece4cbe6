"""V2 REST transport: a FastAPI app that only translates HTTP to the dataplane and back.

Mounted in the Bento with `@bentoml.asgi_app`; the service puts its `DataPlane` on
`app.state.dataplane` when it starts. Errors become `{"error": "..."}` with the protocol's status.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from .protocol import NotReady, PayloadTooLarge, ProtocolError
from .protocol.rest_codec import HEADER_LENGTH, decode_body, encode_response, parse_request

if TYPE_CHECKING:  # the dataplane pulls in torch; the Bento's CLI process must not
    from .dataplane import DataPlane

logger = logging.getLogger(__name__)
#: Bodies larger than this are parsed off the event loop.
_THREAD_PARSE_BYTES = 1 << 20
#: Default cap on an infer request body; the service sets `app.state.max_body_bytes`.
DEFAULT_MAX_BODY_BYTES = 256 * 1024 * 1024

router = APIRouter(prefix="/v2")


def _dataplane(request: Request) -> DataPlane:
    dataplane = getattr(request.app.state, "dataplane", None)
    if dataplane is None:
        raise NotReady("the model is still loading")
    return dataplane


@router.get("")
async def server_metadata(request: Request) -> JSONResponse:
    return JSONResponse(_dataplane(request).server_metadata())


@router.get("/health/live")
async def server_live(request: Request) -> JSONResponse:
    return JSONResponse({"live": True})


@router.get("/health/ready")
async def server_ready(request: Request) -> JSONResponse:
    if not _dataplane(request).ready():
        raise NotReady("the model is loading or warming up")
    return JSONResponse({"ready": True})


@router.get("/models/{name}")
@router.get("/models/{name}/versions/{version}")
async def model_metadata(request: Request, name: str, version: str | None = None) -> JSONResponse:
    return JSONResponse(_dataplane(request).model_metadata(name, version))


@router.get("/models/{name}/ready")
@router.get("/models/{name}/versions/{version}/ready")
async def model_ready(request: Request, name: str, version: str | None = None) -> JSONResponse:
    if not _dataplane(request).model_ready(name, version):
        raise NotReady(f"model '{name}' is loading or warming up")
    return JSONResponse({"name": name, "ready": True})


@router.post("/models/{name}/infer")
@router.post("/models/{name}/versions/{version}/infer")
async def infer(request: Request, name: str, version: str | None = None) -> Response:
    dataplane = _dataplane(request)
    dataplane.check_model(name, version)
    body = await _read_body(request)
    if "content-encoding" in request.headers:
        limit = getattr(request.app.state, "max_body_bytes", DEFAULT_MAX_BODY_BYTES)
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


async def _read_body(request: Request) -> bytes:
    """The body, refused with 413 as soon as it is known to be over the limit."""
    limit = getattr(request.app.state, "max_body_bytes", DEFAULT_MAX_BODY_BYTES)
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


async def _protocol_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProtocolError)
    return JSONResponse({"error": exc.message}, status_code=exc.http_status)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return JSONResponse(
        {"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"error": f"invalid request: {exc}"}, status_code=400)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unexpected error serving %s", request.url.path)
    return JSONResponse({"error": f"internal error: {type(exc).__name__}"}, status_code=500)


def create_app() -> FastAPI:
    """The ASGI app holding the V2 routes (no docs pages: BentoML serves its own)."""
    app = FastAPI(
        title="circle-detector V2",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        exception_handlers={
            ProtocolError: _protocol_error,
            StarletteHTTPException: _http_error,
            RequestValidationError: _validation_error,
            Exception: _unexpected,
        },
    )
    app.include_router(router)
    return app


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
