"""Adaptive batching of the network calls, in process: no HTTP hop between a request and it.

Requests queue their images; whenever the network is free, one worker takes the most urgent
queued images (up to `max_batch_size`) as one batch and runs it on the network's own thread. A
lone request therefore runs at once, and under load batches grow with the queue by themselves:
the policy of Triton's dynamic batcher with no queue delay.

Overload is refused early, never queued without bound (the refusals are `protocol.errors`):

- the queue is bounded (`max_queue_size` images; 0 derives it, see `queue_limit`): a request
  that would overfill it is refused at once with `QueueFull` (429 + `Retry-After`), unless it
  can take the place of queued requests of lower priority, which are refused instead (an
  empty queue takes any request: one larger than the bound runs, alone);
- a request's own deadline (its `timeout` parameter, `scheduling.py`) passing while it is
  queued refuses it then with `DeadlineExceeded`; it never runs;
- an image that has still waited longer than `max_latency_ms` when its batch would start is
  refused with `Overloaded` (429), the backstop for a queue sized on a speed that then dropped.

Priorities follow Triton: a smaller level is more urgent (1 first); within a level, first come
first served. Every refusal is counted in `/metrics` by its reason.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from . import metrics, tracing
from .protocol import NotReady, Overloaded
from .protocol.errors import DeadlineExceeded, ProtocolError, QueueFull
from .scheduling import DEFAULT_PRIORITY

T = TypeVar("T")
R = TypeVar("R")
logger = logging.getLogger(__name__)
#: A derived queue limit lets the queue hold what the network runs in this share of the
#: latency budget, leaving the rest to the request's own batch, decoding and refinement.
QUEUE_SHARE_OF_LATENCY = 0.5
#: Weight of the newest batch in the running per-image time (exponential average).
SPEED_WEIGHT = 0.2


class BatchObserver(Protocol):
    """Told about every batch that ran: its size, each image's queue wait, the run's seconds."""

    def __call__(self, size: int, waits: Sequence[float], seconds: float) -> None: ...


@dataclass(eq=False)
class _Request:
    """One `submit` call: its images share a priority, a deadline and a fate."""

    priority: int
    deadline: float | None
    seq: int
    jobs: list[_Job[Any, Any]] = field(default_factory=list)


@dataclass(eq=False)
class _Job(Generic[T, R]):
    item: T
    future: asyncio.Future[R]
    request: _Request
    queued: float = field(default_factory=time.perf_counter)
    #: The submitting request's span context (tracing.py), None when tracing is off.
    trace: Any = None
    #: In the queue and counted in `AdaptiveBatcher.waiting` (until taken or done).
    waiting: bool = True


class AdaptiveBatcher(Generic[T, R]):
    """Runs `run_batch(items) -> results` (same length, same order) on batches of submitted
    items, one batch at a time, on a dedicated thread."""

    def __init__(
        self,
        run_batch: Callable[[list[T]], Sequence[R]],
        *,
        max_batch_size: int,
        max_latency_ms: float,
        max_queue_size: int = 0,
        observer: BatchObserver | None = None,
        thread_name: str = "network",
    ) -> None:
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        if max_queue_size < 0:
            raise ValueError("max_queue_size must be 0 (derived) or positive")
        self.max_batch_size = max_batch_size
        self.max_latency_ms = max_latency_ms
        #: Fixed queue bound in images; 0: derived from the measured speed (`queue_limit`).
        self.max_queue_size = max_queue_size
        self._run_batch = run_batch
        self._observer = observer
        #: Heap of (priority, request seq, image index, job); done jobs are dropped when popped.
        self._queue: list[tuple[int, int, int, _Job[T, R]]] = []
        self._seq = itertools.count()
        #: Images queued and still wanted (`_queue` also holds refused or cancelled ones).
        self.waiting = 0
        #: Running average of the network's seconds per image (None until a batch ran).
        self.image_seconds: float | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=thread_name)
        self._wakeup: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None
        self._running: list[_Job[T, R]] = []
        self._closed = False

    @property
    def queued(self) -> int:
        return self.waiting

    @property
    def queue_limit(self) -> int:
        """Most images the queue may hold: `max_queue_size`, or when that is 0, what the
        network runs in half the latency budget at its measured speed per image (at least
        one full batch; one full batch until a batch has been measured)."""
        if self.max_queue_size:
            return self.max_queue_size
        if self.image_seconds is None:
            return self.max_batch_size
        budget_s = QUEUE_SHARE_OF_LATENCY * self.max_latency_ms / 1000.0
        return max(self.max_batch_size, int(budget_s / max(self.image_seconds, 1e-6)))

    def retry_after_s(self) -> int:
        """Whole seconds the queue needs to drain at the measured speed (at least 1)."""
        drain = self.waiting * (self.image_seconds or 0.0)
        return max(1, math.ceil(drain))

    async def submit(
        self,
        items: Sequence[T],
        *,
        priority: int = DEFAULT_PRIORITY,
        deadline: float | None = None,
    ) -> list[R]:
        """Queue the items (one request's images) and wait for all their results.

        `priority`: Triton's level, smaller first (`scheduling.DEFAULT_PRIORITY` when not
        given). `deadline`: a `time.monotonic()` instant; still queued then, the request is
        refused with `DeadlineExceeded` and none of its images runs.
        """
        try:
            return await self._submit(items, priority, deadline)
        except (QueueFull, Overloaded, DeadlineExceeded) as exc:
            metrics.count_refusal(exc.reason)
            raise

    async def _submit(self, items: Sequence[T], priority: int, deadline: float | None) -> list[R]:
        if self._closed:
            raise NotReady("the server is shutting down")
        if deadline is not None and time.monotonic() >= deadline:
            raise DeadlineExceeded("request timeout expired before the request was queued")
        loop = asyncio.get_running_loop()
        if self._worker is None:
            self._wakeup = asyncio.Event()
            self._worker = loop.create_task(self._work(), name="adaptive-batcher")
        self._make_room(len(items), priority)
        request = _Request(priority, deadline, next(self._seq))
        trace = tracing.current()
        for index, item in enumerate(items):
            job = _Job[T, R](item, loop.create_future(), request, trace=trace)
            job.future.add_done_callback(lambda _, job=job: self._left_queue(job))
            request.jobs.append(job)
            heapq.heappush(self._queue, (priority, request.seq, index, job))
        self.waiting += len(items)
        timer = None
        if deadline is not None:
            timer = loop.call_later(deadline - time.monotonic(), self._expire, request)
        assert self._wakeup is not None
        self._wakeup.set()
        try:
            return list(await asyncio.gather(*(job.future for job in request.jobs)))
        except BaseException:
            for job in request.jobs:  # a failed or cancelled request takes its other images away
                job.future.cancel()
            raise
        finally:
            if timer is not None:
                timer.cancel()

    def _make_room(self, count: int, priority: int) -> None:
        """Make room for `count` images of `priority`, refusing queued requests of lower
        priority (newest first) if that is enough; else refuse the newcomer. An empty queue
        takes any request, so that one larger than the bound still runs, alone."""
        limit = self.queue_limit
        excess = self.waiting + count - limit
        if excess <= 0 or self.waiting == 0:
            return
        if count <= limit:
            victims = self._lower_priority_requests(priority)
            if sum(_waiting_jobs(r) for r in victims) >= excess:
                for victim in victims:
                    if excess <= 0:
                        break
                    excess -= _waiting_jobs(victim)
                    self._refuse(
                        victim,
                        QueueFull(
                            f"the server is overloaded: a request of higher priority took this "
                            f"one's place in the full queue ({limit} images); retry later",
                            self.retry_after_s(),
                        ),
                    )
                return
        raise QueueFull(
            f"the server is overloaded: its queue holds {self.waiting} of at most {limit} "
            f"images waiting for the model, no room for {count} more; retry later",
            self.retry_after_s(),
        )

    def _lower_priority_requests(self, priority: int) -> list[_Request]:
        """Queued requests less urgent than `priority`: least urgent, then newest, first."""
        requests = {
            id(job.request): job.request
            for level, _, _, job in self._queue
            if level > priority and job.waiting
        }
        return sorted(requests.values(), key=lambda r: (-r.priority, -r.seq))

    def _refuse(self, request: _Request, error: ProtocolError) -> None:
        """Refuse a request's images that are still queued (running ones finish)."""
        for job in request.jobs:
            if job.waiting:
                self._left_queue(job)  # now: the room counts at once, not at the callback
                if not job.future.done():
                    job.future.set_exception(error)

    def _expire(self, request: _Request) -> None:
        """The request's deadline passed: refuse it if any of its images is still queued."""
        if any(job.waiting for job in request.jobs):
            self._refuse(
                request,
                DeadlineExceeded(
                    "request timeout expired: the request's 'timeout' parameter passed while "
                    "it waited for the model; it was not run"
                ),
            )

    def _left_queue(self, job: _Job[T, R]) -> None:
        if job.waiting:
            job.waiting = False
            self.waiting -= 1

    def _take(self) -> list[_Job[T, R]]:
        """The next batch: the most urgent live jobs; overdue ones are refused."""
        now = time.perf_counter()
        budget = self.max_latency_ms / 1000.0
        batch: list[_Job[T, R]] = []
        while self._queue and len(batch) < self.max_batch_size:
            job = heapq.heappop(self._queue)[3]
            self._left_queue(job)
            if job.future.done():  # cancelled, refused, or expired while queued
                continue
            deadline = job.request.deadline
            if deadline is not None and time.monotonic() >= deadline:
                self._expire(job.request)  # its timer is due but has not run yet
                job.future.set_exception(DeadlineExceeded("request timeout expired"))
                continue
            if now - job.queued > budget:
                job.future.set_exception(
                    Overloaded(
                        f"the server is overloaded: the request waited more than "
                        f"{self.max_latency_ms:g} ms for the model; retry later",
                        self.retry_after_s(),
                    )
                )
                continue
            batch.append(job)
        return batch

    def _measured(self, size: int, seconds: float) -> None:
        per_image = seconds / size
        if self.image_seconds is None:
            self.image_seconds = per_image
        else:
            self.image_seconds += SPEED_WEIGHT * (per_image - self.image_seconds)

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
            self._measured(len(batch), seconds)
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
        for job in [*self._running, *(entry[3] for entry in self._queue)]:
            if not job.future.done():
                job.future.set_exception(NotReady("the server is shutting down"))
        self._queue.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)


def _waiting_jobs(request: _Request) -> int:
    return sum(job.waiting for job in request.jobs)
