"""Errors that carry their HTTP status, and the handlers that turn every failure into JSON.

Clients always get `{"error": "..."}` (plus fields such as `image_id` where useful); stack traces
stay in the log. Outages of the database or the storage are 503 with `Retry-After` (a full disk
is 507), never 500.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from tortoise.exceptions import (
    DBConnectionError,
    IntegrityError,
    OperationalError,
    TransactionManagementError,
)

from backend.storage import StorageError, StorageFullError

try:  # errors the drivers raise that Tortoise passes through untranslated
    from asyncpg import InterfaceError as _PgInterfaceError
    from asyncpg import PostgresError as _PgError
except ImportError:  # pragma: no cover - asyncpg is a dependency
    _PgError = _PgInterfaceError = sqlite3.Error

DEFAULT_RETRY_AFTER_S = 5
#: Failures of the database or of the way to it: 503 + Retry-After, never 500. A bare OSError
#: (connection refused or reset, a timeout) can only come from the database's connection here:
#: storage wraps its own as StorageError.
DATABASE_ERRORS: tuple[type[Exception], ...] = (
    DBConnectionError,
    OperationalError,
    TransactionManagementError,
    IntegrityError,  # a write the database refused (a trigger, a race): retrying may succeed
    _PgError,
    _PgInterfaceError,
    sqlite3.Error,
    OSError,
)

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


def _retry_after_s(request: Request) -> int:
    settings = getattr(request.app.state, "settings", None)
    return int(getattr(settings, "retry_after_s", DEFAULT_RETRY_AFTER_S))


def _retry_later(request: Request, status_code: int, message: str) -> JSONResponse:
    """A JSON error that tells the client when to try again (outages, a full disk)."""
    response = error_response(status_code, message)
    response.headers["Retry-After"] = str(_retry_after_s(request))
    return response


async def _db_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("database failure: %s: %s", type(exc).__name__, exc)
    message = f"database unavailable or the operation failed ({type(exc).__name__}); try again"
    return _retry_later(request, 503, message)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers so that no route can answer with anything but JSON errors."""

    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError) -> JSONResponse:
        response = error_response(exc.status_code, exc.message, **exc.extra)
        response.headers.update(exc.headers)
        if exc.status_code in (503, 507) and "retry-after" not in response.headers:
            response.headers["Retry-After"] = str(_retry_after_s(request))
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

    @app.exception_handler(StorageFullError)
    async def _storage_full(request: Request, exc: StorageFullError) -> JSONResponse:
        log.error("storage full: %s", exc)
        return _retry_later(request, 507, f"storage full, nothing was stored: {exc}")

    @app.exception_handler(StorageError)
    async def _storage_error(request: Request, exc: StorageError) -> JSONResponse:
        log.error("storage failure: %s", exc)
        return _retry_later(request, 503, f"storage unavailable: {exc}")

    for cls in DATABASE_ERRORS:
        app.add_exception_handler(cls, _db_error)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return error_response(500, "internal server error")
