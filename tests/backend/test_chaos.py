"""Fault injection on a real backend: SIGKILL mid-upload and mid-delete, a database outage
through a TCP proxy, and a full disk (a small tmpfs). Run by `make chaos`.

Each asserts what issue 12 targets: no image lost (every 2xx-answered upload is there with its
file), no row without its file, no orphan or temporary file, 0 duplicates among uploads retried
with their Idempotency-Key, and every answer 2xx/4xx/503 JSON (never 500).
"""

from __future__ import annotations

import asyncio
import random
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field

import httpx
import pytest

from tests.backend.consistency import audit
from tests.backend.helpers import (
    API,
    BackendServer,
    circles_png,
    db_rows,
    start_backend,
    stop_backend,
    upload,
)
from tests.backend.tcp_proxy import TcpProxy

pytestmark = pytest.mark.chaos


@dataclass
class Ledger:
    """Everything the clients were told, across kills and restarts."""

    uploads: dict[str, bytes] = field(default_factory=dict)  # idempotency key -> bytes
    stored: dict[str, str] = field(default_factory=dict)  # key -> image id (answered 2xx)
    deleted: set[str] = field(default_factory=set)  # image ids answered 204
    alive: list[str] = field(default_factory=list)  # ids still to delete
    statuses: list[int] = field(default_factory=list)
    not_json: list[str] = field(default_factory=list)
    cut_off: int = 0  # requests whose connection died at the kill

    def record(self, r: httpx.Response) -> None:
        self.statuses.append(r.status_code)
        if r.status_code >= 400 and "application/json" not in r.headers.get("content-type", ""):
            self.not_json.append(f"{r.status_code} {r.text[:100]}")


def _key_upload(c: httpx.AsyncClient, key: str, data: bytes):
    return c.post(API, files={"file": ("k.png", data)}, headers={"Idempotency-Key": key})


async def _load(server: BackendServer, ledger: Ledger, keys: list[str], kill_after_s: float):
    """Uploads (8 at a time) and deletes side by side; SIGKILL the tree after `kill_after_s`."""
    limits = httpx.Limits(max_connections=16)
    async with httpx.AsyncClient(base_url=server.url, timeout=30, limits=limits) as c:

        async def one_upload(key: str) -> None:
            try:
                r = await _key_upload(c, key, ledger.uploads[key])
            except httpx.TransportError:
                ledger.cut_off += 1
                return
            ledger.record(r)
            if r.status_code in (200, 201, 202):
                ledger.stored[key] = r.json()["id"]

        async def one_delete(iid: str) -> None:
            try:
                r = await c.delete(f"{API}{iid}")
            except httpx.TransportError:
                ledger.cut_off += 1
                return
            ledger.record(r)
            if r.status_code == 204:
                ledger.deleted.add(iid)

        async def killer() -> None:
            await asyncio.sleep(kill_after_s)
            stop_backend(server, sig=signal.SIGKILL)  # the whole process group

        to_delete = [ledger.alive.pop() for _ in range(min(10, len(ledger.alive)))]
        await asyncio.gather(
            killer(),
            *(one_upload(k) for k in keys),
            *(one_delete(i) for i in to_delete),
        )


def _retry_all(server: BackendServer, ledger: Ledger, keys: list[str]) -> None:
    """The client's retry after the outage: every upload again, with its key."""
    with server.client() as c:
        for key in keys:
            r = c.post(
                API,
                files={"file": ("k.png", ledger.uploads[key])},
                headers={"Idempotency-Key": key},
            )
            ledger.record(r)
            assert r.status_code in (200, 201, 202), r.text
            if key in ledger.stored:
                assert r.status_code == 200 and r.json()["id"] == ledger.stored[key]
            ledger.stored[key] = r.json()["id"]


def _check(server: BackendServer, ledger: Ledger) -> dict[str, int]:
    found = audit(server)
    assert found.problems == {}, found.problems
    keyed = db_rows(
        server,
        "SELECT idempotency_key, count(*) FROM image WHERE idempotency_key IS NOT NULL "
        "GROUP BY idempotency_key",
    )
    duplicates = sum(n - 1 for _, n in keyed)
    lost = [k for k, iid in ledger.stored.items() if iid not in found.images]
    with server.client() as c:
        for key in random.sample(sorted(ledger.stored), min(10, len(ledger.stored))):
            assert c.get(f"{API}{ledger.stored[key]}/file").content == ledger.uploads[key]
        for iid in ledger.deleted:
            assert c.get(f"{API}{iid}").status_code == 404
    assert not lost and duplicates == 0
    assert not [s for s in ledger.statuses if s >= 500 and s != 503], ledger.statuses
    assert not ledger.not_json
    return {"lost": len(lost), "duplicates": duplicates, "orphans": len(found.orphan_files)}


@pytest.mark.parametrize("database", ["sqlite", "postgres", "postgres+s3"])
def test_sigkill_mid_uploads_and_deletes_loses_and_duplicates_nothing(database, tmp_path, request):
    pg = database.startswith("postgres")
    url = request.getfixturevalue("postgres_database_factory")() if pg else ""
    env = {"MODE": "dummy", "DATABASE_URL": url}
    if database.endswith("+s3"):  # files in a bucket of a real S3 API server (moto)
        env.update(request.getfixturevalue("moto_server").new_bucket())
    rng = random.Random(12)
    ledger = Ledger()
    server = start_backend(tmp_path / "data", env)
    with server.client() as c:
        for i in range(30):
            ledger.alive.append(
                upload(c, circles_png(seed=40_000 + i, size=(512, 384))).json()["id"]
            )
    seed = 41_000
    for round_ in range(4):
        keys = []
        for _ in range(24):
            key = f"chaos-{uuid.uuid4()}"
            ledger.uploads[key] = circles_png(seed=seed, size=(512, 384))
            keys.append(key)
            seed += 1
        asyncio.run(_load(server, ledger, keys, kill_after_s=rng.uniform(0.05, 0.6)))
        server = start_backend(tmp_path / "data", env)
        # the state a restart finds, before any retry, must already be consistent
        assert audit(server).problems == {}, f"round {round_}"
        _retry_all(server, ledger, keys)
    try:
        figures = _check(server, ledger)
    finally:
        stop_backend(server)
    healed = [line.split("database: ", 1)[1] for log in (tmp_path / "data").glob("backend-*.log")
              for line in log.read_text().splitlines() if "reconciled storage" in line]  # fmt: skip
    print(f"{database}: {figures}, cut off at the kills: {ledger.cut_off}, "
          f"answered: {len(ledger.statuses)}, reconciliations: {healed}")  # fmt: skip


@pytest.fixture
def pg_proxy() -> TcpProxy:
    proxy = TcpProxy("127.0.0.1", 5432)
    proxy.start()
    yield proxy
    proxy.close()


def _every_route(c: httpx.Client, iid: str, data: bytes) -> list[httpx.Response]:
    return [
        c.get(API),
        c.get(f"{API}{iid}"),
        c.get(f"{API}{iid}/objects"),
        c.get(f"{API}{iid}/file"),
        c.get(f"{API}{iid}/annotated"),
        c.get(f"{API}{iid}/thumbnail"),
        c.post(f"{API}{iid}/detect"),
        upload(c, data),
        c.post(API, files={"file": ("i.png", data)}, headers={"Idempotency-Key": "outage"}),
        c.delete(f"{API}{uuid.uuid4()}"),
    ]


def test_a_database_outage_is_503_with_retry_after_then_recovers(
    postgres_database_factory, pg_proxy, tmp_path
):
    database = postgres_database_factory().rsplit("/", 1)[1]
    env = {
        "MODE": "dummy",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{pg_proxy.port}/{database}",
        "READY_TIMEOUT_S": "1",
    }
    server = start_backend(tmp_path / "data", env)
    try:
        with server.client(timeout=30) as c:
            iid = upload(c, circles_png(seed=42_000)).json()["id"]
            pg_proxy.stop()
            outage: list[httpx.Response] = []
            deadline = time.monotonic() + 6
            seed = 42_001
            while time.monotonic() < deadline:
                outage += _every_route(c, iid, circles_png(seed=seed))
                seed += 1
                ready = c.get("/health/ready")
                assert ready.status_code == 503 and "Retry-After" in ready.headers
                checks = ready.json()["checks"]
                assert checks["database"]["ok"] is False and checks["storage"]["ok"] is True
                assert c.get("/health").status_code == 200
            wrong = [(r.request.url.path, r.status_code, r.text[:120]) for r in outage
                     if r.status_code != 503 or "Retry-After" not in r.headers
                     or "error" not in r.json()]  # fmt: skip
            assert not wrong, wrong
            pg_proxy.start()
            deadline = time.monotonic() + 20
            while c.get("/health/ready").status_code != 200:
                assert time.monotonic() < deadline, "no recovery after the outage"
                time.sleep(0.2)
            after = _every_route(c, iid, circles_png(seed=seed))
            assert [r.status_code for r in after] == [200, 200, 200, 200, 200, 200, 200, 201,
                                                      201, 404]  # fmt: skip
    finally:
        stop_backend(server)
    assert audit(server).problems == {}
    print(f"database outage: {len(outage)} requests, "
          f"{sum(r.status_code == 500 for r in outage)} answered 500")  # fmt: skip


@pytest.fixture
def tiny_tmpfs(tmp_path):
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    if not shutil.which("mount"):
        pytest.skip("no mount command: cannot make a small tmpfs")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_is_a_clear_error_and_leaves_nothing_half_written(tiny_tmpfs, tmp_path):
    env = {"MODE": "dummy", "DATABASE_URL": "", "STORAGE_DIR": str(tiny_tmpfs / "images")}
    server = start_backend(tmp_path / "data", env)
    try:
        stored: dict[str, bytes] = {}
        with server.client() as c:
            for i in range(60):
                data = _noise_png(i)
                r = upload(c, data)
                if r.status_code != 201:
                    break
                stored[r.json()["id"]] = data
            assert r.status_code == 507, r.text
            assert "storage full" in r.json()["error"] and "Retry-After" in r.headers
            assert stored, "not even one image fitted"
            assert audit(server).problems == {}
            assert not list((server.storage_dir / ".tmp").iterdir())
            assert c.get(API).json()["total"] == len(stored)
            assert c.get("/health/ready").json()["checks"]["storage"]["ok"] is True  # reads go on
            for iid, data in stored.items():  # the others are still served
                assert c.get(f"{API}{iid}/file").content == data
                assert c.get(f"{API}{iid}/thumbnail").status_code == 200  # served, even uncached
            first = next(iter(stored))
            assert c.delete(f"{API}{first}").status_code == 204
            assert upload(c, _noise_png(1000)).status_code == 201  # room again
    finally:
        stop_backend(server)
    assert audit(server).problems == {}


def _noise_png(seed: int) -> bytes:
    """About 100 KB that does not compress (the tmpfs fills in a few uploads)."""
    import io

    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, size=(180, 180, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()
