"""Retries that know what can succeed: each error kind has its own policy.

| error (see base.py) | policy |
|---|---|
| ModelUnavailableError (refused, timeout, 429, 502-504) | backoff until `deadline_s` |
| ModelServerError (500, gRPC INTERNAL) | at most `server_error_attempts` calls, then rejected |
| ModelRejectedError, ModelMisconfiguredError (4xx) | raised at once: no retry |

Delays double from `backoff_s` to `backoff_max_s` with +-25% jitter (so replicas that lost the
model together do not come back in lockstep), wait at least a 429's Retry-After (giving up at
once when that is past the deadline), and never sleep past the deadline.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from backend.inference.base import ModelRejectedError, ModelServerError, ModelUnavailableError

T = TypeVar("T")

#: Calls for one image that the model server answers 500 (MODEL_SERVER_ERROR_ATTEMPTS).
SERVER_ERROR_ATTEMPTS = 3


async def with_retries(
    call: Callable[[], Awaitable[T]],
    *,
    deadline_s: float,
    backoff_s: float,
    backoff_max_s: float,
    server_error_attempts: int = SERVER_ERROR_ATTEMPTS,
    on_retry: Callable[[int, Exception], None] | None = None,
) -> tuple[T, int]:
    """Await `call()` until it succeeds or its error's policy gives up; returns (result, attempts).

    Gives up with ModelUnavailableError (transient errors past `deadline_s`) or
    ModelRejectedError (anything refused, or `server_error_attempts` 500s); either carries
    `attempts`. `deadline_s=0` means one attempt for transient errors (the background retry
    watches readiness itself), while a 500 still gets its few attempts.
    """
    start = time.monotonic()
    delay = backoff_s
    attempt = 0
    server_errors = 0
    while True:
        attempt += 1
        try:
            return await call(), attempt
        except ModelServerError as exc:
            server_errors += 1
            if server_errors >= server_error_attempts:
                raise _gave_up(
                    ModelRejectedError,
                    f"{exc} (failed {server_errors} time(s): given up on this image)",
                    attempt,
                ) from exc
            wait, error = delay * random.uniform(0.75, 1.25), exc
        except ModelRejectedError as exc:
            exc.attempts = attempt
            raise
        except ModelUnavailableError as exc:
            remaining = deadline_s - (time.monotonic() - start)
            if remaining <= 0 or (exc.retry_after_s or 0) > remaining:  # too late, said the server
                raise _gave_up(
                    ModelUnavailableError,
                    f"{exc} (gave up after {attempt} attempt(s) in {deadline_s:g} s)",
                    attempt,
                ) from exc
            wait = min(max(delay * random.uniform(0.75, 1.25), exc.retry_after_s or 0), remaining)
            error = exc
        if on_retry is not None:
            on_retry(attempt, error)
        await asyncio.sleep(wait)
        delay = min(delay * 2, backoff_max_s)


def _gave_up(kind: type[Exception], message: str, attempts: int) -> Exception:
    """The error that ends the retries, carrying how many calls were made."""
    final = kind(message)
    final.attempts = attempts  # type: ignore[attr-defined]
    return final
