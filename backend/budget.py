"""Admission control: a process-wide budget of memory that requests reserve before using it.

Memory is bounded by design: each request says how much it will hold (bytes of a file, bytes
of decoded pixels) and waits until that much is free. The wait is bounded; past it the request
is refused with 503 + Retry-After instead of pushing the process past its memory limit. A
request bigger than the whole budget is let through alone (clamped), never refused for good.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from backend.errors import APIError


class MemoryBudget:
    """`capacity` units shared by every request of the process, first come first served."""

    def __init__(self, name: str, capacity: int, wait_s: float, retry_after_s: int = 5) -> None:
        self.name = name
        self.capacity = capacity
        self.wait_s = wait_s
        self.retry_after_s = retry_after_s
        self.used = 0
        self.peak = 0
        self._changed = asyncio.Condition()

    @asynccontextmanager
    async def reserve(self, amount: int) -> AsyncIterator[int]:
        """Hold `amount` (clamped to the capacity) for the block; 503 when it stays taken."""
        amount = max(0, min(int(amount), self.capacity))
        async with self._changed:
            try:
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: self.used + amount <= self.capacity),
                    self.wait_s,
                )
            except TimeoutError:
                raise APIError(
                    503,
                    f"the server is busy ({self.name} budget in use); try again shortly",
                    headers={"Retry-After": str(self.retry_after_s)},
                ) from None
            self.used += amount
            self.peak = max(self.peak, self.used)
        try:
            yield amount
        finally:
            async with self._changed:
                self.used -= amount
                self._changed.notify_all()
