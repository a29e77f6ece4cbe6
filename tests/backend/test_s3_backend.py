"""The backend on an S3 bucket (a real moto S3 server on 127.0.0.1): every file route, caches in
the bucket, start-up reconciliation over the bucket listing, and an outage of the store (503 +
Retry-After, never 500, then recovery)."""

from __future__ import annotations

import hashlib
import time
import uuid

import httpx
import pytest

from tests.backend.consistency import audit
from tests.backend.helpers import API, circles_png, db_rows, start_backend, stop_backend, upload
from tests.backend.s3 import bucket_view, object_name
from tests.backend.tcp_proxy import TcpProxy


def _key(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_every_file_route_works_on_s3_and_caches_live_in_the_bucket(moto_server, tmp_path):
    env = {"MODE": "dummy", "DATABASE_URL": "", **moto_server.new_bucket()}
    s3 = moto_server.client()
    data = circles_png(seed=23_000, size=(640, 480))
    server = start_backend(tmp_path / "data", env)
    try:
        with server.client() as c:
            ready = c.get("/health/ready").json()
            assert ready["checks"]["storage"]["ok"] is True, ready
            first = upload(c, data, score_threshold=0).json()
            second = upload(c, data).json()  # the same bytes: one object
            bucket, name = object_name(env, data)
            assert s3.get_object(Bucket=bucket, Key=name)["Body"].read() == data
            r = c.get(f"{API}{first['id']}/file")
            assert r.content == data and r.headers["content-length"] == str(len(data))
            assert c.get(f"{API}{first['id']}/thumbnail").status_code == 200
            assert c.get(f"{API}{first['id']}/annotated").status_code == 200
            view = bucket_view(env)
            assert view.files == {_key(data)} and view.derived == {_key(data)}
            assert not (server.data_dir / "images").exists()  # nothing on local disk
            assert c.delete(f"{API}{first['id']}").status_code == 204
            assert bucket_view(env).files == {_key(data)}  # still used by the second image
            assert c.delete(f"{API}{second['id']}").status_code == 204
            view = bucket_view(env)
            assert view.files == set() and view.derived == set() and view.trash == []
            assert c.get(f"{API}{second['id']}/file").status_code == 404
    finally:
        stop_backend(server)
    assert audit(server).problems == {}


def test_restart_heals_what_a_crash_left_in_the_bucket(moto_server, tmp_path):
    """The states a SIGKILL leaves (backend/reconcile.py's table), built in the bucket."""
    env = {"MODE": "dummy", "DATABASE_URL": "", **moto_server.new_bucket()}
    s3 = moto_server.client()
    datas = {name: circles_png(seed=23_100 + i) for i, name in enumerate("abcde")}
    server = start_backend(tmp_path / "data", env)
    try:
        with server.client() as c:
            ids = {n: upload(c, d).json()["id"] for n, d in datas.items()}
            assert c.get(f"{API}{ids['c']}/thumbnail").status_code == 200
    finally:
        stop_backend(server)
    bucket, _ = object_name(env, b"")
    prefix = env["STORAGE_URL"].split("/", 3)[3]

    def to_trash(name: str, copy_only: bool = False) -> None:
        _, source = object_name(env, datas[name])
        token = f"{_key(datas[name])}.{uuid.uuid4().hex}"
        where = {"Bucket": bucket, "Key": source}
        s3.copy_object(Bucket=bucket, Key=f"{prefix}/trash/{token}", CopySource=where)
        if not copy_only:
            s3.delete_object(Bucket=bucket, Key=source)

    def forget(name: str) -> None:
        db_rows(server, f"DELETE FROM detection WHERE image_id = '{ids[name]}'")
        db_rows(server, f"DELETE FROM image WHERE id = '{ids[name]}'")
        db_rows(server, f"DELETE FROM blob WHERE sha256 = '{_key(datas[name])}'")

    to_trash("a")  # delete killed before its commit -> restored
    forget("b")
    to_trash("b")  # delete committed, killed before the purge -> purged
    forget("c")  # upload killed before its commit -> removed, with its cached thumbnail
    to_trash("d", copy_only=True)  # killed between the copy and the delete -> kept, trash purged
    s3.put_object(Bucket=bucket, Key=f"{prefix}/tmp/probe-{uuid.uuid4().hex}", Body=b"ok")
    s3.delete_object(Bucket=bucket, Key=object_name(env, datas["e"])[1])  # lost outside

    server = start_backend(tmp_path / "data", env)
    try:
        found = audit(server)
        assert found.problems == {"rows without file": [_key(datas["e"])]}
        assert set(found.images) == {ids["a"], ids["d"], ids["e"]}
        assert bucket_view(env).derived == set()
        with server.client() as c:
            for name in "ad":
                assert c.get(f"{API}{ids[name]}/file").content == datas[name]
            for gone in "bc":
                assert c.get(f"{API}{ids[gone]}").status_code == 404
            r = c.get(f"{API}{ids['e']}/file")
            assert r.status_code == 410 and "missing" in r.json()["error"]
            assert c.delete(f"{API}{ids['e']}").status_code == 204
    finally:
        stop_backend(server)
    assert audit(server).problems == {}


def _every_route(c: httpx.Client, iid: str, data: bytes) -> list[httpx.Response]:
    return [
        c.get(f"{API}{iid}/file"),
        c.get(f"{API}{iid}/annotated"),
        c.get(f"{API}{iid}/thumbnail"),
        c.post(f"{API}{iid}/detect"),
        upload(c, data),
        c.post(API, files={"file": ("i.png", data)}, headers={"Idempotency-Key": "s3-outage"}),
        c.delete(f"{API}{iid}"),
    ]


@pytest.mark.chaos
def test_an_s3_outage_is_503_with_retry_after_then_recovers(moto_server, tmp_path):
    port = int(moto_server.url.rsplit(":", 1)[1])
    proxy = TcpProxy("127.0.0.1", port)
    proxy.start()
    endpoint = f"http://127.0.0.1:{proxy.port}"
    env = {"MODE": "dummy", "DATABASE_URL": "", "READY_TIMEOUT_S": "3",
           **moto_server.new_bucket(endpoint=endpoint)}  # fmt: skip
    server = start_backend(tmp_path / "data", env)
    try:
        with server.client(timeout=30) as c:
            iid = upload(c, circles_png(seed=23_200)).json()["id"]
            proxy.stop()
            outage: list[httpx.Response] = []
            seed = 23_201
            started = time.monotonic()
            while time.monotonic() - started < 6:
                outage += _every_route(c, iid, circles_png(seed=seed))
                seed += 1
                ready = c.get("/health/ready")
                assert ready.status_code == 503 and "Retry-After" in ready.headers
                checks = ready.json()["checks"]
                assert checks["storage"]["ok"] is False and checks["database"]["ok"] is True
                assert c.get(f"{API}{iid}").status_code == 200  # rows are still served
            wrong = [(r.request.method, r.request.url.path, r.status_code, r.text[:120])
                     for r in outage if r.status_code != 503 or "Retry-After" not in r.headers
                     or "storage unavailable" not in r.json()["error"]]  # fmt: skip
            assert not wrong, wrong
            outage_s = time.monotonic() - started
            proxy.start()
            back_at = time.monotonic()
            deadline = back_at + 20
            while c.get("/health/ready").status_code != 200:
                assert time.monotonic() < deadline, "no recovery after the outage"
                time.sleep(0.2)
            ready_after_s = time.monotonic() - back_at
            after = _every_route(c, iid, circles_png(seed=seed))
            assert [r.status_code for r in after] == [200, 200, 200, 200, 201, 201, 204]
    finally:
        stop_backend(server)
        proxy.close()
    server.env["S3_ENDPOINT_URL"] = moto_server.url  # the audit looks past the proxy
    assert audit(server).problems == {}
    slowest = max(r.elapsed.total_seconds() for r in outage)
    print(f"S3 outage: {len(outage)} requests in {outage_s:.1f} s, all 503 + Retry-After "
          f"(slowest {slowest:.2f} s), {sum(r.status_code == 500 for r in outage)} answered 500; "
          f"ready {ready_after_s:.1f} s after the store came back")  # fmt: skip
