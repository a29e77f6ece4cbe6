"""Admission by images in flight: refused at once past the limit, the limit from the busy rate."""

from __future__ import annotations

import time

import pytest

from bentos.circle_detector import load_shedding
from bentos.circle_detector.load_shedding import InFlightLimit
from bentos.circle_detector.protocol.errors import InFlightFull


def test_a_fixed_limit_refuses_past_it_and_gives_the_room_back() -> None:
    limit = InFlightLimit(1000, limit=3)
    with limit.admit(2):
        with limit.admit(1):
            assert limit.in_flight == 3
            refused = pytest.raises(InFlightFull, match="3 images are in flight, at most 3")
            with refused as full, limit.admit(1):
                pass
            assert full.value.http_status == 429 and full.value.retry_after_s >= 1
        with limit.admit(1):
            assert limit.in_flight == 3
    assert limit.in_flight == 0


def test_an_idle_runtime_takes_a_request_larger_than_the_limit() -> None:
    limit = InFlightLimit(1000, limit=2)
    with limit.admit(5):
        assert limit.in_flight == 5
        with pytest.raises(InFlightFull), limit.admit(1):
            pass


def test_urgent_requests_have_a_reserve() -> None:
    limit = InFlightLimit(1000, limit=8)
    with limit.admit(8):
        with pytest.raises(InFlightFull), limit.admit(1, priority=5):
            pass
        # a quarter of 8 more for a more urgent level, and no more
        with limit.admit(2, priority=1), pytest.raises(InFlightFull), limit.admit(1, priority=1):
            pass


def test_a_failed_request_gives_its_room_back() -> None:
    limit = InFlightLimit(1000, limit=1)
    with pytest.raises(ValueError), limit.admit(1):
        raise ValueError("decoding failed")
    assert limit.in_flight == 0


def test_the_derived_limit_is_the_busy_rate_over_half_the_budget(monkeypatch) -> None:
    """Unbounded until a window is measured; then about rate x budget / 2, at least the floor;
    idle time between requests does not lower the rate."""
    monkeypatch.setattr(load_shedding, "WINDOW_S", 0.05)
    limit = InFlightLimit(2000, floor=4)
    assert limit.limit is None
    for _ in range(6):
        with limit.admit(4):  # 4 images in about 10 ms: about 400 images per busy second
            time.sleep(0.01)
        time.sleep(0.02)  # idle
    assert limit.rate is not None and 150 < limit.rate < 420, limit.rate
    assert limit.limit == int(load_shedding.SHARE_OF_LATENCY * 2.0 * limit.rate)
    slow = InFlightLimit(10, floor=4)
    slow.rate = 1.0
    assert slow.limit == 4  # the floor


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError):
        InFlightLimit(1000, limit=-1)
