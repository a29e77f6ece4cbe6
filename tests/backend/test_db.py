"""Migrations (aerich, committed per dialect) on a fresh SQLite file and a fresh PostgreSQL
database: applied once, idempotent, in step with the models, constraints enforced, and safe
when several replicas start together.

Each database is driven from its own interpreter (`python -m backend --migrate-only` or a small
script): Tortoise keeps per-model state at class level, so one process serves one database.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import pytest

from backend.db import APP, MIGRATIONS_DIR
from tests.servers import REPO_ROOT

IN_STEP_CHECK = """
import asyncio, shutil, sys
from aerich import Command
from tortoise import Tortoise
from tortoise.context import TortoiseContext
from backend.config import Settings
from backend.db import APP, MIGRATIONS_DIR, apply_migrations, tortoise_config

async def main():
    settings = Settings()
    await apply_migrations(settings)
    shutil.copytree(MIGRATIONS_DIR / settings.dialect, sys.argv[1])
    with TortoiseContext():
        command = Command(tortoise_config(settings), app=APP, location=sys.argv[1])
        await command.init()
        print("NEW MIGRATION:", repr(await command.migrate("check", no_input=True)))
        await Tortoise.close_connections()

asyncio.run(main())
"""


def run(args: list[str], database_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=REPO_ROOT,
        env={**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "info"},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path) -> str:
    if request.param == "postgres":
        return request.getfixturevalue("postgres_database_factory")()
    return f"sqlite://{tmp_path / 'db.sqlite3'}"


def query(database_url: str, sql: str) -> list[tuple]:
    if database_url.startswith("sqlite://"):
        with sqlite3.connect(database_url.removeprefix("sqlite://")) as conn:
            return conn.execute(sql).fetchall()

    async def go() -> list[tuple]:
        conn = await asyncpg.connect(database_url)
        try:
            return [tuple(r) for r in await conn.fetch(sql)]
        finally:
            await conn.close()

    return asyncio.run(go())


def test_migrations_apply_once(database_url):
    dialect = "sqlite" if database_url.startswith("sqlite") else "postgres"
    files = sorted(p.name for p in (MIGRATIONS_DIR / dialect / APP).glob("[0-9]*_*.py"))
    first = run(["-m", "backend", "--migrate-only"], database_url)
    assert first.returncode == 0, first.stderr
    assert f"migrations applied: {files}" in first.stderr
    second = run(["-m", "backend", "--migrate-only"], database_url)
    assert second.returncode == 0 and "none needed" in second.stderr
    assert query(database_url, "SELECT version FROM aerich") == [(f,) for f in files]
    tables = (
        "SELECT name FROM sqlite_master WHERE type = 'table'"
        if dialect == "sqlite"
        else "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
    )
    assert {"blob", "image", "detection", "aerich"} <= {t for (t,) in query(database_url, tables)}


def test_models_and_migrations_are_in_step(database_url, tmp_path: Path):
    """aerich finds nothing to migrate: the committed files describe the current models."""
    r = run(["-c", IN_STEP_CHECK, str(tmp_path / "copy")], database_url)
    assert r.returncode == 0, r.stderr
    assert "NEW MIGRATION: ''" in r.stdout or "NEW MIGRATION: None" in r.stdout, r.stdout


BLOB_OK = "INSERT INTO blob VALUES ('{k}', 5, 'image/png', CURRENT_TIMESTAMP)"
IMAGE = (
    "INSERT INTO image (id, filename, content_type, format, width, height, size_bytes, status, "
    "attempts, num_detections, created_at, updated_at, blob_id) VALUES ('{i}', '', 'image/png', "
    "'PNG', {w}, 10, 5, '{status}', 0, 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, '{k}')"
)
DETECTION = (
    "INSERT INTO detection (rank, x1, y1, x2, y2, cx, cy, radius, score, image_id) "
    "VALUES ({rank}, 0, 0, {x2}, 4, 2, 2, 2, {score}, '{i}')"
)
BAD_ROWS = {
    "short sha256": "INSERT INTO blob VALUES ('abc', 5, 'image/png', CURRENT_TIMESTAMP)",
    "empty blob": "INSERT INTO blob VALUES ('{z}', 0, 'image/png', CURRENT_TIMESTAMP)",
    "unknown status": IMAGE.replace("'{i}'", "'{j}'").format(
        j="{j}", w=10, status="weird", k="{k}"
    ),
    "zero width": IMAGE.replace("'{i}'", "'{j}'").format(j="{j}", w=0, status="done", k="{k}"),
    "score above 1": DETECTION.format(rank=1, x2=4, score=1.5, i="{i}"),
    "negative rank": DETECTION.format(rank=-1, x2=4, score=0.5, i="{i}"),
    "inverted box": DETECTION.format(rank=2, x2=-4, score=0.5, i="{i}"),
    "duplicate rank": DETECTION.format(rank=0, x2=4, score=0.5, i="{i}"),
}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def migrated_url(request, tmp_path_factory) -> str:
    """One migrated database per dialect for the constraint cases."""
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_database_factory")()
    else:
        url = f"sqlite://{tmp_path_factory.mktemp('constraints') / 'db.sqlite3'}"
    assert run(["-m", "backend", "--migrate-only"], url).returncode == 0
    return url


@pytest.mark.parametrize("case", list(BAD_ROWS))
def test_constraints_are_enforced(migrated_url, case):
    key, iid = uuid.uuid4().hex * 2, str(uuid.uuid4())
    query(migrated_url, BLOB_OK.format(k=key))
    query(migrated_url, IMAGE.format(i=iid, w=10, status="done", k=key))
    query(migrated_url, DETECTION.format(rank=0, x2=4, score=0.5, i=iid))
    sql = BAD_ROWS[case].format(k=key, i=iid, j=uuid.uuid4(), z=uuid.uuid4().hex * 2)
    with pytest.raises((sqlite3.IntegrityError, asyncpg.PostgresError)):
        query(migrated_url, sql)


def test_foreign_keys_are_enforced_on_postgres(postgres_database_factory):
    url = postgres_database_factory()
    assert run(["-m", "backend", "--migrate-only"], url).returncode == 0
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        query(url, IMAGE.format(i=uuid.uuid4(), w=10, status="done", k="c" * 64))
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        query(url, DETECTION.format(rank=0, x2=4, score=0.5, i=uuid.uuid4()))


def test_replicas_starting_together_migrate_once(postgres_database_factory):
    """Three `python -m backend --migrate-only` at once on one PostgreSQL database."""
    url = postgres_database_factory()
    env = {**os.environ, "DATABASE_URL": url}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "backend", "--migrate-only"],
            cwd=REPO_ROOT,
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    files = list((MIGRATIONS_DIR / "postgres" / APP).glob("[0-9]*_*.py"))
    assert query(url, "SELECT count(*) FROM aerich") == [(len(files),)]
