"""Idempotent uploads, thumbnails, cached annotations and concurrent deletes on one image."""

from __future__ import annotations

import asyncio
import hashlib
import io
import uuid

from PIL import Image

from tests.backend.helpers import API, circles_png, db_rows, upload


def _post(c, data: bytes, key: str | None, name: str = "k.png"):
    headers = {"Idempotency-Key": key} if key is not None else {}
    return c.post(API, files={"file": (name, data, "image/png")}, headers=headers)


def test_a_retry_with_the_same_key_returns_the_first_image(backend):
    key = f"upload-{uuid.uuid4()}"
    data = circles_png(seed=31_000)
    with backend.client() as c:
        first = _post(c, data, key)
        assert first.status_code == 201, first.text
        again = _post(c, data, key, name="other-name.png")
        assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
        assert again.json()["id"] == first.json()["id"]
        assert again.json()["filename"] == "k.png"
        assert again.json()["objects"] == first.json()["objects"]
        other = _post(c, circles_png(seed=31_001), key)
        assert other.status_code == 422 and "Idempotency-Key" in other.json()["error"]
        assert other.json()["image_id"] == first.json()["id"]
        assert _post(c, data, None).json()["id"] != first.json()["id"]  # no key: a new image
    rows = db_rows(backend, f"SELECT count(*) FROM image WHERE idempotency_key = '{key}'")
    assert rows == [(1,)]


def test_bad_idempotency_keys_are_422(backend):
    with backend.client() as c:
        for key in ("", "x" * 201, "with space", "caf\u00e9"):
            r = c.post(
                API,
                files={"file": ("a.png", circles_png(seed=31_010), "image/png")},
                headers={"Idempotency-Key": key.encode()},
            )
            assert r.status_code == 422 and "Idempotency-Key" in r.json()["error"], key


async def test_concurrent_retries_with_one_key_make_one_image(backend):
    key = f"burst-{uuid.uuid4()}"
    data = circles_png(seed=31_020)
    async with backend.async_client() as c:
        responses = await asyncio.gather(
            *(
                c.post(API, files={"file": ("b.png", data)}, headers={"Idempotency-Key": key})
                for _ in range(10)
            )
        )
    codes = sorted(r.status_code for r in responses)
    assert set(codes) <= {200, 201} and codes.count(201) <= 1, [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    sql = f"SELECT count(*) FROM image WHERE idempotency_key = '{key}'"
    rows = await asyncio.to_thread(db_rows, backend, sql)
    assert rows == [(1,)]


def test_thumbnails_are_small_jpegs_cached_in_storage_and_deleted_with_the_file(backend):
    data = circles_png(seed=31_030, size=(1200, 600), fmt="WEBP")
    sha = hashlib.sha256(data).hexdigest()
    with backend.client() as c:
        body = upload(c, data, name="t.webp").json()
        r = c.get(body["links"]["thumbnail"])
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
        with Image.open(io.BytesIO(r.content)) as thumb:
            assert thumb.size == (256, 128)
        cached = backend.storage_dir / ".derived" / sha / "thumb-256.jpg"
        assert cached.read_bytes() == r.content
        annotated = c.get(body["links"]["annotated"])
        assert annotated.status_code == 200
        assert len(list(cached.parent.glob("annotated-*.png"))) == 1
        assert c.get(body["links"]["annotated"]).content == annotated.content
        assert c.delete(f"{API}{body['id']}").status_code == 204
        assert not cached.parent.exists()
        assert c.get(body["links"]["thumbnail"]).status_code == 404


def test_annotated_pngs_within_the_max_side_keep_their_size(backend):
    """Scaling past ANNOTATED_MAX_SIDE, circles with it: tests/backend/test_annotate.py."""
    data = circles_png(seed=31_040, size=(2048, 1024), fmt="JPEG")
    with backend.client() as c:
        body = upload(c, data, name="big.jpg").json()
        r = c.get(body["links"]["annotated"])
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        with Image.open(io.BytesIO(r.content)) as img:
            assert img.size == (2048, 1024)  # within ANNOTATED_MAX_SIDE: kept


async def test_concurrent_delete_detect_and_reads_of_one_image_never_500(backend):
    """20 each of DELETE, detect, GET, /file, /annotated on one image: only 2xx and 404."""
    data = circles_png(seed=31_050)
    async with backend.async_client() as c:
        iid = (await c.post(API, files={"file": ("r.png", data)})).json()["id"]
        calls = []
        for _ in range(20):
            calls += [
                c.delete(f"{API}{iid}"),
                c.post(f"{API}{iid}/detect"),
                c.get(f"{API}{iid}"),
                c.get(f"{API}{iid}/file"),
                c.get(f"{API}{iid}/annotated"),
            ]
        responses = await asyncio.gather(*calls)
    codes = [r.status_code for r in responses]
    bad = [(r.request.method, r.request.url.path, r.status_code, r.text[:200]) for r in responses
           if not (200 <= r.status_code < 300 or r.status_code == 404)]  # fmt: skip
    assert not bad, bad
    assert codes.count(204) == 1
    assert not backend.file_path(data).exists()
