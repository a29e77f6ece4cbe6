"""After an outage, a backlog of 100 pending images is detected within 15 s of the model server
being ready again (issue 12's target), with the default background-retry settings.

Real servers: `python -m backend` (SQLite) uploads 100 images while nothing listens at its
MODEL_SERVER_URL (each is kept, pending); then the real Bento starts at that address, and the
clock runs from the moment its /v2/health/ready answers 200 until no image is pending.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.backend.helpers import API, running_backend, start_bento_at, upload
from tests.backend.helpers import circles_png as image_bytes
from tests.servers import free_port, stop_bento

BACKLOG = 100
TARGET_S = 15.0


def count(client, status: str) -> int:
    return client.get(API, params={"status": status, "limit": 1}).json()["total"]


@pytest.mark.chaos
def test_a_backlog_of_100_is_detected_within_15_s_of_readiness(bentoml_home, tmp_path):
    http_port, grpc_port = free_port(), free_port()
    env = {
        "MODE": "real",
        "DATABASE_URL": "",
        "MODEL_SERVER_URL": f"127.0.0.1:{http_port}",
        "MODEL_RETRY_DEADLINE_S": "0",  # uploads during the outage answer 202 at once
        "PENDING_RETRY_INTERVAL_S": "60",  # the defaults: poll 1 s, 8 at once
    }
    images = [image_bytes(seed=5000 + i, size=(200, 160)) for i in range(BACKLOG)]
    with running_backend(tmp_path, env) as backend, backend.client() as c:

        def send(data: bytes) -> int:
            with backend.client() as own:
                return upload(own, data, score_threshold=0.0).status_code

        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(send, images)) == {202}
        assert count(c, "pending") == BACKLOG

        bento = start_bento_at(bentoml_home, http_port, grpc_port)
        ready_at = time.monotonic()
        try:
            while (left := count(c, "pending")) > 0:
                assert time.monotonic() - ready_at < 60, f"{left} still pending after 60 s"
                time.sleep(0.1)
            drained_s = time.monotonic() - ready_at
        finally:
            stop_bento(bento)
        assert count(c, "done") == BACKLOG
    print(f"\nbacklog of {BACKLOG} pending images detected {drained_s:.1f} s after readiness")
    assert drained_s < TARGET_S
