"""Every process a script starts is stopped when the script ends: scripts/smoke-test.sh's
port-forwards (in scripts/container-test.sh, Host-header routers behind a fake kubectl; once one
was still running 24 minutes after `make container`), also on SIGTERM, and the helper that
starts them (scripts/lib/common.sh start_bg/stop_bg). Mocked: kubectl (no cluster here), with
tests/k8s/fake_cluster/kubectl; the routers, curl and the upstream HTTP servers are real."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.k8s.manifests import REPO_ROOT, SCRIPTS
from tests.servers import free_port

FAKE_CLUSTER = REPO_ROOT / "tests" / "k8s" / "fake_cluster"
MODEL_HOST = "circle-detector.circle-detector.svc.cluster.local"


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting for its reaper."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _gone(pids: list[int], timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not any(_alive(p) for p in pids):
            return True
        time.sleep(0.05)
    return False


def _upstream(answers: dict[tuple[str, str], tuple[int, dict]], hang: str | None = None):
    """A stand-in HTTP server: (method, path) -> (status, JSON body); `hang` never answers."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            path = self.path.split("?")[0]
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            if path == hang:
                time.sleep(30)
            status, body = answers.get((self.command, path), (404, {"error": "not found"}))
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


MODEL = {
    ("GET", "/v2/health/ready"): (200, {}),
    ("GET", "/v2/models/circle-detector"): (200, {"name": "circle-detector"}),
    ("POST", "/v2/models/circle-detector/infer"): (200, {"outputs": [{"name": "num_detections"}]}),
}
BACKEND = {("GET", "/health/ready"): (200, {}), ("POST", "/api/v1/images/"): (201, {})}


@pytest.fixture
def smoke(tmp_path: Path) -> Iterator:
    """Start scripts/smoke-test.sh local against stand-in servers; yields a starter."""
    servers = []

    def start(hang: str | None = None) -> tuple[subprocess.Popen[str], Path]:
        model = _upstream(MODEL, hang)
        backend = _upstream(BACKEND)
        servers.extend([model, backend])
        pid_dir = tmp_path / "pids"
        pid_dir.mkdir(exist_ok=True)
        env = {
            **os.environ,
            "PATH": f"{FAKE_CLUSTER}:{os.environ['PATH']}",
            "FAKE_PYTHON": sys.executable,
            "FAKE_PID_DIR": str(pid_dir),
            "FAKE_ISVC_URL": f"http://{MODEL_HOST}",
            "FAKE_MODEL_UPSTREAM": f"127.0.0.1:{model.server_port}",
            "FAKE_DEFAULT_UPSTREAM": f"127.0.0.1:{backend.server_port}",
            "LOCAL_PORT": str(free_port()),
            "MODEL_LOCAL_PORT": str(free_port()),
            "REQUEST_TIMEOUT": "20",
        }
        proc = subprocess.Popen(
            ["bash", str(SCRIPTS / "smoke-test.sh"), "local"],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        return proc, pid_dir

    yield start
    for server in servers:
        server.shutdown()


def _pids(pid_dir: Path) -> list[int]:
    return [int(p.name) for p in pid_dir.iterdir()]


def test_smoke_test_passes_and_leaves_no_port_forward_behind(smoke):
    proc, pid_dir = smoke()
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert "model not on the public ingress (404)" in stderr
    routers = _pids(pid_dir)
    assert len(routers) == 2  # knative-local-gateway and istio-ingressgateway
    assert _gone(routers), [p for p in routers if _alive(p)]


def test_sigterm_mid_run_stops_every_port_forward(smoke):
    proc, pid_dir = smoke(hang="/v2/health/ready")
    deadline = time.monotonic() + 60
    while len(_pids(pid_dir)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)  # the script now waits in curl for the hanging model
    routers = _pids(pid_dir)
    assert len(routers) == 2 and all(_alive(p) for p in routers)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 143
    assert _gone(routers), [p for p in routers if _alive(p)]


HELPER = r"""
source "{common}"
# A function in the background: a subshell whose child is the real process, as `k port-forward`
# (a shell function) running a kubectl that starts a router.
serve() {{ sleep 300 & echo $! > "{child}"; wait; }}
{start}
for _ in $(seq 1 100); do [[ -s "{child}" ]] && break; sleep 0.05; done
{stop}
"""


@pytest.mark.parametrize(
    ("start", "stop", "survives"),
    [
        ("start_bg /dev/null serve", "stop_bg", False),
        ("serve >/dev/null 2>&1 & pid=$!", 'kill "$pid"; wait "$pid" 2>/dev/null || true', True),
    ],
    ids=["start_bg-stop_bg", "plain-kill-of-the-subshell"],
)
def test_stop_bg_kills_the_whole_group_where_a_plain_kill_leaves_the_child(
    tmp_path, start, stop, survives
):
    child = tmp_path / "child"
    script = HELPER.format(
        common=SCRIPTS / "lib" / "common.sh", child=child, start=start, stop=stop
    )
    subprocess.run(["bash", "-c", script], check=True, timeout=30)
    pid = int(child.read_text())
    try:
        assert _gone([pid], timeout_s=2) is not survives
    finally:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
