"""Retries with backoff up to a deadline (no server needed: the callee is a local coroutine)."""

from __future__ import annotations

import itertools
import time

import pytest

from backend.inference import ModelRejectedError, ModelUnavailableError, with_retries


async def test_retries_until_success_and_counts_attempts():
    calls = []

    async def flaky() -> str:
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise ModelUnavailableError("down")
        return "ok"

    result, attempts = await with_retries(flaky, deadline_s=5, backoff_s=0.01, backoff_max_s=0.02)
    assert (result, attempts, len(calls)) == ("ok", 3, 3)


async def test_gives_up_at_the_deadline_with_the_attempt_count():
    retries = []

    async def down() -> None:
        raise ModelUnavailableError("connection refused")

    start = time.monotonic()
    with pytest.raises(ModelUnavailableError) as info:
        await with_retries(
            down,
            deadline_s=0.3,
            backoff_s=0.02,
            backoff_max_s=0.05,
            on_retry=lambda n, e: retries.append(n),
        )
    elapsed = time.monotonic() - start
    assert 0.3 <= elapsed < 1.0
    assert info.value.attempts == len(retries) + 1 >= 3
    assert "connection refused" in str(info.value) and "gave up after" in str(info.value)


async def test_backoff_grows_and_is_capped():
    stamps = []

    async def down() -> None:
        stamps.append(time.monotonic())
        raise ModelUnavailableError("down")

    with pytest.raises(ModelUnavailableError):
        await with_retries(down, deadline_s=0.9, backoff_s=0.05, backoff_max_s=0.2)
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert gaps[1] > gaps[0] * 1.1  # doubled (jitter is +-25%)
    assert max(gaps) < 0.2 * 1.25 + 0.05


async def test_rejections_are_not_retried():
    calls = []

    async def rejected() -> None:
        calls.append(1)
        raise ModelRejectedError("bad image")

    with pytest.raises(ModelRejectedError):
        await with_retries(rejected, deadline_s=5, backoff_s=0.01, backoff_max_s=0.01)
    assert calls == [1]
