"""Several replicas on one PostgreSQL and one S3 bucket (a real moto server), behind a round-robin
proxy: migrations run once when they start together; concurrent uploads, deletes and re-detects
while one replica is SIGKILLed lose, duplicate and leave pending nothing (the survivor drains
the backlog)."""

from __future__ import annotations

import asyncio
import random
import signal
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from backend.db import MIGRATIONS_DIR
from tests.backend.consistency import audit
from tests.backend.fake_model import fake_model
from tests.backend.helpers import (
    API,
    circles_png,
    db_rows,
    start_backend,
    stop_backend,
    wait_until,
)
from tests.backend.tcp_proxy import RoundRobinProxy


def _start_together(data_dirs: list[Path], env: dict[str, str]) -> list:
    """Start one backend per folder at the same instant (threads released by a barrier)."""
    barrier = threading.Barrier(len(data_dirs))
    servers: list = [None] * len(data_dirs)
    errors: list[BaseException] = []

    def one(i: int) -> None:
        barrier.wait()
        try:
            servers[i] = start_backend(data_dirs[i], env)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(data_dirs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        for s in servers:
            if s is not None:
                stop_backend(s)
        raise errors[0]
    return servers


def test_replicas_starting_at_once_on_a_fresh_database_migrate_once(
    postgres_database_factory, moto_server, tmp_path
):
    env = {"MODE": "dummy", "DATABASE_URL": postgres_database_factory(),
           **moto_server.new_bucket()}  # fmt: skip
    servers = _start_together([tmp_path / f"r{i}" for i in range(3)], env)
    try:
        files = sorted(p.stem for p in (MIGRATIONS_DIR / "postgres" / "models").glob("*.py"))
        rows = db_rows(servers[0], "SELECT version FROM aerich ORDER BY id")
        assert sorted(Path(v).stem for (v,) in rows) == files  # each applied exactly once
        for s in servers:
            with s.client() as c:
                assert c.get("/health/ready").status_code == 200
    finally:
        for s in servers:
            stop_backend(s)


async def _traffic(url: str, images: dict[str, bytes], rng: random.Random) -> dict:
    """Uploads (with Idempotency-Key), deletes and re-detects at once, through the proxy."""
    told: dict = {"stored": {}, "deleted": set(), "statuses": [], "cut_off": 0}
    limits = httpx.Limits(max_keepalive_connections=0)  # a connection per request: round robin
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as c:

        async def send(method: str, path: str, **kw) -> httpx.Response | None:
            try:
                r = await c.request(method, path, **kw)
            except httpx.TransportError as exc:
                told["cut_off"] += 1
                told.setdefault("errors", []).append(f"{method} {path}: {exc!r}")
                return None
            told["statuses"].append(r.status_code)
            return r

        async def one(key: str) -> None:
            r = await send("POST", API, files={"file": ("r.png", images[key])},
                           headers={"Idempotency-Key": key})  # fmt: skip
            if r is None or r.status_code not in (200, 201, 202):
                return
            iid = told["stored"][key] = r.json()["id"]
            await asyncio.sleep(rng.uniform(0, 0.3))
            roll = rng.random()
            if roll < 0.25:
                r = await send("DELETE", f"{API}{iid}")
                if r is not None and r.status_code == 204:
                    told["deleted"].add(iid)
            elif roll < 0.5:
                await send("POST", f"{API}{iid}/detect")

        await asyncio.gather(*(one(k) for k in images))
    return told


@pytest.mark.chaos
def test_two_replicas_behind_a_proxy_survive_one_sigkill(
    postgres_database_factory, moto_server, tmp_path
):
    rng = random.Random(16)
    with fake_model(mode=503) as model:  # the model is down: uploads are kept, pending
        env = {
            "MODE": "real",
            "MODEL_SERVER_URL": model.url,
            "DATABASE_URL": postgres_database_factory(),
            "MODEL_RETRY_DEADLINE_S": "0",
            "PENDING_RETRY_INTERVAL_S": "2",
            "PENDING_RETRY_POLL_S": "0.1",
            "LOG_LEVEL": "info",
            **moto_server.new_bucket(),
        }
        replicas = _start_together([tmp_path / "a", tmp_path / "b"], env)
        proxy = RoundRobinProxy([("127.0.0.1", int(s.url.rsplit(":", 1)[1])) for s in replicas])
        proxy.start()
        url = f"http://127.0.0.1:{proxy.port}"
        try:
            images = {f"rep-{uuid.uuid4()}": circles_png(seed=24_000 + i) for i in range(60)}
            told = asyncio.run(_traffic(url, images, rng))
            # 503: a re-detect while the model is down (the image stays pending)
            assert told["cut_off"] == 0 and set(told["statuses"]) <= {200, 201, 202, 204, 503}
            assert proxy.connections[0] > 10 and proxy.connections[1] > 10, proxy.connections
            backlog = len(told["stored"]) - len(told["deleted"])
            model.mode = 200  # the model is back: both replicas drain the backlog ...
            time.sleep(0.3)
            stop_backend(replicas[0], sig=signal.SIGKILL)  # ... and one dies mid-drain
            killed_at = time.monotonic()
            claimed = db_rows(replicas[1], "SELECT count(*) FROM image WHERE status = 'pending' "
                              "AND error LIKE 'background retry running%'")[0][0]  # fmt: skip
            more = {f"rep-{uuid.uuid4()}": circles_png(seed=24_100 + i) for i in range(20)}
            after = asyncio.run(_traffic(url, more, rng))  # the survivor serves everything
            # a client retries every upload with its key: the same images, nothing new
            retried = asyncio.run(_traffic(url, {**images, **more}, random.Random(0)))
            assert after["cut_off"] == retried["cut_off"] == 0, after.get("errors", [])[:3]
            assert 500 not in after["statuses"] + retried["statuses"]
            stored = {**told["stored"], **after["stored"]}
            deleted = told["deleted"] | after["deleted"] | retried["deleted"]
            for key, iid in retried["stored"].items():
                assert stored[key] == iid or stored[key] in deleted, key
            survivor = replicas[1]
            deadline = killed_at + 60  # claims of the dead pass on at once, not after 120 s
            while left := db_rows(survivor, "SELECT count(*) FROM image WHERE status = 'pending'")[
                0
            ][0]:
                assert time.monotonic() < deadline, f"{left} still pending"
                time.sleep(0.2)
            drained_s = time.monotonic() - killed_at
        finally:
            proxy.close()
            for s in replicas:
                stop_backend(s)
        found = audit(survivor)
        assert found.problems == {}, found.problems
        alive = {iid for iid in stored.values() if iid not in deleted}
        lost = alive - set(found.images)
        keyed = db_rows(survivor, "SELECT idempotency_key, count(*) FROM image "
                        "WHERE idempotency_key IS NOT NULL GROUP BY idempotency_key")  # fmt: skip
        duplicates = sum(n - 1 for _, n in keyed)
        double = db_rows(survivor, "SELECT image_id, count(*) FROM detection GROUP BY image_id "
                         "HAVING count(*) > 1")  # fmt: skip
        states = dict(db_rows(survivor, "SELECT status, count(*) FROM image GROUP BY status"))
        assert not lost and duplicates == 0 and not double, (lost, duplicates, double)
        assert set(states) == {"done"}, states
    drained = [line for s in replicas for line in s.log_path.read_text().splitlines()
               if "background retry detected" in line]  # fmt: skip
    print(f"\nreplicas: backlog {backlog}, claims in flight at the kill {claimed}, "
          f"nothing pending {drained_s:.1f} s after the kill, "
          f"images kept {len(found.images)}, lost 0, "
          f"duplicates 0, double detections 0, states {states}, proxy connections "
          f"{proxy.connections}, infer calls {model.infers(200)}; drains: {drained}")  # fmt: skip


def test_claims_of_a_dead_replica_pass_on_at_once_and_of_a_live_one_never(
    postgres_database_factory, tmp_path
):
    """Two claims left in the database: one by a replica that holds its liveness lock (the test
    holds it on its own connection), one by a replica that does not. The backend takes over the
    dead one's claim at its next poll (not after the 120 s lease); the live one's stays until its
    lock goes."""
    import asyncpg

    from backend.liveness import LIVENESS_NS
    from backend.pending import CLAIM_PREFIX

    url = postgres_database_factory()
    with fake_model(mode=503) as model:
        env = {"MODE": "real", "MODEL_SERVER_URL": model.url, "DATABASE_URL": url,
               "MODEL_RETRY_DEADLINE_S": "0", "PENDING_RETRY_INTERVAL_S": "2",
               "PENDING_RETRY_POLL_S": "0.1"}  # fmt: skip
        server = start_backend(tmp_path, env)
        try:
            with server.client() as c:
                ids = [c.post(API, files={"file": ("c.png", circles_png(seed=24_500 + i))}).json()
                       ["id"] for i in range(2)]  # fmt: skip
            live_key, dead_key = 0x0AB0CDEF, 0x0BADBEEF

            async def hold_and_claim() -> asyncpg.Connection:
                conn = await asyncpg.connect(url)
                await conn.execute("SELECT pg_advisory_lock($1, $2)", LIVENESS_NS, live_key)
                for iid, key in zip(ids, (live_key, dead_key), strict=True):
                    marker = f"{CLAIM_PREFIX} (elsewhere:1:{key:08x}, since now); before: x"
                    await conn.execute("UPDATE image SET error = $1, updated_at = now() "
                                       "WHERE id = $2", marker, uuid.UUID(iid))  # fmt: skip
                return conn

            loop = asyncio.new_event_loop()
            conn = loop.run_until_complete(hold_and_claim())
            try:
                model.mode = 200
                with server.client() as c:

                    def done(iid: str) -> bool:
                        return c.get(f"{API}{iid}").json()["status"] == "done"

                    taken_s = wait_until(lambda: done(ids[1]), 20, "the dead replica's claim")
                    time.sleep(1)  # ten polls: the live replica's claim is left alone
                    assert c.get(f"{API}{ids[0]}").json()["status"] == "pending"
                    loop.run_until_complete(conn.close())  # the owner dies
                    wait_until(lambda: done(ids[0]), 10, "the claim of a replica that died")
            finally:
                if not conn.is_closed():
                    loop.run_until_complete(conn.close())
                loop.close()
        finally:
            stop_backend(server)
    print(f"\na dead replica's claim was taken over {taken_s:.1f} s after the model came back")
