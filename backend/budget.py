"""Admission control: a process-wide budget of memory that requests reserve before using it.

Memory is bounded by design: each request says how much it will hold (bytes of a file, bytes
of decoded pixels) and waits until that much is free. The wait is bounded; past it the request
is refused with 503 + Retry-After instead of pushing the process past its memory limit. A
request bigger than the whole budget is let through alone (clamped), never refused for good.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from backend.errors import APIError

log = logging.getLogger(__name__)

#: glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: Allocations from this size up get their own mapping, returned to the OS when freed.
MMAP_THRESHOLD_BYTES = 1024 * 1024


def return_big_blocks_to_the_os() -> bool:
    """Make glibc map every block of 1 MiB or more on its own (PIL's image blocks are 16 MiB).

    By default glibc raises its mmap threshold each time a mapped block is freed (up to 32
    MiB), after which decoded images land in per-thread arenas that keep their memory: the
    process's RSS then grows past what the budgets hold (measured: a peak of 481 MiB instead of
    about 300 for the same load). A fixed threshold turns that off. False where it is not glibc.
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    ok = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
    ok = mallopt(_M_TRIM_THRESHOLD, 2 * MMAP_THRESHOLD_BYTES) == 1 and ok
    if not ok:
        log.warning("mallopt refused the mmap threshold; peak memory may exceed the budgets")
    return ok


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
