"""Locust: uploads to the backend, `POST /api/v1/images/` (multipart `file`), the full user path.

Each upload is stored, sent to the model server and its circles saved; 201 is a success, any
other status a failure (a 202 means the model server did not answer in time).

    locust -f benchmarks/locustfile_backend.py --headless -u 4 -r 4 -t 30s \
        --host http://127.0.0.1:8000
    # through the Istio gateway, by the backend's virtual host:
    BENCH_HOST_HEADER=circle-detector.example.com locust -f benchmarks/locustfile_backend.py \
        --headless -u 4 -r 4 -t 30s --host http://127.0.0.1:18080

Settings: `BENCH_*` environment variables (`benchmarks/config.py`).
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

from locust import HttpUser, constant, task

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.config import settings
from benchmarks.corpus import from_settings

API = "/api/v1/images/"
_start = itertools.count()
# Built at import, before Locust's clock starts (real images load, synthetic ones render).
SAMPLES = from_settings()


class BackendUploadUser(HttpUser):
    """One uploader in a closed loop, cycling through the corpus from its own offset."""

    wait_time = constant(0)

    def on_start(self) -> None:
        s = settings()
        self.samples = SAMPLES
        self.next_index = next(_start)
        self.headers = {"X-API-Key": s.api_key} if s.api_key else {}
        if s.host_header:
            self.headers["Host"] = s.host_header
        self.params = {} if s.score_threshold is None else {"score_threshold": s.score_threshold}
        self.timeout = s.timeout_s

    @task
    def upload(self) -> None:
        sample = self.samples[self.next_index % len(self.samples)]
        self.next_index += 1
        with self.client.post(
            API,
            files={"file": (sample.name, sample.data, "application/octet-stream")},
            params=self.params,
            headers=self.headers,
            name=f"{API} [{sample.name}]",
            timeout=self.timeout,
            catch_response=True,
        ) as response:
            if response.status_code != 201:
                response.failure(f"{response.status_code}: {response.text[:200]}")
