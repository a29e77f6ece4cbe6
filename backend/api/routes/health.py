"""Liveness, readiness (database, storage, model server) and Prometheus metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from tortoise import connections

from backend.api.deps import Service
from backend.schemas import CheckOut, ReadyOut
from backend.storage import StorageFullError

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


async def _check(coro, timeout_s: float) -> CheckOut:
    try:
        await asyncio.wait_for(coro, timeout_s)
    except TimeoutError:
        return CheckOut(ok=False, error=f"timed out after {timeout_s:g} s")
    except StorageFullError as exc:  # reads still work: stay in service, uploads answer 507
        return CheckOut(ok=True, error=f"{exc} (uploads answer 507 until there is room)")
    except Exception as exc:
        return CheckOut(ok=False, error=str(exc) or type(exc).__name__)
    return CheckOut(ok=True)


@router.get("/health/ready", response_model=ReadyOut, responses={503: {"model": ReadyOut}})
async def ready(service: Service) -> JSONResponse:
    """Readiness: database reachable, storage writable, model server ready; says which failed.

    A full storage keeps the service ready (reads are served; uploads answer 507) and says so
    in the storage check's `error`.

    With READY_REQUIRES_MODEL=false the model server is not called at all (`ok` is null): under
    Knative every probe would otherwise wake a model that has scaled to zero. A misconfiguration
    that an upload met (a wrong MODEL_NAME, a refused TLS certificate) is reported all the same,
    as `ok: false` with its reason, without taking the backend out of service.
    """
    timeout = service.settings.ready_timeout_s
    db, storage = await asyncio.gather(
        _check(connections.get("default").execute_query("SELECT 1"), timeout),
        _check(service.storage.check_writable(), timeout),
    )
    if service.settings.ready_requires_model:
        model = await _check(service.client.ready(), timeout)
    elif service.model_misconfiguration:
        model = CheckOut(ok=False, required=False, error=service.model_misconfiguration)
    else:
        model = CheckOut(ok=None, required=False, error="not checked (READY_REQUIRES_MODEL=false)")
    checks = {"database": db, "storage": storage, "model_server": model}
    ok = all(c.ok is True for c in checks.values() if c.required)
    body = ReadyOut(status="ready" if ok else "not ready", checks=checks)
    headers = None if ok else {"Retry-After": str(service.settings.retry_after_s)}
    return JSONResponse(
        body.model_dump(mode="json"), status_code=200 if ok else 503, headers=headers
    )


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
async def metrics(request: Request, service: Service) -> Response:
    """Prometheus metrics: requests, latencies, inference time, images pending."""
    m = request.app.state.metrics
    try:
        m.pending.set(await service.pending_count())
    except Exception:  # the scrape must work while the database is down
        m.pending.set(float("nan"))
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)
