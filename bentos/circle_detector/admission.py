"""Admission control: process-wide budgets of in-flight request bytes and decoded pixels.

Per-request limits bound one request; these bound all of them together, so that the worker's
memory has a ceiling whatever the concurrency. A request takes its share before it is read
(bytes) or decoded (pixels) and gives it back when answered; beyond the budget it waits, at
most `timeout_s`, then is refused with `Busy` (429 + `Retry-After`, RESOURCE_EXHAUSTED, like the
batcher's load-shedding refusals), counted in `/metrics`. A request larger than the whole
budget takes all of it, so it still runs, alone. Unlike the batcher's queue, the budgets wait
before refusing: memory frees within a few requests' time, and a big image should not be
refused because another one is being decoded.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from . import metrics
from .protocol import Busy


class Budget:
    """`capacity` units (bytes, pixels) shared by every in-flight request of the process."""

    def __init__(
        self,
        name: str,
        capacity: int,
        timeout_s: float,
        on_release: Callable[[int], None] | None = None,
    ) -> None:
        self.name = name
        self.capacity = capacity
        self.timeout_s = timeout_s
        self.in_use = 0
        self._on_release = on_release
        self._changed: asyncio.Condition | None = None

    @contextlib.asynccontextmanager
    async def hold(self, amount: int) -> AsyncIterator[int]:
        """Hold `amount` units (capped at the capacity) for the body of the `async with`."""
        amount = max(0, min(int(amount), self.capacity))
        if amount == 0:
            yield 0
            return
        if self._changed is None:
            self._changed = asyncio.Condition()
        changed = self._changed
        async with changed:
            try:
                await asyncio.wait_for(
                    changed.wait_for(lambda: self.in_use + amount <= self.capacity),
                    self.timeout_s,
                )
            except TimeoutError:
                metrics.count_refusal(Busy.reason)
                raise Busy(
                    f"the server is busy: its {self.name} budget ({self.capacity}) stayed full "
                    f"for {self.timeout_s:g} s; retry later"
                ) from None
            self.in_use += amount
        try:
            yield amount
        finally:
            async with changed:
                self.in_use -= amount
                changed.notify_all()
            if self._on_release is not None:
                self._on_release(amount)


def unbounded(name: str) -> Budget:
    """A budget that admits everything at once (a transport or dataplane built without one)."""
    return Budget(name, UNBOUNDED, timeout_s=1.0)


#: The capacity of `unbounded` budgets: more than any process can hold.
UNBOUNDED = 1 << 62
