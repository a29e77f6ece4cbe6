"""Backend fixtures: a fresh PostgreSQL database per session and shared backend servers.

`backend` is parametrised over SQLite and PostgreSQL, so every API test runs against both.
Servers are real `python -m backend` processes on free ports of 127.0.0.1, shared per session.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from tests.backend.helpers import API_KEY, BackendServer, start_backend, stop_backend
from tests.servers import stop_process_group

#: Admin connection to the PostgreSQL server (trust auth on this machine and in CI).
PG_ADMIN_URL = os.environ.get("BACKEND_TEST_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def _pg_admin(sql: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL, timeout=10)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


def _ensure_postgres_running() -> None:
    """Start the local cluster when it is down (pg_ctlcluster), then wait until it answers."""
    try:
        _pg_admin("SELECT 1")
        return
    except (OSError, asyncpg.PostgresError):
        pass
    versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
    if not versions or not shutil.which("pg_ctlcluster"):
        pytest.fail("PostgreSQL is not running and pg_ctlcluster is not available to start it")
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"],
        check=False,
        capture_output=True,
        timeout=60,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            _pg_admin("SELECT 1")
            return
        except (OSError, asyncpg.PostgresError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@pytest.fixture(scope="session")
def postgres_database_factory() -> Iterator:
    """Creates uniquely named databases on the real PostgreSQL; drops them at session end."""
    _ensure_postgres_running()
    created: list[str] = []
    base = PG_ADMIN_URL.rsplit("/", 1)[0]

    def make() -> str:
        name = f"backend_test_{uuid.uuid4().hex[:12]}"
        _pg_admin(f'CREATE DATABASE "{name}"')
        created.append(name)
        return f"{base}/{name}"

    yield make
    for name in created:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_url(postgres_database_factory) -> str:
    """One fresh database for the session's shared PostgreSQL backend."""
    return postgres_database_factory()


def _database_env(kind: str, request: pytest.FixtureRequest) -> dict[str, str]:
    if kind == "postgres":
        return {"DATABASE_URL": request.getfixturevalue("postgres_url")}
    return {"DATABASE_URL": ""}


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[BackendServer]:
    """The backend in MODE=dummy with API_KEY set and a 1 MiB upload limit, on each database."""
    kind = request.param
    data_dir = tmp_path_factory.mktemp(f"backend-{kind}")
    env = {
        **_database_env(kind, request),
        "STATIC_DIR": str(data_dir / "no-page"),  # the web page, once added, is tested apart
        "MODE": "dummy",
        "API_KEY": API_KEY,
        "MAX_UPLOAD_BYTES": str(1024 * 1024),
        "MAX_IMAGE_PIXELS": str(2048 * 2048),
    }
    server = start_backend(data_dir, env)
    server.env["KIND"] = kind
    yield server
    stop_backend(server)


@pytest.fixture(scope="session")
def model_down_backend(tmp_path_factory) -> Iterator[BackendServer]:
    """MODE=real pointing at a port where nothing listens (SQLite, no API key)."""
    from tests.servers import free_port

    env = {"MODE": "real", "MODEL_SERVER_URL": f"127.0.0.1:{free_port()}", "DATABASE_URL": ""}
    server = start_backend(tmp_path_factory.mktemp("backend-model-down"), env)
    yield server
    stop_backend(server)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory):
    """A real S3 API server (moto's standalone server) on 127.0.0.1 for the session."""
    from tests.backend.s3 import start_moto

    server = start_moto(tmp_path_factory.mktemp("moto"))
    yield server
    stop_process_group(server.process, signal.SIGTERM, 10)
