"""Faults around the image service, against real servers: the model server stopping and coming
back, the backend restarting, 50 concurrent uploads, and storage or database failures in the
middle of an upload (file and row are written together or not at all)."""

from __future__ import annotations

import asyncio
import hashlib
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from backend.inference.v2 import parse_circles
from tests.backend.helpers import (
    API,
    circles_png,
    db_rows,
    running_backend,
    snapshot,
    start_backend,
    start_bento_at,
    stop_backend,
    upload,
)
from tests.backend.inference.test_v2 import direct_v2
from tests.servers import free_port, stop_bento

LOOSE = {"score_threshold": 0.0, "max_detections": 20}


def _objects_match(objects: list[dict], http_url: str, data: bytes) -> bool:
    expected = parse_circles(direct_v2(http_url, data, **LOOSE))
    return [round(o["radius"], 3) for o in objects] == [round(c.radius, 3) for c in expected]


def test_model_server_down_then_back(bentoml_home, tmp_path):
    """Down at first, scaling from zero, stopped mid-way, back again: nothing is lost."""
    http_port, grpc_port = free_port(), free_port()
    env = {"MODE": "real", "MODEL_SERVER_URL": f"127.0.0.1:{http_port}", "DATABASE_URL": ""}
    patient = {**env, "MODEL_RETRY_DEADLINE_S": "120", "MODEL_RETRY_BACKOFF_MAX_S": "0.5"}
    background = {**env, "PENDING_RETRY_INTERVAL_S": "0.3"}
    images = [circles_png(seed=700 + i, size=(200, 160)) for i in range(5)]
    with (
        running_backend(tmp_path / "short", env) as short,
        running_backend(tmp_path / "patient", patient) as slow,
        running_backend(tmp_path / "background", background) as auto,
        short.client() as c,
        auto.client() as ac,
    ):
        # 1. Nothing listens yet: the upload is kept and marked pending.
        first = upload(c, images[0], **LOOSE)
        assert first.status_code == 202 and first.json()["status"] == "pending"
        kept = upload(ac, images[4], score_threshold=0.0, max_detections=3)
        assert kept.status_code == 202 and kept.json()["max_detections"] == 3

        # 2. Scale from zero: an upload waiting in its retries finishes once the server is up.
        def patient_upload():
            with slow.client(timeout=150) as pc:
                return upload(pc, images[1], **LOOSE)

        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(patient_upload)
            bento = start_bento_at(bentoml_home, http_port, grpc_port)
            try:
                late = waiting.result(timeout=150)
            except BaseException:
                stop_bento(bento)
                raise
        try:
            assert late.status_code == 201, late.text
            assert late.json()["attempts"] > 1
            assert _objects_match(late.json()["objects"], bento.http_url, images[1])

            # 3. Back: the background retry finishes its pending image by itself ...
            deadline = time.monotonic() + 30
            while (done := ac.get(f"{API}{kept.json()['id']}").json())["status"] != "done":
                assert time.monotonic() < deadline, done
                time.sleep(0.1)
            assert done["max_detections"] == 3 and len(done["objects"]) <= 3
            # ... and POST .../detect finishes the pending image on demand.
            r = c.post(f"{API}{first.json()['id']}/detect", params=LOOSE)
            assert r.status_code == 200 and r.json()["status"] == "done"
            assert _objects_match(r.json()["objects"], bento.http_url, images[0])

            # 4. Stopped mid-way: detected before, kept and pending after.
            third = upload(c, images[2], **LOOSE)
            assert third.status_code == 201
        finally:
            stop_bento(bento)
        fourth = upload(c, images[3], **LOOSE)
        assert fourth.status_code == 202 and fourth.json()["status"] == "pending"
        fourth_id = fourth.json()["id"]
        assert c.post(f"{API}{fourth_id}/detect").status_code == 503
        assert c.get("/health/ready").status_code == 503

        # 5. Back on the same address: the pending image is finished.
        bento = start_bento_at(bentoml_home, http_port, grpc_port)
        try:
            r = c.post(f"{API}{fourth_id}/detect", params=LOOSE)
            assert r.status_code == 200 and r.json()["status"] == "done"
            assert _objects_match(r.json()["objects"], bento.http_url, images[3])
            assert c.get("/health/ready").status_code == 200
        finally:
            stop_bento(bento)
        page = c.get(API, params={"limit": 200}).json()
        assert page["total"] == 3
        assert {i["status"] for i in page["items"]} == {"done"}
        for data in (images[0], images[2], images[3]):
            assert short.file_path(data).read_bytes() == data


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_backend_restart_keeps_everything(database, tmp_path, request):
    """Killed with SIGKILL (no clean shutdown) and started again on the same data."""
    url = request.getfixturevalue("postgres_database_factory")() if database == "postgres" else ""
    env = {"MODE": "dummy", "DATABASE_URL": url}
    server = start_backend(tmp_path / "data", env)
    try:
        with server.client() as c:
            created = [upload(c, circles_png(seed=800 + i), **LOOSE).json() for i in range(3)]
            assert c.delete(f"{API}{created[2]['id']}").status_code == 204
            before = {i["id"]: c.get(f"{API}{i['id']}").json() for i in created[:2]}
            files = {i["id"]: c.get(f"{API}{i['id']}/file").content for i in created[:2]}
    finally:
        stop_backend(server, sig=signal.SIGKILL)
    server = start_backend(tmp_path / "data", env)
    try:
        with server.client() as c:
            for iid, body in before.items():
                assert c.get(f"{API}{iid}").json() == body
                assert c.get(f"{API}{iid}/file").content == files[iid]
            assert c.get(f"{API}{created[2]['id']}").status_code == 404
            assert c.get(API).json()["total"] == 2
            assert upload(c, circles_png(seed=803)).status_code == 201
    finally:
        stop_backend(server)


async def test_50_concurrent_uploads_lose_and_duplicate_nothing(backend):
    """45 distinct images and 5 copies of one more, all at once."""
    datas = [circles_png(seed=900 + i) for i in range(45)] + [circles_png(seed=899)] * 5
    total_before, files_before = snapshot(backend)
    async with backend.async_client() as c:
        responses = await asyncio.gather(
            *(c.post(API, files={"file": (f"{i}.png", d)}) for i, d in enumerate(datas))
        )
        assert [r.status_code for r in responses] == [201] * 50, [r.text for r in responses]
        bodies = [r.json() for r in responses]
        ids = [b["id"] for b in bodies]
        assert len(set(ids)) == 50
        for body, data in zip(bodies, datas, strict=True):
            assert body["sha256"] == hashlib.sha256(data).hexdigest()
        listed: list[str] = []
        offset = 0
        while True:
            page = (await c.get(API, params={"limit": 200, "offset": offset})).json()
            listed += [i["id"] for i in page["items"]]
            offset += 200
            if offset >= page["total"]:
                break
        for iid in ids:
            assert listed.count(iid) == 1
        details = await asyncio.gather(*(c.get(f"{API}{iid}") for iid in ids))
        for d in details:
            body = d.json()
            assert len(body["objects"]) == body["num_detections"]
            assert len({o["id"] for o in body["objects"]}) == len(body["objects"])
    total_after, files_after = snapshot(backend)
    assert total_after == total_before + 50
    assert files_after == files_before + 46
    for data in set(datas):
        assert backend.file_path(data).read_bytes() == data


def _unused_prefix_image(backend, seed: int) -> bytes:
    """An image whose storage folder (first two hex digits) does not exist yet."""
    while True:
        data = circles_png(seed=seed)
        if not (backend.storage_dir / hashlib.sha256(data).hexdigest()[:2]).exists():
            return data
        seed += 1


def test_storage_failure_leaves_no_row(backend):
    data = _unused_prefix_image(backend, 10_000)
    key = hashlib.sha256(data).hexdigest()
    blocker = backend.storage_dir / key[:2]
    blocker.write_bytes(b"a file where the folder must go")
    try:
        before = snapshot(backend)
        with backend.client() as c:
            r = upload(c, data)
        assert r.status_code == 503 and "storage unavailable" in r.json()["error"]
        assert snapshot(backend) == before
        assert db_rows(backend, f"SELECT count(*) FROM blob WHERE sha256 = '{key}'") == [(0,)]
    finally:
        blocker.unlink()
    with backend.client() as c:
        assert upload(c, data).status_code == 201


TRIGGERS = {
    "sqlite": (
        "CREATE TRIGGER fail_me BEFORE INSERT ON image WHEN NEW.filename = 'fail-me.png' "
        "BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
        "DROP TRIGGER fail_me",
    ),
    "postgres": (
        "CREATE FUNCTION fail_me() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'injected failure'; END $$; "
        "CREATE TRIGGER fail_me BEFORE INSERT ON image FOR EACH ROW "
        "WHEN (NEW.filename = 'fail-me.png') EXECUTE FUNCTION fail_me()",
        "DROP TRIGGER fail_me ON image; DROP FUNCTION fail_me()",
    ),
}


def test_database_failure_after_the_file_was_written_leaves_no_file(backend):
    """A trigger makes the image INSERT fail after the file is in storage: both are undone."""
    create, drop = TRIGGERS[backend.env["KIND"]]
    for statement in create.split("; CREATE TRIGGER"):
        sql = statement if statement.startswith("CREATE") else "CREATE TRIGGER" + statement
        db_rows(backend, sql)
    data = circles_png(seed=11_000)
    key = hashlib.sha256(data).hexdigest()
    try:
        before = snapshot(backend)
        with backend.client() as c:
            r = upload(c, data, name="fail-me.png")
        assert r.status_code == 503, r.text
        assert "database" in r.json()["error"] and "injected" not in r.json()["error"]
        assert snapshot(backend) == before
        assert not backend.file_path(data).exists()
        assert db_rows(backend, f"SELECT count(*) FROM blob WHERE sha256 = '{key}'") == [(0,)]
    finally:
        for statement in drop.split("; "):
            db_rows(backend, statement)
    with backend.client() as c:
        assert upload(c, data, name="fail-me.png").status_code == 201


def test_an_image_the_model_refuses_is_kept_and_marked_failed(bentoml_home, tmp_path):
    """The Bento allows fewer pixels than the backend: it answers 400, which is not retried."""
    from tests.servers import running_bento

    with running_bento(bentoml_home, env={"CIRCLE_DETECTOR_MAX_PIXELS": "10000"}) as bento:
        env = {"MODE": "real", "MODEL_SERVER_URL": bento.http_url, "DATABASE_URL": ""}
        with running_backend(tmp_path / "data", env) as server, server.client() as c:
            small = upload(c, circles_png(seed=1300, size=(96, 96)), **LOOSE)
            assert small.status_code == 201 and small.json()["status"] == "done"
            data = circles_png(seed=1301, size=(200, 160))
            r = upload(c, data, **LOOSE)
            assert r.status_code == 202, r.text
            body = r.json()
            assert body["status"] == "failed" and body["attempts"] == 1
            assert "400" in body["error"] and body["objects"] == []
            again = c.post(f"{API}{body['id']}/detect")
            assert again.status_code == 422 and again.json()["image_id"] == body["id"]
            assert "refused" in again.json()["error"]
            assert c.get(f"{API}{body['id']}/file").content == data


def test_dropped_database_connections_are_replaced(postgres_database_factory, tmp_path):
    """PostgreSQL kills every backend connection (failover, restart): the next requests work."""
    from tests.backend.conftest import _pg_admin

    url = postgres_database_factory()
    database = url.rsplit("/", 1)[1]
    env = {"MODE": "dummy", "DATABASE_URL": url}
    with running_backend(tmp_path / "data", env) as server, server.client() as c:
        first = upload(c, circles_png(seed=1400)).json()["id"]
        _pg_admin(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{database}' AND pid <> pg_backend_pid()"
        )
        assert c.get("/health/ready").status_code == 200
        assert upload(c, circles_png(seed=1401)).status_code == 201
        assert c.get(f"{API}{first}").status_code == 200
        assert c.get(API).json()["total"] == 2
