"""SIGKILL of the model server in the middle of uploads (issue 12's chaos tests): a real
backend (`MODE=real`, SQLite and PostgreSQL) against a real Bento whose whole process tree is
killed while 8 clients upload; the Bento then comes back at the same address. Run by
`make chaos`.

Asserts: every upload is answered 201 (detected) or 202 (kept, pending) in JSON, never 5xx;
storage and database agree at every point (no row without its file, no orphan); and once the
model is back every image is detected, none lost, none left pending.
"""

from __future__ import annotations

import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest

from tests.backend.consistency import audit
from tests.backend.helpers import API, circles_png, running_backend, start_bento_at, upload
from tests.servers import free_port, stop_bento

pytestmark = pytest.mark.chaos
UPLOADS = 48


def _kill_tree(pid: int) -> None:
    """SIGKILL a process and all its descendants (BentoML's worker has its own group)."""
    parent = psutil.Process(pid)
    processes = [parent, *parent.children(recursive=True)]
    for process in processes:
        process.send_signal(signal.SIGKILL)
    psutil.wait_procs(processes, timeout=10)


def _count(client, status: str) -> int:
    return client.get(API, params={"status": status, "limit": 1}).json()["total"]


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_a_model_server_killed_mid_uploads_loses_nothing(bentoml_home, tmp_path, request, database):
    http_port, grpc_port = free_port(), free_port()
    url = request.getfixturevalue("postgres_database_factory")() if database == "postgres" else ""
    env = {
        "MODE": "real",
        "DATABASE_URL": url,
        "MODEL_SERVER_URL": f"127.0.0.1:{http_port}",
        "MODEL_RETRY_DEADLINE_S": "1",  # an upload waits at most this for the model, then 202
        "PENDING_RETRY_INTERVAL_S": "60",  # the tests' default turns the background retry off
        "PENDING_RETRY_POLL_S": "0.5",
    }
    images = [circles_png(seed=7000 + i, size=(320, 240)) for i in range(UPLOADS)]
    answers: list[tuple[int, str, str]] = []
    lock = threading.Lock()
    bento = start_bento_at(bentoml_home, http_port, grpc_port)
    try:
        with running_backend(tmp_path, env) as backend, backend.client() as c:

            def send(data: bytes) -> None:
                with backend.client() as own:
                    r = upload(own, data)
                with lock:
                    answers.append((r.status_code, r.headers.get("content-type", ""), r.text))

            with ThreadPoolExecutor(8) as pool:
                futures = [pool.submit(send, data) for data in images]
                while len(answers) < UPLOADS // 4:  # a quarter answered: kill mid-stream
                    time.sleep(0.02)
                _kill_tree(bento.process.pid)
                for future in futures:
                    future.result()
            statuses = sorted({status for status, _, _ in answers})
            assert set(statuses) <= {201, 202}, answers
            assert all(ctype.startswith("application/json") for _, ctype, _ in answers)
            assert 202 in statuses, "the kill came after every upload: nothing was tested"
            assert audit(backend).problems == {}  # consistent while the model is down

            bento = start_bento_at(bentoml_home, http_port, grpc_port)
            deadline = time.monotonic() + 60
            while _count(c, "pending") > 0:
                assert time.monotonic() < deadline, f"{_count(c, 'pending')} still pending"
                time.sleep(0.2)
            assert _count(c, "done") == UPLOADS
            assert _count(c, "failed") == 0
            found = audit(backend)
            assert found.problems == {} and len(found.images) == UPLOADS
        pending = sum(status == 202 for status, _, _ in answers)
        print(f"\n{database}: answers {statuses}, {pending} kept pending, all {UPLOADS} detected")
    finally:
        stop_bento(bento)
