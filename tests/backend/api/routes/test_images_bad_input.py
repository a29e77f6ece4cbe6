"""Every bad input to the images API: a 4xx JSON error naming the problem, and nothing stored.

Runs against the real servers on SQLite and PostgreSQL (MAX_UPLOAD_BYTES = 1 MiB,
MAX_IMAGE_PIXELS = 2048 x 2048, API_KEY set).
"""

from __future__ import annotations

import io
import uuid

import httpx
import pytest
from PIL import Image

from tests.backend.helpers import API, API_KEY, circles_png, png_header_only, snapshot, upload

LIMIT = 1024 * 1024


def _gif() -> bytes:
    out = io.BytesIO()
    Image.new("L", (32, 32), 200).save(out, format="GIF")
    return out.getvalue()


def _tiny_png() -> bytes:
    out = io.BytesIO()
    Image.new("L", (4, 4), 200).save(out, format="PNG")
    return out.getvalue()


BAD_FILES = {
    "empty": (b"", 422, "empty"),
    "text": (b"hello, I am not an image\n" * 10, 415, "not a recognised image"),
    "truncated png": (circles_png(seed=1)[:300], 422, "truncated"),
    "truncated jpeg": (circles_png(seed=2, fmt="JPEG")[:400], 422, "truncated"),
    "html posing as png": (b"<html><script>alert(1)</script></html>", 415, "not a recognised"),
    "gif (unsupported)": (_gif(), 415, "unsupported image format 'GIF'"),
    "too small (4x4)": (_tiny_png(), 422, "at least 8"),
    "png signature only": (b"\x89PNG\r\n\x1a\n", 415, "not a recognised"),
    "decompression bomb": (png_header_only(30000, 30000), 413, "too large"),
    "just over pixel limit": (png_header_only(2049, 2048), 413, "over the limit"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_files_are_refused_and_nothing_is_stored(backend, case):
    data, status, words = BAD_FILES[case]
    before = snapshot(backend)
    with backend.client() as c:
        r = upload(c, data, name="evil.png")
    assert r.status_code == status, r.text
    assert words in r.json()["error"]
    assert snapshot(backend) == before


def test_oversized_upload_with_content_length_is_413(backend):
    before = snapshot(backend)
    with backend.client() as c:
        r = upload(c, b"\x89PNG" + b"\0" * (LIMIT + 1))
    assert r.status_code == 413 and "limit is 1048576 bytes" in r.json()["error"]
    assert snapshot(backend) == before


def test_oversized_streamed_upload_is_cut_off_before_the_end(backend):
    """A chunked body without Content-Length: the server stops reading at the limit."""
    sent = [0]
    total = 64 * LIMIT  # 64 MiB offered; the server must answer long before

    def body():
        boundary = b"b0undary"
        yield b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; '
        yield b'filename="big.png"\r\nContent-Type: image/png\r\n\r\n'
        chunk = b"\0" * 65536
        while sent[0] < total:
            sent[0] += len(chunk)
            yield chunk
        yield b"\r\n--" + boundary + b"--\r\n"

    before = snapshot(backend)
    headers = {**backend.headers, "Content-Type": "multipart/form-data; boundary=b0undary"}
    try:
        with httpx.Client(base_url=backend.url, timeout=30) as c:
            r = c.post(API, content=body(), headers=headers)
        assert r.status_code == 413, r.text
    except (httpx.WriteError, httpx.RemoteProtocolError, httpx.ReadError):
        pass  # the server answered 413 and closed while we were still sending
    assert sent[0] < total / 4
    assert snapshot(backend) == before


def test_oversized_multipart_preamble_is_413(backend):
    """Bytes outside the file part count too (no unbounded form fields)."""
    boundary = "xyz"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="note"\r\n\r\n'.encode()
        + b"a" * (LIMIT + 70 * 1024)
        + f"\r\n--{boundary}--\r\n".encode()
    )
    headers = {**backend.headers, "Content-Type": f"multipart/form-data; boundary={boundary}"}
    with backend.client() as c:
        r = c.post(API, content=body, headers=headers)
    assert r.status_code in (413, 422) and "error" in r.json()


@pytest.mark.parametrize(
    ("content_type", "body", "status", "words"),
    [
        ("application/json", b'{"file": "x"}', 415, "multipart/form-data"),
        ("image/png", circles_png(seed=3), 415, "multipart/form-data"),
        ("multipart/form-data", b"--x\r\n", 415, "boundary"),
        ("multipart/form-data; boundary=zz", b"garbage, no boundary", 422, "malformed multipart"),
        ("multipart/form-data; boundary=zz", b"--zz\r\nbroken\x00\r\n\r\n", 422, "multipart"),
        (
            "multipart/form-data; boundary=zz",
            b'--zz\r\nContent-Disposition: form-data; name="other"; filename="a.png"\r\n\r\n'
            b"abc\r\n--zz--\r\n",
            422,
            "no 'file' field",
        ),
    ],
)
def test_malformed_bodies_are_refused(backend, content_type, body, status, words):
    before = snapshot(backend)
    headers = {**backend.headers, "Content-Type": content_type}
    with backend.client() as c:
        r = c.post(API, content=body, headers=headers)
    assert r.status_code == status, r.text
    assert words in r.json()["error"]
    assert snapshot(backend) == before


def test_no_body_at_all(backend):
    with backend.client() as c:
        r = c.post(API)
    assert r.status_code == 415 and "multipart" in r.json()["error"]


def test_hostile_file_names_never_reach_the_file_system(backend):
    data = circles_png(seed=4)
    with backend.client() as c:
        r = upload(c, data, name="../../../../etc/passwd\x00.png")
        assert r.status_code == 201, r.text
        assert r.json()["filename"] == "passwd%00.png"  # httpx escapes the NUL; no path left
        r2 = upload(c, data, name="..\\..\\windows\\win.ini")
        assert r2.json()["filename"] == "win.ini"
    assert backend.file_path(data).is_file()
    stored = {p.name for p in backend.storage_dir.rglob("*") if p.is_file()}
    assert not any("passwd" in n or "win.ini" in n for n in stored)
    content = {p.name for p in backend.storage_dir.glob("??/??/*")}  # caches live in .derived/
    assert content and all(len(n) == 64 for n in content)


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"score_threshold": "abc"}, "score_threshold"),
        ({"score_threshold": "1.5"}, "score_threshold"),
        ({"score_threshold": "-0.1"}, "score_threshold"),
        ({"max_detections": "0"}, "max_detections"),
        ({"max_detections": "1e3"}, "max_detections"),
    ],
)
def test_bad_detection_parameters_are_422(backend, params, words):
    before = snapshot(backend)
    with backend.client() as c:
        r = c.post(API, params=params, files={"file": ("a.png", circles_png(seed=5))})
    assert r.status_code == 422 and words in r.json()["error"]
    assert snapshot(backend) == before


@pytest.mark.parametrize(
    "params", [{"limit": 0}, {"limit": 201}, {"limit": "x"}, {"offset": -1}, {"offset": "1.5"}]
)
def test_bad_pagination_is_422(backend, params):
    with backend.client() as c:
        r = c.get(API, params=params)
    assert r.status_code == 422 and r.json()["error"].startswith("invalid request")


MALFORMED_IDS = ["abc", "123", "00000000-0000-0000-0000-00000000000g", "%2e%2e", "' OR 1=1 --"]


@pytest.mark.parametrize("image_id", MALFORMED_IDS)
@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("GET", ""),
        ("GET", "/file"),
        ("GET", "/annotated"),
        ("GET", "/objects"),
        ("GET", "/objects/1"),
        ("DELETE", ""),
        ("POST", "/detect"),
    ],
)
def test_malformed_image_ids_are_422_or_404(backend, image_id, method, suffix):
    with backend.client() as c:
        r = c.request(method, f"{API}{image_id}{suffix}")
    assert r.status_code in (404, 422), r.text
    assert "error" in r.json()


@pytest.mark.parametrize("object_id", ["x", "-1", "0", "1.5", str(2**64)])
def test_malformed_object_ids_are_422(backend, object_id):
    with backend.client() as c:
        iid = upload(c, circles_png(seed=6)).json()["id"]
        r = c.get(f"{API}{iid}/objects/{object_id}")
    assert r.status_code == 422 and "object_id" in r.json()["error"]


def test_unknown_ids_on_writes_are_404(backend):
    with backend.client() as c:
        assert c.delete(f"{API}{uuid.uuid4()}").status_code == 404
        r = c.post(f"{API}{uuid.uuid4()}/detect")
    assert r.status_code == 404 and "not found" in r.json()["error"]


def test_writes_need_the_api_key_and_reads_do_not(backend):
    before = snapshot(backend)
    data = circles_png(seed=7)
    with httpx.Client(base_url=backend.url, timeout=30) as anon:
        r = upload(anon, data)
        assert r.status_code == 401 and "API key" in r.json()["error"]
        r = anon.post(API, files={"file": ("a.png", data)}, headers={"X-API-Key": "wrong"})
        assert r.status_code == 401 and r.json()["error"] == "invalid API key"
        assert snapshot(backend) == before
        assert anon.get(API).status_code == 200
        r = anon.post(API, files={"file": ("a.png", data)}, headers={"Authorization": "Bearer x"})
        assert r.status_code == 401
        r = anon.post(
            API, files={"file": ("a.png", data)}, headers={"Authorization": f"Bearer {API_KEY}"}
        )
        assert r.status_code == 201
        iid = r.json()["id"]
        assert anon.get(f"{API}{iid}").status_code == 200
        assert anon.delete(f"{API}{iid}").status_code == 401
        assert anon.post(f"{API}{iid}/detect").status_code == 401
        assert anon.delete(f"{API}{iid}", headers={"X-API-Key": API_KEY}).status_code == 204


def test_unknown_routes_and_methods_answer_json(backend):
    with backend.client() as c:
        r = c.get("/api/v1/nothing")
        assert r.status_code == 404 and r.json() == {"error": "Not Found"}
        r = c.put(API)
        assert r.status_code == 405 and "error" in r.json()


def test_non_latin1_part_headers_are_read_as_utf8(backend):
    """Found by schemathesis: a form field named with characters beyond Latin-1 gave a 500."""
    boundary = "qq"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="𡈻x"\r\n\r\nnull\r\n'
            f"--{boundary}\r\nContent-Disposition: form-data; "
            'name="file"; filename="круг🙂.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + circles_png(seed=8)
        + f"\r\n--{boundary}--\r\n".encode()
    )
    headers = {**backend.headers, "Content-Type": f"multipart/form-data; boundary={boundary}"}
    with backend.client() as c:
        r = c.post(API, content=body, headers=headers)
    assert r.status_code == 201, r.text
    assert r.json()["filename"] == "круг🙂.png"
