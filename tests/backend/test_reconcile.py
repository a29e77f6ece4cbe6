"""Start-up reconciliation on a real backend restarted over the debris a crash leaves.

Each state is the one a SIGKILL at some instruction of an upload or a delete leaves behind
(see backend/reconcile.py); the chaos tests reach them by killing, these build them directly.
"""

from __future__ import annotations

import hashlib
import uuid

import pytest

from tests.backend.consistency import audit
from tests.backend.helpers import API, circles_png, db_rows, start_backend, stop_backend, upload


def _key(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _forget_rows(server, image_id: str, key: str) -> None:
    """What a committed delete (or a never-committed upload) leaves in the database."""
    db_rows(server, f"DELETE FROM detection WHERE image_id = '{image_id}'")
    db_rows(server, f"DELETE FROM image WHERE id = '{image_id}'")
    db_rows(server, f"DELETE FROM blob WHERE sha256 = '{key}'")


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_restart_heals_what_a_crash_left(database, tmp_path, request):
    url = request.getfixturevalue("postgres_database_factory")() if database == "postgres" else ""
    env = {"MODE": "dummy", "DATABASE_URL": url}
    datas = {name: circles_png(seed=21_000 + i) for i, name in enumerate("abcde")}
    server = start_backend(tmp_path / "data", env)
    try:
        with server.client() as c:
            ids = {n: upload(c, d, score_threshold=0).json()["id"] for n, d in datas.items()}
            assert c.get(f"{API}{ids['e']}/thumbnail").status_code == 200
    finally:
        stop_backend(server)
    root = server.storage_dir
    trash = root / ".trash"
    trash.mkdir(exist_ok=True)
    # a: delete killed after the file was moved aside, before the commit -> restored
    server.file_path(datas["a"]).rename(trash / f"{_key(datas['a'])}.{uuid.uuid4().hex}")
    # b: delete committed, killed before the purge -> purged
    _forget_rows(server, ids["b"], _key(datas["b"]))
    server.file_path(datas["b"]).rename(trash / f"{_key(datas['b'])}.{uuid.uuid4().hex}")
    # c: upload killed after the file was written, before the commit -> removed
    _forget_rows(server, ids["c"], _key(datas["c"]))
    # a write killed half-way, and a cache of a file that is gone
    (root / ".tmp").mkdir(exist_ok=True)
    (root / ".tmp" / f"{uuid.uuid4().hex}.part").write_bytes(b"half a file")
    (root / ".derived" / _key(datas["c"])).mkdir(parents=True)
    (root / ".derived" / _key(datas["c"]) / "thumb-256.jpg").write_bytes(b"stale")
    # e: the file lost outside the backend (its row stays) -> failed, 410
    server.file_path(datas["e"]).unlink()

    server = start_backend(tmp_path / "data", env)
    try:
        found = audit(server)
        assert found.problems == {"rows without file": [_key(datas["e"])]}
        assert set(found.images) == {ids["a"], ids["d"], ids["e"]}
        assert server.file_path(datas["a"]).read_bytes() == datas["a"]
        assert not server.file_path(datas["c"]).exists()
        assert not (root / ".derived" / _key(datas["c"])).exists()
        assert not (root / ".derived" / _key(datas["e"])).exists()  # cache of a lost file
        with server.client() as c:
            assert c.get(f"{API}{ids['a']}/file").content == datas["a"]
            for gone in ("b", "c"):
                assert c.get(f"{API}{ids[gone]}").status_code == 404
            lost = c.get(f"{API}{ids['e']}").json()
            assert lost["status"] == "failed" and "missing" in lost["error"]
            for path in ("file", "annotated", "thumbnail"):
                r = c.get(f"{API}{ids['e']}/{path}")
                assert r.status_code == 410 and "missing" in r.json()["error"], (path, r.text)
            r = c.post(f"{API}{ids['e']}/detect")
            assert r.status_code == 410 and r.json()["image_id"] == ids["e"]
            assert c.delete(f"{API}{ids['e']}").status_code == 204
            assert upload(c, datas["e"]).status_code == 201  # the same bytes can come back
    finally:
        stop_backend(server)
    assert audit(server).problems == {}


def test_a_file_lost_while_serving_is_410_and_fails_the_image(tmp_path):
    env = {"MODE": "dummy", "DATABASE_URL": ""}
    server = start_backend(tmp_path / "data", env)
    try:
        data = circles_png(seed=21_100)
        with server.client() as c:
            iid = upload(c, data).json()["id"]
            server.file_path(data).unlink()
            r = c.get(f"{API}{iid}/file")
            assert r.status_code == 410 and r.json()["image_id"] == iid
            assert c.get(f"{API}{iid}").json()["status"] == "failed"
    finally:
        stop_backend(server)
