"""Errors that carry their HTTP status, and the handlers that turn every failure into JSON.

Clients always get `{"error": "..."}` (plus fields such as `image_id` where useful); stack traces
stay in the log.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from tortoise.exceptions import DBConnectionError, IntegrityError, OperationalError

try:  # errors the drivers raise that Tortoise passes through untranslated
    from asyncpg import PostgresError as _PgError
except ImportError:  # pragma: no cover - asyncpg is a dependency
    _PgError = sqlite3.Error

from backend.storage import StorageError

log = logging.getLogger(__name__)


class APIError(Exception):
    """A failure with the status code and message the client should see."""

    def __init__(
        self,
        status_code: int,
        message: str,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.headers = headers or {}
        self.extra = extra


def error_response(status_code: int, message: str, **extra: Any) -> JSONResponse:
    """The one error body of the API."""
    return JSONResponse({"error": message, **extra}, status_code=status_code)


def _describe_validation(exc: RequestValidationError) -> tuple[str, list[dict[str, Any]]]:
    details = []
    parts = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        msg = str(err.get("msg", "invalid"))
        details.append({"loc": loc, "msg": msg, "type": err.get("type", "")})
        parts.append(f"{'.'.join(loc)}: {msg}")
    return "invalid request: " + "; ".join(parts), details


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers so that no route can answer with anything but JSON errors."""

    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError) -> JSONResponse:
        response = error_response(exc.status_code, exc.message, **exc.extra)
        response.headers.update(exc.headers)
        return response

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        response = error_response(exc.status_code, str(exc.detail))
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        message, details = _describe_validation(exc)
        return error_response(422, message, detail=details)

    @app.exception_handler(StorageError)
    async def _storage_error(_: Request, exc: StorageError) -> JSONResponse:
        log.error("storage failure: %s", exc)
        return error_response(503, f"storage unavailable: {exc}")

    @app.exception_handler(DBConnectionError)
    @app.exception_handler(_PgError)
    @app.exception_handler(sqlite3.Error)
    @app.exception_handler(IntegrityError)
    @app.exception_handler(OperationalError)
    async def _db_error(_: Request, exc: Exception) -> JSONResponse:
        log.error("database failure: %s", exc)
        return error_response(503, "database unavailable or the operation failed; try again")

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return error_response(500, "internal server error")
