"""Report calls made by non-HTTP clients (tritonclient HTTP and gRPC) to Locust's statistics.

Locust times only its own HttpUser; any other client must fire `events.request` itself, once
per call, with the exception when it failed, so failures are counted too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from locust.env import Environment

T = TypeVar("T")


def timed_call(
    environment: Environment,
    request_type: str,
    name: str,
    call: Callable[[], T],
    size: Callable[[T], int] = lambda _: 0,
) -> T | None:
    """Run `call()`, fire one Locust request event for it; return its result (None on error)."""
    started = time.perf_counter()
    result: T | None = None
    exception: BaseException | None = None
    length = 0
    try:
        result = call()
        length = size(result)
    except Exception as exc:  # every client error is a failed request, never a crashed user
        exception = exc
    meta: dict[str, Any] = {
        "request_type": request_type,
        "name": name,
        "response_time": (time.perf_counter() - started) * 1000.0,
        "response_length": length,
        "exception": exception,
        "context": {},
    }
    environment.events.request.fire(**meta)
    return result
