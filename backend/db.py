"""Database wiring: the Tortoise config and schema migrations with aerich.

Migration files are committed per dialect (`migrations/sqlite/`, `migrations/postgres/`) because
aerich writes plain SQL. `python -m backend migrate` (or start-up) applies them; PostgreSQL takes
an advisory lock so that several replicas starting together migrate once.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aerich import Command
from tortoise import Tortoise
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.context import TortoiseContext

from backend.config import Settings

log = logging.getLogger(__name__)

APP = "models"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
#: Arbitrary constant naming the PostgreSQL advisory lock held while migrating.
_PG_MIGRATION_LOCK = 0x0C1_2C1E


def tortoise_config(settings: Settings) -> dict[str, Any]:
    """Tortoise config for the backend's models plus aerich's bookkeeping table."""
    return {
        "connections": {"default": settings.resolved_database_url},
        "apps": {
            APP: {"models": ["backend.models", "aerich.models"], "default_connection": "default"}
        },
        "use_tz": True,
        "timezone": "UTC",
    }


def migrations_location(settings: Settings) -> Path:
    """Folder of the migration files for the configured database."""
    return MIGRATIONS_DIR / settings.dialect


def prepare_filesystem(settings: Settings) -> None:
    """Create the data and storage directories (and the SQLite file's folder)."""
    if not settings.storage_url:
        settings.resolved_storage_dir.mkdir(parents=True, exist_ok=True)
    if settings.dialect == "sqlite":
        path = settings.resolved_database_url.removeprefix("sqlite://").split("?", 1)[0]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)


async def apply_migrations(settings: Settings) -> list[str]:
    """Apply every migration not yet applied; returns the names applied.

    Runs in a fresh Tortoise context so that it neither sees nor leaves ORM state behind.
    """
    prepare_filesystem(settings)
    async with _migration_lock(settings):
        with TortoiseContext():
            command = Command(
                tortoise_config=tortoise_config(settings),
                app=APP,
                location=str(migrations_location(settings)),
            )
            try:
                await command.init()
                applied = await command.upgrade(run_in_transaction=True)
            finally:
                await Tortoise.close_connections()
    for name in applied:
        log.info("applied migration %s", name)
    return applied


async def own_connection(settings: Settings, timeout_s: float = 30) -> Any:
    """A PostgreSQL connection outside Tortoise's pool (for session advisory locks, which
    asyncpg's pool would drop on release)."""
    import asyncpg

    creds = expand_db_url(settings.resolved_database_url)["credentials"]
    return await asyncpg.connect(
        host=creds.get("host"),
        port=int(creds.get("port") or 5432),
        user=creds.get("user"),
        password=creds.get("password"),
        database=creds.get("database"),
        timeout=timeout_s,
    )


@asynccontextmanager
async def _migration_lock(settings: Settings) -> AsyncIterator[None]:
    """On PostgreSQL, hold an advisory lock on a connection of its own while migrating.

    (A pooled connection would not do: asyncpg's pool drops advisory locks on release.)
    """
    if settings.dialect != "postgres":
        yield
        return
    conn = await own_connection(settings)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _PG_MIGRATION_LOCK)
        yield
    finally:
        await conn.close()  # ends the session, which releases the lock


async def make_migrations(settings: Settings, name: str) -> str | None:
    """Write a new migration for `settings`' dialect from the models' changes (developer tool)."""
    location = migrations_location(settings)
    with TortoiseContext():
        command = Command(
            tortoise_config=tortoise_config(settings), app=APP, location=str(location)
        )
        try:
            if not (location / APP).exists():
                await command.init_migrations(safe=True)
                return "initial"
            await command.init()
            return await command.migrate(name, no_input=True)
        finally:
            await Tortoise.close_connections()


def main(argv: list[str] | None = None) -> None:
    """`python -m backend.db makemigrations NAME`: regenerate migrations for one dialect."""
    parser = argparse.ArgumentParser(
        prog="python -m backend.db",
        description="Developer tool: write aerich migrations for the database in DATABASE_URL "
        "(run once with a sqlite:// URL and once with a postgres:// URL).",
    )
    parser.add_argument("action", choices=["makemigrations", "migrate"])
    parser.add_argument("name", nargs="?", default="update")
    args = parser.parse_args(argv)
    settings = Settings()
    if args.action == "makemigrations":
        print(asyncio.run(make_migrations(settings, args.name)))
    else:
        print(asyncio.run(apply_migrations(settings)))


if __name__ == "__main__":
    main()
