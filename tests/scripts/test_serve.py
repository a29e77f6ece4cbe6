"""`scripts/serve.py`, the README's main command: both servers up, and nothing left behind.

Each test runs the real script (a real `bentoml serve` and a real backend on free ports) and
checks that every process it started is gone when it ends, however it ends.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture
def serve(bentoml_home: Path, tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """serve.py started, with both servers ready."""
    backend_port = free_port()
    argv = [sys.executable, "scripts/serve.py", "--timeout", "120"]
    argv += ["--bento-port", str(free_port()), "--grpc-port", str(free_port())]
    argv += ["--backend-port", str(backend_port)]
    env = {**os.environ, "BENTOML_HOME": str(bentoml_home), "DATA_DIR": str(tmp_path)}
    env.pop("MODEL_SERVER_URL", None)
    process = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        _wait_ready(f"http://127.0.0.1:{backend_port}/health/ready", process)
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)


def _wait_ready(url: str, process: subprocess.Popen[str], timeout_s: float = 150.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[0]
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    pytest.fail(f"{url} not ready after {timeout_s} s")


def _tree(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


def _gone(processes: list[psutil.Process], timeout_s: float = 20.0) -> list[psutil.Process]:
    _, alive = psutil.wait_procs(processes, timeout=timeout_s)
    return alive


def test_ctrl_c_stops_both_servers_and_exits_0(serve) -> None:
    process = serve
    children = _tree(process.pid)
    assert len(children) >= 2  # the Bento's processes and the backend
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=40)
    assert process.returncode == 0, output
    assert "Traceback" not in output
    assert "error:" not in output
    assert _gone(children) == []


def test_a_server_that_dies_stops_the_other_and_exits_1(serve) -> None:
    process = serve
    children = _tree(process.pid)
    backend = next(p for p in children if "backend" in " ".join(p.cmdline()))
    backend.kill()
    output, _ = process.communicate(timeout=40)
    assert process.returncode == 1
    assert "error: the backend exited" in output
    assert _gone(children) == []


def test_a_killed_script_takes_its_servers_with_it(serve) -> None:
    process = serve
    children = _tree(process.pid)
    process.kill()  # SIGKILL: no handler runs, only PR_SET_PDEATHSIG
    process.wait(timeout=10)
    assert _gone(children, timeout_s=30) == []
