"""The `/api/v1/images` API end to end, against real servers on SQLite and on PostgreSQL."""

from __future__ import annotations

import io
import uuid

import numpy as np
import pytest
from PIL import Image

from tests.backend.helpers import API, circles_png, upload


def test_upload_returns_the_record_with_objects_and_timings(backend):
    data = circles_png(seed=101)
    with backend.client() as c:
        r = upload(c, data, name="rings.png", score_threshold=0.5)
    assert r.status_code == 201, r.text
    body = r.json()
    assert r.headers["location"] == f"{API}{body['id']}"
    assert body["status"] == "done" and body["error"] is None
    assert body["filename"] == "rings.png"
    assert (body["format"], body["content_type"]) == ("PNG", "image/png")
    assert (body["width"], body["height"], body["size_bytes"]) == (160, 120, len(data))
    assert body["model_name"] == "circle-detector" and body["model_version"] == "dummy"
    assert body["num_detections"] == len(body["objects"]) >= 1
    scores = [o["score"] for o in body["objects"]]
    assert scores == sorted(scores, reverse=True)
    for rank, obj in enumerate(body["objects"]):
        assert obj["rank"] == rank and obj["image_id"] == body["id"]
        box, center = obj["bbox"], obj["center"]
        assert box["x1"] <= center["x"] <= box["x2"] and box["y1"] <= center["y"] <= box["y2"]
        assert box["x2"] - box["x1"] == pytest.approx(2 * obj["radius"])
        assert 0.5 <= obj["score"] <= 1.0  # SCORE_THRESHOLD default
    timings = body["timings"]
    for key in ("validate_ms", "store_ms", "inference_ms", "total_ms"):
        assert timings[key] is not None and timings[key] >= 0
    assert backend.file_path(data).read_bytes() == data


def test_dummy_detections_are_deterministic_per_content(backend):
    data = circles_png(seed=102)
    with backend.client() as c:
        first = upload(c, data).json()
        second = upload(c, data).json()
    assert first["id"] != second["id"] and first["sha256"] == second["sha256"]
    strip = [{k: v for k, v in o.items() if k not in ("id", "image_id")} for o in first["objects"]]
    again = [{k: v for k, v in o.items() if k not in ("id", "image_id")} for o in second["objects"]]
    assert strip == again


def test_get_list_objects_file_and_annotated(backend):
    data = circles_png(seed=103, fmt="JPEG")
    with backend.client() as c:
        created = upload(c, data, name="photo.bin", score_threshold=0.0).json()
        iid = created["id"]
        got = c.get(f"{API}{iid}").json()
        assert got["objects"] == created["objects"]
        assert got["timings"]["inference_ms"] == pytest.approx(created["timings"]["inference_ms"])
        assert got["content_type"] == "image/jpeg"  # judged by content, not the name

        page = c.get(API, params={"limit": 200}).json()
        assert iid in [item["id"] for item in page["items"]]
        assert "objects" not in page["items"][0]

        objects = c.get(f"{API}{iid}/objects").json()
        assert objects == created["objects"]
        one = c.get(f"{API}{iid}/objects/{objects[0]['id']}")
        assert one.status_code == 200 and one.json() == objects[0]

        f = c.get(f"{API}{iid}/file")
        assert f.status_code == 200 and f.content == data
        assert f.headers["content-type"] == "image/jpeg"
        assert f.headers["x-content-type-options"] == "nosniff"
        assert f.headers["content-security-policy"] == "sandbox"

        a = c.get(f"{API}{iid}/annotated")
        assert a.status_code == 200 and a.headers["content-type"] == "image/png"
        with Image.open(io.BytesIO(a.content)) as img:
            assert img.format == "PNG" and img.size == (160, 120)
            # circles are drawn in red/blue on a grey picture: coloured pixels exist
            rgb = np.asarray(img.convert("RGB"), dtype=np.int16)
            assert (np.abs(rgb[..., 0] - rgb[..., 1]) > 60).any()


def test_list_is_paginated_newest_first(backend):
    with backend.client() as c:
        ids = [upload(c, circles_png(seed=110 + i)).json()["id"] for i in range(3)]
        page = c.get(API, params={"limit": 2, "offset": 0}).json()
        assert page["limit"] == 2 and page["offset"] == 0 and page["total"] >= 3
        assert [item["id"] for item in page["items"]] == ids[::-1][:2]
        nxt = c.get(API, params={"limit": 2, "offset": 2}).json()
        assert nxt["items"][0]["id"] == ids[0]
        times = [i["created_at"] for i in c.get(API, params={"limit": 200}).json()["items"]]
        assert times == sorted(times, reverse=True)


@pytest.mark.parametrize(
    "params",
    [{"offset": 2**64}, {"offset": -1}, {"limit": 0}, {"offset": "x"}],
    ids=["offset-past-64-bits", "negative-offset", "zero-limit", "text-offset"],
)
def test_bad_pagination_is_422_not_500(backend, params):
    with backend.client() as c:
        r = c.get(API, params=params)
    assert r.status_code == 422 and "error" in r.json()


def test_detect_again_replaces_objects_and_records_the_model(backend):
    with backend.client() as c:
        created = upload(c, circles_png(seed=120), score_threshold=0.9).json()
        assert all(o["score"] >= 0.9 for o in created["objects"])
        r = c.post(f"{API}{created['id']}/detect", params={"score_threshold": 0.0})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] == "done" and body["score_threshold"] == 0.0
        assert body["num_detections"] >= created["num_detections"]
        assert body["attempts"] == created["attempts"] + 1
        assert (body["model_name"], body["model_version"]) == ("circle-detector", "dummy")
        old_ids = {o["id"] for o in created["objects"]}
        assert not old_ids & {o["id"] for o in body["objects"]}
        assert c.get(f"{API}{created['id']}/objects").json() == body["objects"]
        r = c.post(f"{API}{created['id']}/detect", params={"max_detections": 1})
        assert r.json()["num_detections"] <= 1


def test_delete_removes_row_objects_and_file(backend):
    data = circles_png(seed=130)
    with backend.client() as c:
        created = upload(c, data, score_threshold=0.0).json()
        iid = created["id"]
        assert backend.file_path(data).is_file()
        assert c.delete(f"{API}{iid}").status_code == 204
        assert c.get(f"{API}{iid}").status_code == 404
        assert c.get(f"{API}{iid}/objects").status_code == 404
        assert c.get(f"{API}{iid}/objects/{created['objects'][0]['id']}").status_code == 404
        assert c.delete(f"{API}{iid}").status_code == 404
    assert not backend.file_path(data).exists()


def test_identical_uploads_share_one_file_until_the_last_is_deleted(backend):
    data = circles_png(seed=131)
    with backend.client() as c:
        a = upload(c, data).json()["id"]
        before = backend.file_count()
        b = upload(c, data).json()["id"]
        assert backend.file_count() == before
        assert c.delete(f"{API}{a}").status_code == 204
        assert c.get(f"{API}{b}/file").content == data
        assert c.delete(f"{API}{b}").status_code == 204
    assert not backend.file_path(data).exists()


def test_every_supported_format_is_accepted(backend):
    with backend.client() as c:
        for i, fmt in enumerate(["PNG", "JPEG", "BMP", "TIFF", "WEBP"]):
            data = circles_png(seed=140 + i, fmt=fmt)
            r = upload(c, data, name="x.dat")
            assert r.status_code == 201, (fmt, r.text)
            assert r.json()["format"] == fmt
            assert c.get(f"{API}{r.json()['id']}/file").content == data


def test_object_of_another_image_is_not_found(backend):
    with backend.client() as c:
        a = upload(c, circles_png(seed=150), score_threshold=0.0).json()
        b = upload(c, circles_png(seed=151)).json()
        r = c.get(f"{API}{b['id']}/objects/{a['objects'][0]['id']}")
    assert r.status_code == 404 and "not found" in r.json()["error"]


@pytest.mark.parametrize(
    "path",
    ["{id}", "{id}/file", "{id}/annotated", "{id}/objects", "{id}/objects/1"],
)
def test_unknown_image_is_404(backend, path):
    with backend.client() as c:
        r = c.get(API + path.format(id=uuid.uuid4()))
    assert r.status_code == 404 and "not found" in r.json()["error"]
