"""Load shedding at the door: a bound on the images a runtime works on at once.

The batcher's bounded queue (batching.py) only sees images that were already decoded, and on a
CPU the decoding and refinement pool is what saturates first: refused there, a request has
already spent the pool's time, and the accepted ones queue behind the refused ones' decoding.
So a request is admitted or refused here, before any work: at most `limit` images in flight
(from arrival to answer), else `InFlightFull` at once (429 + `Retry-After`, gRPC
RESOURCE_EXHAUSTED).

The limit follows Little's law: the images the runtime completes in `share` of the latency
budget at its measured rate, so an accepted request waits about that long. The rate is measured
only while the runtime is busy (images done per second of time with work in flight): at low load
that is one over a request's latency, a low estimate that the limit is never near; as load rises
it climbs to the real capacity. A fixed `limit` replaces the estimate. Requests more urgent than
the default `priority` may use a reserve of another quarter of the limit; an idle runtime takes
any request, so one larger than the limit still runs, alone.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator

from . import metrics
from .protocol.errors import InFlightFull
from .scheduling import DEFAULT_PRIORITY

#: Share of the latency budget the images in flight may take at the measured rate.
SHARE_OF_LATENCY = 0.5
#: Busy seconds per rate sample, and the newest sample's weight in the running rate.
WINDOW_S = 0.5
RATE_WEIGHT = 0.3
#: Extra room, as a share of the limit, for requests more urgent than the default priority.
URGENT_RESERVE = 0.25


class InFlightLimit:
    """Admission by images in flight; `limit` 0 derives it (module docstring)."""

    def __init__(self, latency_budget_ms: float, *, limit: int = 0, floor: int = 1) -> None:
        if limit < 0 or floor < 1:
            raise ValueError("limit must be 0 (derived) or positive, floor at least 1")
        self.latency_budget_s = latency_budget_ms / 1000.0
        self.fixed = limit
        #: The derived limit's least value (a full batch: the network's own unit of work).
        self.floor = floor
        self.in_flight = 0
        #: Images completed per busy second (None until a window was measured).
        self.rate: float | None = None
        self._mark: float | None = None  # last change while busy; None while idle
        self._busy = 0.0
        self._done = 0

    @property
    def limit(self) -> int | None:
        """Most images in flight; None (unbounded) until the rate is known, when derived."""
        if self.fixed:
            return self.fixed
        if self.rate is None:
            return None
        return max(self.floor, int(SHARE_OF_LATENCY * self.latency_budget_s * self.rate))

    @contextlib.contextmanager
    def admit(self, images: int, priority: int = DEFAULT_PRIORITY) -> Iterator[None]:
        """Hold `images` slots for the body of the `with`, or raise `InFlightFull` now."""
        images = max(1, images)
        limit = self.limit
        if limit is not None and self.in_flight:
            room = limit + (int(URGENT_RESERVE * limit) if priority < DEFAULT_PRIORITY else 0)
            if self.in_flight + images > room:
                metrics.count_refusal(InFlightFull.reason)
                raise InFlightFull(
                    f"the server is overloaded: {self.in_flight} images are in flight, at most "
                    f"{room} at once, no room for {images} more; retry later",
                    self.retry_after_s(),
                )
        self._account()
        self.in_flight += images
        try:
            yield
        finally:
            self._account()
            self.in_flight -= images
            self._done += images
            if not self.in_flight:
                self._mark = None

    def retry_after_s(self) -> int:
        """Whole seconds the images in flight take at the measured rate (at least 1)."""
        return max(1, math.ceil(self.in_flight / self.rate)) if self.rate else 1

    def _account(self) -> None:
        """Add the busy time since the last change; close a window when it is long enough."""
        now = time.perf_counter()
        if self._mark is not None:
            self._busy += now - self._mark
        self._mark = now
        if self._busy >= WINDOW_S and self._done:
            sample = self._done / self._busy
            self.rate = (
                sample if self.rate is None else self.rate + RATE_WEIGHT * (sample - self.rate)
            )
            self._busy, self._done = 0.0, 0
