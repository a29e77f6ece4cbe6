"""Hardening of both launchers (`standalone` and `bentoml serve`), real servers and clients:
slowloris cut-offs, a failing warm-up that recovers, the admission budget's 429, crafted
TIFFs as 400 / INVALID_ARGUMENT, the liveness deadline, and bad settings as one line.

One server per launcher with tight settings: 1 s header and body timeouts, the first two
warm-ups failing on purpose (`CIRCLE_DETECTOR_WARMUP_FAULTS`), a 1 Mpixel budget with a
50 ms admission timeout.
"""

from __future__ import annotations

import base64
import concurrent.futures
import json
import os
import select
import signal
import socket
import subprocess
import time

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.grpc import service_pb2
from tritonclient.utils import InferenceServerException

from tests.bentos.circle_detector.abuse import typed_uint_message
from tests.bentos.circle_detector.images import circles_image, encode
from tests.bentos.circle_detector.test_decode_fuzz import crafted_tiff
from tests.servers import REPO_ROOT, free_port, running_bento, serve_command, stop_process_group

TIMEOUT_S = 1.0
ENV = {
    "CIRCLE_DETECTOR_HEADER_TIMEOUT_S": str(TIMEOUT_S),
    "CIRCLE_DETECTOR_BODY_TIMEOUT_S": str(TIMEOUT_S),
    "CIRCLE_DETECTOR_WARMUP_FAULTS": "2",
    "CIRCLE_DETECTOR_BUDGET_PIXELS": str(1 << 20),
    "CIRCLE_DETECTOR_ADMISSION_TIMEOUT_S": "0.05",
}
INFER = "/v2/models/circle-detector/infer"


@pytest.fixture(scope="module", params=["standalone", "bentoml"])
def server(request, bentoml_home):
    with running_bento(bentoml_home, env=ENV, standalone=request.param == "standalone") as s:
        yield s


def _address(server) -> tuple[str, int]:
    host, port = server.http_url.rsplit(":", 1)
    return host, int(port)


def _trickle(server, head: bytes, drip: bytes) -> tuple[float, bytes]:
    """Send `head`, then `drip` a byte every 0.1 s; (seconds until the server answered or
    closed, what it sent)."""
    with socket.create_connection(_address(server), timeout=10) as sock:
        started = time.monotonic()
        sock.sendall(head)
        for byte in drip:
            readable, _, _ = select.select([sock], [], [], 0.1)
            if readable:
                break
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
        reply = b""
        while chunk := _recv(sock):
            reply += chunk
        return time.monotonic() - started, reply


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except OSError:
        return b""


def test_trickled_headers_are_cut_off(server):
    took, reply = _trickle(server, b"GET /v2/health/live HTTP/1.1\r\n", b"X-Slow: " + b"a" * 200)
    assert TIMEOUT_S - 0.1 <= took < TIMEOUT_S + 2, took
    assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
    assert b"request headers not received within 1 s" in reply


def test_trickled_body_is_cut_off(server):
    host, port = _address(server)
    head = (
        f"POST {INFER} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        "Content-Length: 1000\r\n\r\n"
    ).encode()
    took, reply = _trickle(server, head, b"{" + b" " * 999)
    assert TIMEOUT_S - 0.1 <= took < TIMEOUT_S + 2, took
    assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
    assert b"request body not received within 1 s" in reply


def test_failed_warm_ups_are_retried_until_ready(server):
    log = server.log_tail(200_000)
    assert "warm-up attempt 1 failed" in log and "warm-up attempt 2 failed" in log
    assert "warm-up attempt 3 failed" not in log
    assert httpx.get(f"{server.base_url}/v2/health/ready", timeout=5).status_code == 200


def _png(side: int) -> bytes:
    return encode(circles_image(side, side, 3))


def test_budget_full_is_429_with_retry_after_or_resource_exhausted(server):
    """Six concurrent 1 Mpixel images against a 1 Mpixel budget and a 50 ms admission wait:
    some wait too long and are refused; none fails otherwise."""
    png = _png(1024)

    def rest(_: int) -> tuple[int, str | None, str]:
        with httpx.Client(timeout=60) as client:
            body = json.dumps(
                {
                    "inputs": [
                        {
                            "name": "image",
                            "datatype": "BYTES",
                            "shape": [1],
                            "parameters": {"content_type": "base64"},
                            "data": [base64.b64encode(png).decode()],
                        }
                    ]
                }
            )
            response = client.post(f"{server.base_url}{INFER}", content=body)
            return response.status_code, response.headers.get("retry-after"), response.text

    def grpc_call(_: int) -> str:
        with grpcclient.InferenceServerClient(server.grpc_url) as client:
            tensor = grpcclient.InferInput("image", [1], "BYTES")
            tensor.set_data_from_numpy(np.array([png], dtype=object))
            try:
                client.infer("circle-detector", [tensor])
            except InferenceServerException as exc:
                return f"{exc.status()} {exc.message()}"
            return "OK"

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(rest, range(6)))
        codes = list(pool.map(grpc_call, range(6)))
    refused = [a for a in answers if a[0] == 429]
    assert refused and all(a[0] in (200, 429) for a in answers), answers
    assert all(retry == "2" and "budget" in text for _, retry, text in refused), refused
    assert any(c.startswith("StatusCode.RESOURCE_EXHAUSTED") for c in codes), codes
    assert all(c == "OK" or "busy" in c for c in codes), codes


def test_crafted_tiff_is_400_over_rest_and_invalid_argument_over_grpc(server):
    tiff = crafted_tiff(5)
    with httpclient.InferenceServerClient(server.http_url) as client:
        tensor = httpclient.InferInput("image", [1], "BYTES")
        tensor.set_data_from_numpy(np.array([tiff], dtype=object))
        with pytest.raises(InferenceServerException) as raised:
            client.infer("circle-detector", [tensor])
    assert raised.value.status() == "400" and "corrupt" in raised.value.message()
    with grpcclient.InferenceServerClient(server.grpc_url) as client:
        tensor = grpcclient.InferInput("image", [1], "BYTES")
        tensor.set_data_from_numpy(np.array([tiff], dtype=object))
        with pytest.raises(InferenceServerException) as raised:
            client.infer("circle-detector", [tensor])
    assert raised.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert "TypeError" in raised.value.message()


def test_typed_contents_over_the_limit_are_refused_unparsed(server):
    with grpc.insecure_channel(server.grpc_url) as channel:
        call = channel.unary_unary(
            "/inference.GRPCInferenceService/ModelInfer",
            request_serializer=None,
            response_deserializer=service_pb2.ModelInferResponse.FromString,
        )
        with pytest.raises(grpc.RpcError) as raised:
            call(typed_uint_message([1, 4096, 1024]), timeout=30)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "raw_input_contents" in raised.value.details()


def test_liveness_fails_past_the_ready_deadline_and_shutdown_stops_the_warm_up(bentoml_home):
    """Warm-ups that always fail: live until the 1.5 s deadline, then 503; SIGTERM still
    stops the server at once (the retry loop is cancelled)."""
    port = free_port()
    env = {
        **os.environ,
        "BENTOML_HOME": str(bentoml_home),
        "CIRCLE_DETECTOR_GRPC_PORT": "0",
        "CIRCLE_DETECTOR_WARMUP_FAULTS": "1000000",
        "CIRCLE_DETECTOR_READY_DEADLINE_S": "1.5",
    }
    process = subprocess.Popen(
        serve_command(port, standalone=True),
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        seen: list[tuple[int, int]] = []
        deadline = time.monotonic() + 60
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=2) as client:
            while time.monotonic() < deadline:
                try:
                    live = client.get("/v2/health/live")
                    ready = client.get("/v2/health/ready").status_code
                except httpx.HTTPError:
                    time.sleep(0.1)
                    continue
                seen.append((live.status_code, ready))
                if live.status_code == 503:
                    assert live.json()["live"] is False
                    assert "CIRCLE_DETECTOR_READY_DEADLINE_S" in live.json()["error"]
                    break
                time.sleep(0.1)
        assert (200, 503) in seen and seen[-1] == (503, 503), seen
        started = time.monotonic()
        stop_process_group(process, timeout_s=10)
        # uvicorn re-raises the SIGTERM it handled once shut down cleanly
        assert process.returncode in (0, -signal.SIGTERM) and time.monotonic() - started < 5
        _, stderr = process.communicate(timeout=5)  # reads and closes the pipe
        assert "Application shutdown complete" in stderr.decode()
    finally:
        stop_process_group(process)
        if process.stderr is not None:
            process.stderr.close()


@pytest.mark.parametrize("launcher", ["standalone", "bentoml"])
@pytest.mark.parametrize(
    ("variable", "value", "phrase"),
    [
        ("PORT", "abc", "PORT='abc': expected a port number"),
        ("CIRCLE_DETECTOR_BODY_TIMEOUT_S", "soon", "is not a number of seconds"),
    ],
)
def test_bad_settings_are_one_line_and_exit_2(tmp_path, launcher, variable, value, phrase):
    env = {**os.environ, "BENTOML_HOME": str(tmp_path), variable: value}
    env.pop("BENTOML_PORT", None)
    command = serve_command(None, standalone=launcher == "standalone")
    done = subprocess.run(
        command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("error: ") and phrase in lines[-1], done.stderr[-2000:]
    assert sum(phrase in line for line in lines) == 1


def test_empty_port_means_the_default():
    from bentos.circle_detector.settings import http_port, load_settings

    assert http_port({"PORT": "", "BENTOML_PORT": ""}) == 3000
    assert http_port({"PORT": "8080", "BENTOML_PORT": " "}) == 8080
    assert load_settings({"PORT": ""}).port == 3000


def test_a_port_of_non_ascii_digits_is_a_settings_error():
    """`str.isdigit` accepts '²', which `int` refuses: it must be the one-line error, not a
    ValueError traceback at import of the service."""
    from bentos.circle_detector.settings import SettingsError, http_port

    with pytest.raises(SettingsError, match="PORT='²': expected a port number"):
        http_port({"PORT": "²"})
