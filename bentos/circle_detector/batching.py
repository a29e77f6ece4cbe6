"""Adaptive batching of the network calls, in process: no HTTP hop between a request and it.

Requests queue their images; whenever the network is free, one worker takes everything queued
(up to `max_batch_size` images) as one batch and runs it on the network's own thread. A lone
request therefore runs at once, and under load batches grow with the queue by themselves: the
policy of Triton's dynamic batcher with no queue delay. An image that has waited longer than
`max_latency_ms` when its batch would start is refused with `Overloaded`, so a saturated server
sheds load instead of queueing without bound.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from . import tracing
from .protocol import NotReady, Overloaded

T = TypeVar("T")
R = TypeVar("R")
logger = logging.getLogger(__name__)


class BatchObserver(Protocol):
    """Told about every batch that ran: its size, each image's queue wait, the run's seconds."""

    def __call__(self, size: int, waits: Sequence[float], seconds: float) -> None: ...


@dataclass
class _Job(Generic[T, R]):
    item: T
    future: asyncio.Future[R]
    queued: float = field(default_factory=time.perf_counter)
    #: The submitting request's span context (tracing.py), None when tracing is off.
    trace: Any = None


class AdaptiveBatcher(Generic[T, R]):
    """Runs `run_batch(items) -> results` (same length, same order) on batches of submitted
    items, one batch at a time, on a dedicated thread."""

    def __init__(
        self,
        run_batch: Callable[[list[T]], Sequence[R]],
        *,
        max_batch_size: int,
        max_latency_ms: float,
        observer: BatchObserver | None = None,
        thread_name: str = "network",
    ) -> None:
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        self.max_batch_size = max_batch_size
        self.max_latency_ms = max_latency_ms
        self._run_batch = run_batch
        self._observer = observer
        self._queue: deque[_Job[T, R]] = deque()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=thread_name)
        self._wakeup: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None
        self._running: list[_Job[T, R]] = []
        self._closed = False

    @property
    def queued(self) -> int:
        return len(self._queue)

    async def submit(self, items: Sequence[T]) -> list[R]:
        """Queue the items (one request's images) and wait for all their results."""
        if self._closed:
            raise NotReady("the server is shutting down")
        loop = asyncio.get_running_loop()
        if self._worker is None:
            self._wakeup = asyncio.Event()
            self._worker = loop.create_task(self._work(), name="adaptive-batcher")
        trace = tracing.current()
        jobs = [_Job[T, R](item, loop.create_future(), trace=trace) for item in items]
        self._queue.extend(jobs)
        assert self._wakeup is not None
        self._wakeup.set()
        try:
            return list(await asyncio.gather(*(job.future for job in jobs)))
        except BaseException:
            for job in jobs:  # a failed or cancelled request takes its other images away
                job.future.cancel()
            raise

    def _take(self) -> list[_Job[T, R]]:
        """The next batch: live jobs from the head of the queue; overdue ones are refused."""
        now = time.perf_counter()
        budget = self.max_latency_ms / 1000.0
        batch: list[_Job[T, R]] = []
        while self._queue and len(batch) < self.max_batch_size:
            job = self._queue.popleft()
            if job.future.done():  # cancelled: its request went away
                continue
            if now - job.queued > budget:
                job.future.set_exception(
                    Overloaded(
                        f"the server is overloaded: the request waited more than "
                        f"{self.max_latency_ms:g} ms for the model; retry later"
                    )
                )
                continue
            batch.append(job)
        return batch

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._wakeup is not None
        while True:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch = self._take()
            if not batch:
                continue
            started = time.perf_counter()
            self._running = batch
            try:
                with tracing.batch_span([job.trace for job in batch], len(batch)):
                    results = await loop.run_in_executor(
                        self._executor, self._run_batch, [job.item for job in batch]
                    )
            except Exception as exc:
                self._running = []
                logger.exception("a batch of %d failed", len(batch))
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
            self._running = []  # kept while running: a cancelled worker leaves it to close()
            seconds = time.perf_counter() - started
            for job, result in zip(batch, results, strict=True):
                if not job.future.done():
                    job.future.set_result(result)
            if self._observer is not None:
                self._observer(len(batch), [started - job.queued for job in batch], seconds)

    async def close(self) -> None:
        """Stop taking batches; queued requests are refused as the server shuts down."""
        self._closed = True
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        for job in [*self._running, *self._queue]:
            if not job.future.done():
                job.future.set_exception(NotReady("the server is shutting down"))
        self._queue.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)
