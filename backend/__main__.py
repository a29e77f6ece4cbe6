"""`python -m backend`: apply migrations, then serve the API with uvicorn (backend/server.py).

Exit status: 0 after Ctrl-C or SIGTERM (a graceful shutdown), 2 for a bad setting, which is
printed as one line per problem naming the environment variable and what it expects.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from pydantic import ValidationError

from backend.config import Settings

#: Settings whose values are never echoed in an error.
_SECRET = {"api_key", "database_url"}


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
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        for line in setting_errors(exc):
            print(f"error: {line}", file=sys.stderr)
        raise SystemExit(2) from None
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from backend.db import apply_migrations

    applied = asyncio.run(apply_migrations(settings))
    logging.getLogger("backend").info("migrations applied: %s", applied or "none needed")
    if args.migrate_only:
        return

    from backend.app import create_app
    from backend.server import serve

    serve(create_app(settings.model_copy(update={"migrate_on_start": False})), settings)


def setting_errors(exc: ValidationError) -> list[str]:
    """One line per invalid setting: `VARIABLE='value': what it expects`."""
    lines = []
    for error in exc.errors(include_url=False):
        message = str(error["msg"]).removeprefix("Value error, ")
        if not error["loc"]:  # a check across settings: its message names the variables
            lines.append(message)
            continue
        name = str(error["loc"][0])
        value = error.get("input")
        shown = "" if name in _SECRET or isinstance(value, dict) else f"={value!r}"
        lines.append(f"{name.upper()}{shown}: {message}")
    return lines


if __name__ == "__main__":
    main()
