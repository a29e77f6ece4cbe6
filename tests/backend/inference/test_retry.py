"""Retries with backoff up to a deadline. The callee is a local coroutine; the clock, sleep and
jitter are replaced by a fake clock so that the schedule is checked exactly, not timed."""

from __future__ import annotations

import types

import pytest

from backend.inference import (
    ModelMisconfiguredError,
    ModelRejectedError,
    ModelServerError,
    ModelUnavailableError,
    with_retries,
)
from backend.inference import retry as retry_module


class FakeClock:
    """monotonic() and sleep() over virtual time; records every sleep asked for."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(retry_module, "time", types.SimpleNamespace(monotonic=fake.monotonic))
    monkeypatch.setattr(retry_module, "asyncio", types.SimpleNamespace(sleep=fake.sleep))
    monkeypatch.setattr(retry_module, "random", types.SimpleNamespace(uniform=lambda a, b: 1.0))
    return fake


async def test_retries_until_success_and_counts_attempts(clock):
    calls = []

    async def flaky() -> str:
        calls.append(clock.now)
        if len(calls) < 3:
            raise ModelUnavailableError("down")
        return "ok"

    result, attempts = await with_retries(flaky, deadline_s=5, backoff_s=0.25, backoff_max_s=4)
    assert (result, attempts) == ("ok", 3)
    assert clock.sleeps == [0.25, 0.5]


async def test_backoff_doubles_is_capped_and_stops_at_the_deadline(clock):
    retries = []

    async def down() -> None:
        raise ModelUnavailableError("connection refused")

    with pytest.raises(ModelUnavailableError) as info:
        await with_retries(
            down,
            deadline_s=10,
            backoff_s=0.25,
            backoff_max_s=2,
            on_retry=lambda n, e: retries.append(n),
        )
    # 0.25 + 0.5 + 1 + 2 + 2 + 2 = 7.75; then 2.25 s are left, then the deadline
    assert clock.sleeps == [0.25, 0.5, 1, 2, 2, 2, 2, 0.25]
    assert clock.now == 10
    assert info.value.attempts == len(retries) + 1 == 9
    assert "connection refused" in str(info.value) and "gave up after 9 attempt(s)" in str(
        info.value
    )


async def test_zero_deadline_means_one_attempt(clock):
    async def down() -> None:
        raise ModelUnavailableError("down")

    with pytest.raises(ModelUnavailableError) as info:
        await with_retries(down, deadline_s=0, backoff_s=0.25, backoff_max_s=4)
    assert info.value.attempts == 1 and clock.sleeps == []


async def test_rejections_are_not_retried(clock):
    calls = []

    async def rejected() -> None:
        calls.append(1)
        raise ModelRejectedError("bad image")

    with pytest.raises(ModelRejectedError):
        await with_retries(rejected, deadline_s=5, backoff_s=0.01, backoff_max_s=0.01)
    assert calls == [1] and clock.sleeps == []


async def test_jitter_stays_within_a_quarter(monkeypatch):
    """With the real random module: each delay is within +-25% of the schedule."""
    fake = FakeClock()
    monkeypatch.setattr(retry_module, "time", types.SimpleNamespace(monotonic=fake.monotonic))
    monkeypatch.setattr(retry_module, "asyncio", types.SimpleNamespace(sleep=fake.sleep))

    async def down() -> None:
        raise ModelUnavailableError("down")

    with pytest.raises(ModelUnavailableError):
        await with_retries(down, deadline_s=100, backoff_s=1, backoff_max_s=8)
    for asked, planned in zip(fake.sleeps[:4], [1, 2, 4, 8], strict=True):
        assert 0.75 * planned <= asked <= 1.25 * planned


async def test_server_errors_get_their_few_attempts_even_without_a_deadline(clock):
    calls = []

    async def broken() -> None:
        calls.append(clock.now)
        raise ModelServerError("500")

    with pytest.raises(ModelRejectedError) as info:
        await with_retries(broken, deadline_s=0, backoff_s=0.25, backoff_max_s=4)
    assert len(calls) == 3 and info.value.attempts == 3 and clock.sleeps == [0.25, 0.5]
    assert "failed 3 time(s)" in str(info.value)


async def test_a_passing_server_error_is_retried_to_success(clock):
    calls = []

    async def once_broken() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise ModelServerError("500")
        return "ok"

    assert await with_retries(once_broken, deadline_s=0, backoff_s=0.25, backoff_max_s=4) == (
        "ok",
        2,
    )


async def test_misconfiguration_is_raised_at_once_with_its_attempt_count(clock):
    async def misconfigured() -> None:
        raise ModelMisconfiguredError("404 no such model")

    with pytest.raises(ModelMisconfiguredError) as info:
        await with_retries(misconfigured, deadline_s=30, backoff_s=0.25, backoff_max_s=4)
    assert info.value.attempts == 1 and clock.sleeps == []


async def test_retry_after_lengthens_the_backoff_and_a_late_one_gives_up(clock):
    async def busy() -> None:
        error = ModelUnavailableError("429")
        error.retry_after_s = 3.0
        raise error

    with pytest.raises(ModelUnavailableError) as info:
        await with_retries(busy, deadline_s=7, backoff_s=0.25, backoff_max_s=4)
    # waits 3, 3 (backoff 0.25, 0.5 are shorter); at 6 s only 1 s is left: give up
    assert clock.sleeps == [3.0, 3.0] and info.value.attempts == 3
