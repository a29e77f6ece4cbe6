"""Locust: V2 inference over HTTP, tritonclient with binary tensors (or base64 JSON text).

One encoded image per request (`image`, BYTES [1]), outputs asked for as binary tensors; every
call fires a Locust request event (`locust_events.timed_call`), named by image.

    locust -f benchmarks/locustfile_v2_http.py --headless -u 8 -r 8 -t 30s \
        --host http://127.0.0.1:3000
    # the cluster-local InferenceService through Knative's local gateway, by its Host:
    kubectl -n istio-system port-forward svc/knative-local-gateway 18080:80 &
    BENCH_HOST_HEADER=circle-detector.circle-detector.svc.cluster.local \
        locust -f benchmarks/locustfile_v2_http.py --headless -u 8 -r 8 -t 30s \
        --host http://127.0.0.1:18080

Settings: `BENCH_*` environment variables (`benchmarks/config.py`).
"""

from __future__ import annotations

import base64
import itertools
import sys
from pathlib import Path
from typing import Any

import numpy as np
import tritonclient.http as httpclient
from locust import User, constant, task

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.config import settings, split_host
from benchmarks.corpus import from_settings
from benchmarks.locust_events import timed_call

OUTPUTS = ("num_detections", "boxes", "centers", "radii", "scores")
_start = itertools.count()
# Built at import, before Locust's clock starts (real images load, synthetic ones render).
SAMPLES = from_settings()


def _result_bytes(result: Any) -> int:
    return sum(result.as_numpy(name).nbytes for name in OUTPUTS)


class V2HttpClient(User):
    """A V2 client with its own connection (tritonclient's HTTP client is gevent-based, so it
    cooperates with Locust's event loop); no task of its own."""

    abstract = True
    wait_time = constant(0)

    def on_start(self) -> None:
        s = settings()
        url, ssl = split_host(self.host)
        self.client = httpclient.InferenceServerClient(
            url, ssl=ssl, connection_timeout=s.timeout_s, network_timeout=s.timeout_s
        )
        self.model = s.model
        headers = {"Host": s.host_header} if s.host_header else {}
        if s.bytes_encoding == "base64":  # KServe parses a body as JSON only when told so
            headers["Content-Type"] = "application/json"
        self.headers = headers or None
        self.parameters = (
            None if s.score_threshold is None else {"score_threshold": s.score_threshold}
        )
        self.samples = SAMPLES
        self.binary = s.bytes_encoding == "binary"
        self.next_index = next(_start)

    def on_stop(self) -> None:
        self.client.close()


class V2HttpUser(V2HttpClient):
    """Closed loop: the next request as soon as the last is answered."""

    @task
    def infer(self) -> None:
        sample = self.samples[self.next_index % len(self.samples)]
        self.next_index += 1
        tensor = httpclient.InferInput("image", [1], "BYTES")
        data = sample.data if self.binary else base64.b64encode(sample.data)
        tensor.set_data_from_numpy(np.array([data], dtype=object), binary_data=self.binary)
        outputs = [httpclient.InferRequestedOutput(n, binary_data=self.binary) for n in OUTPUTS]

        def call() -> Any:
            return self.client.infer(
                self.model,
                [tensor],
                outputs=outputs,
                headers=self.headers,
                parameters=self.parameters,
            )

        timed_call(self.environment, "V2 HTTP", sample.name, call, _result_bytes)
