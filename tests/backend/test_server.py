"""`python -m backend` as a server: header and body read timeouts (raw sockets that trickle),
API_KEY_FOR_READS, route-template metric labels, and a clean exit 0 on SIGINT/SIGTERM."""

from __future__ import annotations

import re
import signal
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.backend.helpers import (
    API,
    API_KEY,
    BackendServer,
    circles_png,
    running_backend,
    start_backend,
    upload,
)

HEADER_TIMEOUT_S = 1.0
BODY_TIMEOUT_S = 1.5


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[BackendServer]:
    env = {
        "MODE": "dummy",
        "DATABASE_URL": "",
        "API_KEY": API_KEY,
        "HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S),
        "BODY_TIMEOUT_S": str(BODY_TIMEOUT_S),
    }
    data_dir = tmp_path_factory.mktemp("server")
    with running_backend(data_dir, {**env, "STATIC_DIR": str(data_dir / "no-page")}) as backend:
        yield backend


def connect(server: BackendServer) -> socket.socket:
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=10)
    return sock


def trickle_until_closed(sock: socket.socket, chunks: list[bytes], gap_s: float) -> tuple:
    """Send `chunks` one per `gap_s` until the server closes; (seconds, what it answered)."""
    start = time.monotonic()
    answer = b""
    sock.settimeout(gap_s)
    for chunk in chunks:
        try:
            sock.sendall(chunk)
        except OSError:  # reset or broken pipe: closed by the server
            break
        try:
            data = sock.recv(65536)
        except TimeoutError:
            continue
        except OSError:
            break
        if not data:
            break
        answer += data
    else:
        pytest.fail(f"the connection stayed open for {time.monotonic() - start:.1f} s")
    with_rest = answer
    sock.settimeout(2)
    try:
        while data := sock.recv(65536):
            with_rest += data
    except OSError:
        pass
    return time.monotonic() - start, with_rest


def test_headers_that_trickle_are_cut_after_the_header_timeout(server):
    chunks = [b"GET /health HTTP/1.1\r\n"] + [b"X-Slow: %d\r\n" % i for i in range(60)]
    with connect(server) as sock:
        elapsed, answer = trickle_until_closed(sock, chunks, 0.2)
    assert HEADER_TIMEOUT_S - 0.1 <= elapsed < HEADER_TIMEOUT_S + 1.5
    assert answer.startswith(b"HTTP/1.1 408 ") and b"headers not received" in answer


def test_a_silent_connection_is_closed_after_the_header_timeout(server):
    """Nothing sent at all (a preconnected socket, or a slowloris): closed without an answer."""
    with connect(server) as sock:
        start = time.monotonic()
        sock.settimeout(HEADER_TIMEOUT_S + 5)
        answer = sock.recv(65536)
        elapsed = time.monotonic() - start
    assert answer == b""
    assert HEADER_TIMEOUT_S - 0.1 <= elapsed < HEADER_TIMEOUT_S + 1.5


def test_a_body_that_trickles_is_cut_after_the_body_timeout(server):
    head = (
        f"POST {API} HTTP/1.1\r\nHost: x\r\nX-API-Key: {API_KEY}\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n"
    ).encode()
    part = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="c.png"\r\n'
        b"Content-Type: image/png\r\n\r\n"
    )
    png = circles_png(seed=3099)
    chunks = [head, part] + [png[i : i + 10] for i in range(0, 1000, 10)]
    with connect(server) as sock:
        elapsed, answer = trickle_until_closed(sock, chunks, 0.2)
    assert BODY_TIMEOUT_S - 0.1 <= elapsed < BODY_TIMEOUT_S + 1.5
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408 "), answer
    assert_alive(server)


def test_slow_but_timely_requests_and_keep_alive_still_work(server):
    """Headers in 0.6 s (under the limit) on a kept-alive connection, twice, with an idle
    gap between them that, added to the second request's 0.6 s, exceeds the limit."""
    with connect(server) as sock:
        for i in range(2):
            if i:  # idle between requests: the header timer starts with the next request
                time.sleep(HEADER_TIMEOUT_S / 2)
            for part in (b"GET /health HTTP/1.1\r\n", b"Host: x\r\n", b"\r\n"):
                sock.sendall(part)
                time.sleep(0.2)
            sock.settimeout(5)
            answer = sock.recv(65536)
            assert answer.startswith(b"HTTP/1.1 200 "), answer


def assert_alive(server: BackendServer) -> None:
    with server.client() as c:
        assert c.get("/health").status_code == 200


def metric_routes(text: str) -> set[str]:
    return set(re.findall(r'backend_http_requests_total\{[^}]*route="([^"]*)"', text))


def test_metric_labels_are_route_templates(server):
    with server.client() as c:
        image = upload(c, circles_png(seed=3100), score_threshold=0.0).json()
        object_id = image["objects"][0]["id"]
        assert c.get(f"{API}{image['id']}/objects/{object_id}").status_code == 200
        assert c.get(f"{API}{image['id']}/objects/1").status_code in (200, 404)
        assert c.get(f"/api/v1/images/{image['id']}/objects/999999999").status_code == 404
        assert c.get("/no/such/path/v1").status_code == 404
        assert c.get(f"/api/v1/images/{image['id']}/nothing").status_code == 404
        text = c.get("/metrics").text
    routes = metric_routes(text)
    assert "/api/v1/images/{image_id}/objects/{object_id}" in routes
    assert "unmatched" in routes
    assert routes <= {
        "/api/v1/images/",
        "/api/v1/images/{image_id}/objects/{object_id}",
        "unmatched",
        "/metrics",
        "/health",
    }, routes
    assert image["id"] not in text


def test_reads_are_open_by_default_and_writes_need_the_key(server):
    with httpx.Client(base_url=server.url, timeout=60) as c:
        assert c.get(API).status_code == 200
        assert upload(c, circles_png(seed=3101)).status_code == 401


def test_api_key_for_reads_closes_every_api_route_but_not_health(tmp_path):
    env = {"MODE": "dummy", "DATABASE_URL": "", "API_KEY": API_KEY, "API_KEY_FOR_READS": "true"}
    with running_backend(tmp_path, env) as backend:
        with backend.client() as c:  # with the key
            image = upload(c, circles_png(seed=3102)).json()
            assert c.get(API).status_code == 200
            assert c.get(f"{API}{image['id']}/file").status_code == 200
        with httpx.Client(base_url=backend.url, timeout=60) as anonymous:
            one = f"{API}{image['id']}"
            for path in (API, one, f"{one}/file", f"{one}/annotated", f"{one}/objects"):
                r = anonymous.get(path)
                assert r.status_code == 401, (path, r.text)
                assert "API key" in r.json()["error"]
            wrong = anonymous.get(API, headers={"X-API-Key": "wrong"})
            assert wrong.status_code == 401 and wrong.json()["error"] == "invalid API key"
            bearer = anonymous.get(API, headers={"Authorization": f"Bearer {API_KEY}"})
            assert bearer.status_code == 200
            assert anonymous.get("/health").status_code == 200
            assert anonymous.get("/health/ready").status_code == 200
            assert anonymous.get("/metrics").status_code == 200


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_the_server_cleanly_with_exit_0(tmp_path, sig):
    env = {
        "MODE": "dummy",
        "DATABASE_URL": "",
        "LOG_LEVEL": "info",
        "PENDING_RETRY_INTERVAL_S": "5",
        "PENDING_RETRY_POLL_S": "0.1",
    }
    backend = start_backend(tmp_path, env)
    with backend.client() as c:
        assert upload(c, circles_png(seed=3103)).status_code == 201
    backend.process.send_signal(sig)
    assert backend.process.wait(20) == 0
    log = backend.log_tail(20000)
    assert "background retry stopped" in log and "Traceback" not in log
    assert f"stopped by {sig.name}" in log
