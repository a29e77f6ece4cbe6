"""Retry with exponential backoff up to a deadline, for a model server scaling from zero."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from backend.inference.base import ModelUnavailableError

T = TypeVar("T")


async def with_retries(
    call: Callable[[], Awaitable[T]],
    *,
    deadline_s: float,
    backoff_s: float,
    backoff_max_s: float,
    on_retry: Callable[[int, Exception], None] | None = None,
) -> tuple[T, int]:
    """Await `call()` until it succeeds or `deadline_s` has passed; returns (result, attempts).

    Only ModelUnavailableError is retried; anything else propagates at once. Delays double from
    `backoff_s` to `backoff_max_s` with jitter, and never sleep past the deadline.
    """
    start = time.monotonic()
    delay = backoff_s
    attempt = 0
    while True:
        attempt += 1
        try:
            return await call(), attempt
        except ModelUnavailableError as exc:
            remaining = deadline_s - (time.monotonic() - start)
            if remaining <= 0:
                final = ModelUnavailableError(
                    f"{exc} (gave up after {attempt} attempt(s) in {deadline_s:g} s)"
                )
                final.attempts = attempt
                raise final from exc
            if on_retry is not None:
                on_retry(attempt, exc)
            await asyncio.sleep(min(delay * random.uniform(0.75, 1.25), remaining))
            delay = min(delay * 2, backoff_max_s)
