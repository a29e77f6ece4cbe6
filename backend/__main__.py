"""`python -m backend`: apply migrations, then serve the API with uvicorn."""

from __future__ import annotations

import argparse
import asyncio
import logging

import uvicorn

from backend.config import Settings


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m backend",
        description="Serve the circle-detector backend (FastAPI). Every setting is also an "
        "environment variable (DATABASE_URL, MODE, MODEL_SERVER_URL, ...; see the README).",
    )
    parser.add_argument("--host", help="listen address (env HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="listen port (env PORT, default 8000)")
    parser.add_argument(
        "--migrate-only", action="store_true", help="apply database migrations and exit"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    settings = Settings(**overrides)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from backend.db import apply_migrations

    applied = asyncio.run(apply_migrations(settings))
    logging.getLogger("backend").info("migrations applied: %s", applied or "none needed")
    if args.migrate_only:
        return

    from backend.app import create_app

    app = create_app(settings.model_copy(update={"migrate_on_start": False}))
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
