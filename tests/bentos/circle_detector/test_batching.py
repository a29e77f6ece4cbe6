"""The in-process adaptive batcher alone (batches, the bounded queue, priorities, deadlines),
then through a served Bento: 64 simultaneous infer calls (REST and gRPC mixed) for 5 rounds,
zero failures, merged into batches (batch sizes > 1 in the /metrics histogram)."""

from __future__ import annotations

import asyncio
import re
import threading
import time

import httpx
import numpy as np
import pytest
import tritonclient.grpc.aio as grpc_aio
import tritonclient.http.aio as http_aio
from prometheus_client import REGISTRY

from bentos.circle_detector.batching import AdaptiveBatcher
from bentos.circle_detector.protocol import NotReady, Overloaded
from bentos.circle_detector.protocol.errors import DeadlineExceeded, QueueFull
from tests.bentos.circle_detector.images import circles_image, encode, reference

MODEL = "circle-detector"
CONCURRENCY = 64
ROUNDS = 5
_BUCKET = re.compile(
    r"^circle_detector_batch_size_bucket\{(?P<labels>[^}]*)\} (?P<value>\S+)$", re.M
)


def batch_size_buckets(metrics_text: str) -> dict[float, float]:
    """Cumulative counts of the batcher's batch-size histogram, by upper bound."""
    buckets: dict[float, float] = {}
    for match in _BUCKET.finditer(metrics_text):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"]))
        bound = float(labels["le"])
        buckets[bound] = buckets.get(bound, 0.0) + float(match["value"])
    return buckets


class GatedModel:
    """A stand-in network that records its batches and can be held at a gate."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def __call__(self, items: list[int]) -> list[int]:
        self.entered.set()
        self.gate.wait(10)
        self.batches.append(list(items))
        if any(i < 0 for i in items):
            raise ValueError("negative")
        return [i * 10 for i in items]


def refusals(reason: str) -> float:
    """This process's count of refusals for `reason` (the counter /metrics exports)."""
    return REGISTRY.get_sample_value("circle_detector_refusals_total", {"reason": reason}) or 0.0


async def _hold(model: GatedModel, batcher: AdaptiveBatcher, first: int) -> asyncio.Task:
    """Start a request whose batch is held at the model's gate until `model.gate.set()`."""
    model.gate.clear()
    model.entered.clear()
    task = asyncio.create_task(batcher.submit([first]))
    await asyncio.get_running_loop().run_in_executor(None, model.entered.wait, 10)
    return task


async def test_a_lone_request_runs_at_once_in_a_batch_of_its_own():
    model = GatedModel()
    seen = []
    batcher = AdaptiveBatcher(
        model, max_batch_size=8, max_latency_ms=1000, observer=lambda n, w, s: seen.append(n)
    )
    assert await batcher.submit([1, 2]) == [10, 20]
    assert await batcher.submit([3]) == [30]
    assert model.batches == [[1, 2], [3]] and seen == [2, 1]
    await batcher.close()


async def test_requests_that_queue_while_the_network_runs_share_the_next_batches():
    model = GatedModel()
    batcher = AdaptiveBatcher(model, max_batch_size=4, max_latency_ms=10_000, max_queue_size=8)
    first = await _hold(model, batcher, 0)
    queued = [asyncio.create_task(batcher.submit([i])) for i in range(1, 7)]
    await asyncio.sleep(0.05)
    model.gate.set()
    assert await first == [0]
    assert [await t for t in queued] == [[i * 10] for i in range(1, 7)]
    assert model.batches == [[0], [1, 2, 3, 4], [5, 6]]  # in order, at most 4 at a time
    await batcher.close()


async def test_images_that_waited_past_the_latency_budget_are_refused():
    model = GatedModel()
    batcher = AdaptiveBatcher(model, max_batch_size=4, max_latency_ms=1)
    first = await _hold(model, batcher, 0)
    late = asyncio.create_task(batcher.submit([1, 2]))
    await asyncio.sleep(0.05)
    model.gate.set()
    assert await first == [0]
    with pytest.raises(Overloaded, match="overloaded"):
        await late
    assert await batcher.submit([3]) == [30]  # the queue is empty again: served at once
    await batcher.close()


async def test_past_the_queue_bound_a_request_is_refused_at_once_and_counted():
    model = GatedModel()
    batcher = AdaptiveBatcher(model, max_batch_size=4, max_latency_ms=10_000, max_queue_size=3)
    before = refusals("queue_full")
    first = await _hold(model, batcher, 0)  # running: not in the queue
    queued = [asyncio.create_task(batcher.submit([1, 2])), asyncio.create_task(batcher.submit([3]))]
    await asyncio.sleep(0.01)
    assert batcher.queued == 3
    started = time.perf_counter()
    with pytest.raises(QueueFull, match="queue holds 3 of at most 3 images") as refused:
        await batcher.submit([4])
    assert time.perf_counter() - started < 0.1, "refused at once, not after a wait"
    assert refused.value.http_status == 429 and refused.value.grpc_code == "RESOURCE_EXHAUSTED"
    assert refused.value.retry_after_s >= 1
    assert refusals("queue_full") == before + 1
    model.gate.set()
    assert await first == [0]
    assert [await t for t in queued] == [[10, 20], [30]]
    assert [4] not in model.batches and batcher.queued == 0
    assert await batcher.submit([5]) == [50]  # room again
    assert await batcher.submit([6, 7, 8, 9]) == [60, 70, 80, 90]  # over the bound, alone
    await batcher.close()


async def test_the_derived_queue_bound_is_half_the_latency_budget_at_the_measured_speed():
    batcher = AdaptiveBatcher(lambda items: items, max_batch_size=4, max_latency_ms=1000)
    assert batcher.queue_limit == 4  # nothing measured yet: one full batch
    batcher.image_seconds = 0.005
    assert batcher.queue_limit == 100  # 0.5 s of 5 ms images
    batcher.image_seconds = 1.0
    assert batcher.queue_limit == 4  # never below one full batch
    await batcher.close()


async def test_higher_priority_requests_are_batched_first_then_first_come_first_served():
    model = GatedModel()
    batcher = AdaptiveBatcher(model, max_batch_size=2, max_latency_ms=10_000, max_queue_size=6)
    first = await _hold(model, batcher, 0)
    order = [(9, 1), (5, 2), (1, 3), (5, 4), (1, 5), (2, 6)]  # (priority, item)
    tasks = []
    for priority, item in order:
        tasks.append(asyncio.create_task(batcher.submit([item], priority=priority)))
        await asyncio.sleep(0.005)  # arrival order is submission order
    model.gate.set()
    await first
    assert [await t for t in tasks] == [[item * 10] for _, item in order]
    assert model.batches == [[0], [3, 5], [6, 2], [4, 1]]
    await batcher.close()


async def test_a_full_queue_refuses_lower_priority_requests_to_make_room():
    model = GatedModel()
    batcher = AdaptiveBatcher(model, max_batch_size=4, max_latency_ms=10_000, max_queue_size=2)
    first = await _hold(model, batcher, 0)
    low_old = asyncio.create_task(batcher.submit([1], priority=9))
    await asyncio.sleep(0.005)
    low_new = asyncio.create_task(batcher.submit([2], priority=9))
    await asyncio.sleep(0.005)
    urgent = asyncio.create_task(batcher.submit([3], priority=1))
    await asyncio.sleep(0.005)
    with pytest.raises(QueueFull, match="higher priority"):
        await low_new  # refused before the gate opens: the newest of the least urgent
    with pytest.raises(QueueFull, match="queue holds 2 of at most 2"):
        await batcher.submit([4], priority=9)  # no lower priority to displace
    model.gate.set()
    await first
    assert await urgent == [30] and await low_old == [10]
    assert model.batches == [[0], [3, 1]]
    await batcher.close()


async def test_a_request_whose_deadline_passes_while_queued_is_refused_then_and_never_runs():
    model = GatedModel()
    batcher = AdaptiveBatcher(model, max_batch_size=4, max_latency_ms=10_000)
    before = refusals("deadline")
    first = await _hold(model, batcher, 0)
    patient = asyncio.create_task(batcher.submit([1], deadline=time.monotonic() + 10))
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded, match="timeout expired") as expired:
        await batcher.submit([2, 3], deadline=started + 0.05)
    waited = time.monotonic() - started
    assert 0.04 < waited < 1.0, "refused at its deadline, while the batch still runs"
    assert expired.value.grpc_code == "DEADLINE_EXCEEDED" and expired.value.http_status == 503
    assert refusals("deadline") == before + 1 and batcher.queued == 1
    model.gate.set()
    await first
    assert await patient == [10]
    assert model.batches == [[0], [1]]  # 2 and 3 never ran
    with pytest.raises(DeadlineExceeded):  # already past when submitted
        await batcher.submit([4], deadline=time.monotonic() - 0.001)
    assert [4] not in model.batches
    await batcher.close()


async def test_a_cancelled_request_is_skipped_and_a_failed_batch_fails_only_itself():
    model = GatedModel()
    batcher = AdaptiveBatcher(model, max_batch_size=8, max_latency_ms=10_000)
    first = await _hold(model, batcher, 0)
    gone = asyncio.create_task(batcher.submit([5]))
    await asyncio.sleep(0.01)
    gone.cancel()
    model.gate.set()
    await first
    with pytest.raises(ValueError, match="negative"):
        await batcher.submit([-1])
    assert await batcher.submit([7]) == [70]
    assert [5] not in model.batches
    await batcher.close()


async def test_close_refuses_what_is_queued_or_running():
    model = GatedModel()
    batcher = AdaptiveBatcher(model, max_batch_size=1, max_latency_ms=10_000)
    running = await _hold(model, batcher, 0)
    queued = asyncio.create_task(batcher.submit([1]))
    await asyncio.sleep(0.01)
    await batcher.close()
    model.gate.set()
    for task in (running, queued):
        with pytest.raises(NotReady, match="shutting down"):
            await task
    with pytest.raises(NotReady):
        await batcher.submit([2])


async def _rest_call(client, tensor_bytes: bytes) -> int:
    tensor = http_aio.InferInput("image", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([tensor_bytes], dtype=object))
    result = await client.infer(MODEL, [tensor], parameters={"score_threshold": 0.0})
    return int(result.as_numpy("num_detections")[0])


async def _grpc_call(client, tensor_bytes: bytes) -> int:
    tensor = grpc_aio.InferInput("image", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([tensor_bytes], dtype=object))
    result = await client.infer(MODEL, [tensor], parameters={"score_threshold": 0.0})
    return int(result.as_numpy("num_detections")[0])


async def test_concurrent_calls_all_succeed_and_are_batched(bento_server):
    image = circles_image(64, 64, 41)
    png = encode(image)
    expected = len(reference([image], 0.0, 100)[0])
    async with httpx.AsyncClient(timeout=10) as http:
        before = batch_size_buckets((await http.get(bento_server.metrics_url)).text)
    failures: list[BaseException] = []
    async with (
        http_aio.InferenceServerClient(bento_server.http_url, conn_limit=CONCURRENCY) as rest,
        grpc_aio.InferenceServerClient(bento_server.grpc_url) as grpc,
    ):
        for _ in range(ROUNDS):
            calls = [
                _rest_call(rest, png) if i % 2 else _grpc_call(grpc, png)
                for i in range(CONCURRENCY)
            ]
            results = await asyncio.gather(*calls, return_exceptions=True)
            failures += [r for r in results if isinstance(r, BaseException)]
            assert [r for r in results if not isinstance(r, BaseException)] == [expected] * (
                CONCURRENCY - sum(isinstance(r, BaseException) for r in results)
            )
    assert not failures, f"{len(failures)} of {CONCURRENCY * ROUNDS} calls failed: {failures[:3]}"
    async with httpx.AsyncClient(timeout=10) as http:
        after = batch_size_buckets((await http.get(bento_server.metrics_url)).text)
    batches = after[float("inf")] - before.get(float("inf"), 0.0)
    singles = after[1.0] - before.get(1.0, 0.0)
    assert 0 < batches < CONCURRENCY * ROUNDS, "requests were not merged into batches"
    assert singles < batches, "every batch held a single image"
