"""The app factory: `create_app(settings)` wires settings, database, storage, inference, routes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from tortoise.contrib.fastapi import RegisterTortoise

from backend import tracing
from backend.api.deps import ReadAccess
from backend.api.routes import health, images
from backend.config import Settings
from backend.db import apply_migrations, prepare_filesystem, tortoise_config
from backend.errors import install_error_handlers
from backend.images import ImageService
from backend.inference import make_client
from backend.metrics import Metrics, MetricsMiddleware
from backend.pending import retry_pending_forever
from backend.reconcile import reconcile
from backend.schemas import API_PREFIX
from backend.storage import LocalStorage, Storage

log = logging.getLogger(__name__)

DESCRIPTION = """Upload images, get every circle in them (box, centre, radius, score).

Uploads are judged by content (PNG, JPEG, BMP, TIFF, WEBP). `POST /api/v1/images/` answers
**201** when the circles are detected and **202** when the image is stored but detection did not
finish (`status` `pending`: the model server was unreachable until the retry deadline, call
`POST /api/v1/images/{id}/detect` later; or `failed`: the model server refused the image).
Errors are always `{"error": "..."}`.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """A ready-to-serve backend for `settings` (default: from the environment)."""
    settings = settings or Settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        prepare_filesystem(settings)
        if settings.migrate_on_start:  # `python -m backend` has done it already
            await apply_migrations(settings)
        client = make_client(settings)
        async with (
            open_storage(settings) as storage,
            RegisterTortoise(app, config=tortoise_config(settings)),
        ):
            app.state.service = ImageService(settings, storage, client, metrics)
            if settings.reconcile_on_start:  # heal what a crash left (backend/reconcile.py)
                await reconcile(storage, settings)
            retry = None
            if settings.pending_retry_interval_s > 0:
                retry = asyncio.create_task(retry_pending_forever(app.state.service))
            try:
                yield
            finally:
                if retry is not None:
                    retry.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await retry
                    log.info("background retry stopped")
                await client.close()
                tracing.shutdown(app.state.tracer_provider)

    app = FastAPI(
        title="circle-detector backend",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    install_error_handlers(app)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    # API_KEY_FOR_READS: every /api route needs the key (writes need it regardless).
    app.include_router(images.router, prefix=API_PREFIX, dependencies=[ReadAccess])
    app.include_router(health.router)
    _serve_page(app, settings)
    app.state.tracer_provider = tracing.instrument(app)  # OTEL_* variables; off by default
    return app


@asynccontextmanager
async def open_storage(settings: Settings) -> AsyncIterator[Storage]:
    """The store STORAGE_URL names: an S3 bucket, or (empty) the local directory."""
    if not settings.storage_url:
        yield LocalStorage(settings.resolved_storage_dir)
        return
    from backend.s3storage import S3Storage

    async with S3Storage(settings) as storage:
        yield storage


def _serve_page(app: FastAPI, settings: Settings) -> None:
    """Serve the web page from STATIC_DIR at / when it exists; otherwise / points at the docs."""
    if (settings.static_dir / "index.html").is_file():
        app.mount("/", StaticFiles(directory=settings.static_dir, html=True), name="static")
        return

    @app.get("/", include_in_schema=False)
    async def root() -> dict[str, str]:
        return {"name": app.title, "docs": "/docs", "api": f"{API_PREFIX}/images/"}
