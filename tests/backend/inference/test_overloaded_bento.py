"""The backend's client against a real overloaded Bento: every 429 / RESOURCE_EXHAUSTED is waited
out (Retry-After over REST) and retried, so every image is detected in the end.

The Bento works on one image at a time (`CIRCLE_DETECTOR_MAX_IN_FLIGHT=1`), so six concurrent
calls overload it: all but one are refused on arrival, each time round.
"""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from backend.config import Settings
from backend.inference import ModelUnavailableError, with_retries
from backend.inference.v2 import V2Client
from tests.backend.helpers import circles_png
from tests.servers import running_bento

CALLS = 6
ARGS = {"width": 160, "height": 120, "score_threshold": 0.5, "max_detections": 20}
_IN_FLIGHT = re.compile(r'^circle_detector_refusals_total\{reason="in_flight"\} (\S+)$', re.M)


@pytest.fixture(scope="module")
def bento(bentoml_home):
    env = {"CIRCLE_DETECTOR_MAX_IN_FLIGHT": "1"}
    with running_bento(bentoml_home, env=env, standalone=True) as server:
        yield server


def refused(bento) -> float:
    found = _IN_FLIGHT.search(httpx.get(bento.metrics_url, timeout=10).text)
    return float(found.group(1)) if found else 0.0


@pytest.mark.parametrize("protocol", ["http", "grpc"])
async def test_every_refused_call_is_retried_until_it_is_served(bento, protocol) -> None:
    url = bento.http_url if protocol == "http" else bento.grpc_url
    client = V2Client(Settings(model_server_url=url, model_protocol=protocol, model_timeout_s=10))
    retried: list[Exception] = []
    png = circles_png(seed=3)
    before = refused(bento)
    try:
        results = await asyncio.gather(
            *(
                with_retries(
                    lambda: client.infer(png, **ARGS),
                    deadline_s=60,
                    backoff_s=0.05,
                    backoff_max_s=0.2,
                    on_retry=lambda _attempt, exc: retried.append(exc),
                )
                for _ in range(CALLS)
            )
        )
    finally:
        await client.close()
    assert len(results) == CALLS
    assert len({len(result.circles) for result, _ in results}) == 1  # same image, same circles
    assert sum(attempts for _, attempts in results) == CALLS + len(retried)
    assert retried and all(isinstance(e, ModelUnavailableError) for e in retried), retried[:2]
    assert any("429" in str(e) or "RESOURCE_EXHAUSTED" in str(e) for e in retried), retried[:2]
    if protocol == "http":  # REST carries Retry-After; gRPC has no header for it
        assert all(e.retry_after_s and e.retry_after_s >= 1 for e in retried), retried[:2]
    assert refused(bento) - before >= len(retried)
