"""FastAPI dependencies: the app's shared objects and the optional API key (writes; with
API_KEY_FOR_READS, reads too)."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from backend.config import Settings
from backend.errors import APIError
from backend.images import ImageService

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API_KEY")
_bearer = HTTPBearer(auto_error=False, description="API_KEY as a bearer token")


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_service(request: Request) -> ImageService:
    return request.app.state.service


def require_api_key(
    settings: Annotated[Settings, Depends(get_settings)],
    header_key: Annotated[str | None, Security(_api_key_header)] = None,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None,
) -> None:
    """When API_KEY is set, writes need it in `X-API-Key` or `Authorization: Bearer`."""
    if settings.api_key is None:
        return
    given = header_key or (bearer.credentials if bearer else None)
    if not given:
        raise APIError(401, "this operation needs an API key (header X-API-Key)")
    expected = settings.api_key.get_secret_value()
    if not secrets.compare_digest(given.encode(), expected.encode()):
        raise APIError(401, "invalid API key")


def require_api_key_for_reads(
    settings: Annotated[Settings, Depends(get_settings)],
    header_key: Annotated[str | None, Security(_api_key_header)] = None,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None,
) -> None:
    """With API_KEY_FOR_READS=true, every /api route needs the key; otherwise reads are open."""
    if settings.api_key_for_reads:
        require_api_key(settings, header_key, bearer)


Service = Annotated[ImageService, Depends(get_service)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
WriteAccess = Depends(require_api_key)
ReadAccess = Depends(require_api_key_for_reads)
