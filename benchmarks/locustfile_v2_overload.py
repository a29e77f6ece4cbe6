"""Locust: V2 HTTP inference at a fixed offered rate, refusals told apart from failures.

Each user sends at most `BENCH_RATE_PER_USER` requests a second (open loop while the server
answers faster than that), so `users x rate` is the offered load whatever the server does. A 429
is recorded under the name `refused (429)` as a success, so that Locust's statistics give the
latency of the accepted requests (`accepted`) and the count of refusals separately; any other
error is a failure. `benchmarks/overload.py` drives it.

Settings: `BENCH_*` environment variables (`benchmarks/config.py`) and `BENCH_RATE_PER_USER`.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import tritonclient.http as httpclient
from locust import constant_throughput
from tritonclient.utils import InferenceServerException

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.locustfile_v2_http import OUTPUTS, V2HttpClient

ACCEPTED = "accepted"
REFUSED = "refused (429)"


class V2OverloadUser(V2HttpClient):
    wait_time = constant_throughput(float(os.environ.get("BENCH_RATE_PER_USER", "1")))

    def send(self) -> None:
        sample = self.samples[self.next_index % len(self.samples)]
        self.next_index += 1
        tensor = httpclient.InferInput("image", [1], "BYTES")
        tensor.set_data_from_numpy(np.array([sample.data], dtype=object), binary_data=True)
        outputs = [httpclient.InferRequestedOutput(n, binary_data=True) for n in OUTPUTS]
        started = time.perf_counter()
        name, exception = ACCEPTED, None
        try:
            self.client.infer(self.model, [tensor], outputs=outputs, headers=self.headers)
        except InferenceServerException as exc:
            if exc.status() == "429":
                name = REFUSED
            else:
                exception = exc
        except Exception as exc:  # every client error is a failed request, never a crashed user
            exception = exc
        meta: dict[str, Any] = {
            "request_type": "V2 HTTP",
            "name": name,
            "response_time": (time.perf_counter() - started) * 1000.0,
            "response_length": 0,
            "exception": exception,
            "context": {},
        }
        self.environment.events.request.fire(**meta)

    tasks = [send]
