"""Locust: V2 inference on the Bento over gRPC (tritonclient's gRPC client).

`--host` is the gRPC address: `http://127.0.0.1:8081` (or a bare `127.0.0.1:8081`) in plaintext,
`https://...` or `grpcs://...` with TLS. `BENCH_HOST_HEADER` becomes the `:authority`, which is
how the Istio gateway routes gRPC to a KServe InferenceService.

    locust -f benchmarks/locustfile_v2_grpc.py --headless -u 8 -r 8 -t 30s \
        --host http://127.0.0.1:8081

Settings: `BENCH_*` environment variables (`benchmarks/config.py`).
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path
from typing import Any

import grpc.experimental.gevent as grpc_gevent
import numpy as np
import tritonclient.grpc as grpcclient
from locust import User, constant, task

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.config import settings, split_host
from benchmarks.corpus import from_settings
from benchmarks.locust_events import timed_call

# grpcio blocks the whole gevent hub unless told to cooperate; must run before any channel.
grpc_gevent.init_gevent()

OUTPUTS = ("num_detections", "boxes", "centers", "radii", "scores")
_start = itertools.count()
# Built at import, before Locust's clock starts (real images load, synthetic ones render).
SAMPLES = from_settings()


def _result_bytes(result: Any) -> int:
    return sum(result.as_numpy(name).nbytes for name in OUTPUTS)


class ExplicitlyClosedClient(grpcclient.InferenceServerClient):
    """tritonclient's client, closed only by `close()`, never by the garbage collector.

    tritonclient closes its channel again in `__del__`; under gevent, a channel close run by the
    collector can block forever (a CI run hung in grpc's `Channel._close` called from `__del__`).
    grpc itself leaves a channel open in `__del__`; `on_stop` closes it.
    """

    def __del__(self) -> None:
        pass


class V2GrpcUser(User):
    """A closed-loop V2 gRPC client with its own channel."""

    wait_time = constant(0)

    def on_start(self) -> None:
        s = settings()
        url, ssl = split_host(self.host)
        channel_args = [("grpc.default_authority", s.host_header)] if s.host_header else None
        self.client = ExplicitlyClosedClient(url, ssl=ssl, channel_args=channel_args)
        self.model = s.model
        self.timeout = s.timeout_s
        self.parameters = (
            None if s.score_threshold is None else {"score_threshold": s.score_threshold}
        )
        self.samples = SAMPLES
        self.next_index = next(_start)

    def on_stop(self) -> None:
        self.client.close()

    @task
    def infer(self) -> None:
        sample = self.samples[self.next_index % len(self.samples)]
        self.next_index += 1
        tensor = grpcclient.InferInput("image", [1], "BYTES")
        tensor.set_data_from_numpy(np.array([sample.data], dtype=object))
        outputs = [grpcclient.InferRequestedOutput(n) for n in OUTPUTS]

        def call() -> Any:
            return self.client.infer(
                self.model,
                [tensor],
                outputs=outputs,
                client_timeout=self.timeout,
                parameters=self.parameters,
            )

        timed_call(self.environment, "V2 gRPC", sample.name, call, _result_bytes)
