"""A request's scheduling parameters, Triton's schedule-policy extension: `priority` and `timeout`.

- `priority` (integer): the batcher's level, 1 most urgent, up to `PRIORITY_LEVELS`; 0 or
  absent is the default level `DEFAULT_PRIORITY`, the middle one, so that a caller can go ahead
  of default traffic (1 to 4) or yield to it (6 to 9).
- `timeout` (integer, microseconds, as Triton): the request is refused with `DeadlineExceeded`
  if it is still queued for the model that long after it arrived; 0 or absent: no deadline
  (the server's latency budget still applies). At most `MAX_TIMEOUT_US` (one day).

Both arrive as request parameters (REST JSON `parameters`, gRPC `InferParameter`s, which is
where tritonclient's `infer(priority=..., timeout=...)` puts them). A bad value is a 400
(`BadRequest`) naming the parameter.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .protocol.errors import BadRequest

PRIORITY_LEVELS = 9
#: The level of a request that gives no priority (or 0).
DEFAULT_PRIORITY = 5
#: Longest `timeout`: one day; more is surely a unit mistake (Triton's unit is microseconds).
MAX_TIMEOUT_US = 86_400 * 1_000_000


@dataclass(frozen=True)
class Schedule:
    """Where a request goes in the batcher's queue and until when it may wait there."""

    priority: int = DEFAULT_PRIORITY
    #: A `time.monotonic()` instant, or None: no deadline of its own.
    deadline: float | None = None


def schedule(parameters: Mapping[str, Any], now: float | None = None) -> Schedule:
    """The request's priority level and deadline (counted from `now`, by default this instant)."""
    priority = _integer(
        parameters, "priority", PRIORITY_LEVELS, f"0 (default) to {PRIORITY_LEVELS}, 1 highest"
    )
    timeout_us = _integer(
        parameters, "timeout", MAX_TIMEOUT_US, f"0 (none) to {MAX_TIMEOUT_US} microseconds"
    )
    start = time.monotonic() if now is None else now
    return Schedule(
        priority=priority or DEFAULT_PRIORITY,
        deadline=start + timeout_us / 1e6 if timeout_us else None,
    )


def _integer(parameters: Mapping[str, Any], name: str, highest: int, allowed: str) -> int:
    value = parameters.get(name, 0)
    if value is None:  # a gRPC parameter with no value set
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= highest:
        shown = repr(value) if not isinstance(value, int) or value.bit_length() < 128 else "huge"
        raise BadRequest(f"parameter '{name}' must be an integer from {allowed}, got {shown:.40}")
    return value
