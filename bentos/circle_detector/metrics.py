"""Prometheus metrics of the model server, the same whichever process serves it.

Under `bentoml serve` they join BentoML's own on its `/metrics` (prometheus_client's
multiprocess mode, which BentoML sets up for its workers); the single-process launcher serves
them on its own `/metrics`.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import Counter, Histogram

_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

BATCH_SIZE = Histogram(
    "circle_detector_batch_size", "Images per batch of the adaptive batcher",
    buckets=_BATCH_BUCKETS,
)  # fmt: skip
STAGE_SECONDS = Histogram(
    "circle_detector_stage_seconds",
    "Where inference time goes: prepare (decode, resize; per image), queue (wait for a batch; "
    "per image), network (with peak decoding; per batch), finish (refinement, score; per image); "
    "clients' requests only, as the statistics extension (warm-ups left out)",
    ["stage"],
    buckets=_SECONDS,
)
INFERENCES = Counter(
    "circle_detector_inferences", "V2 inference requests by outcome", ["model", "outcome"]
)
INFERENCE_SECONDS = Histogram(
    "circle_detector_inference_seconds",
    "V2 inference time in the server, decoding to response, successful requests",
    ["model"],
    buckets=_SECONDS,
)

REFUSALS = Counter(
    "circle_detector_refusals",
    "Requests refused to shed load, by reason: in_flight (the runtime's images in flight, on "
    "arrival), queue_full (the batcher's bounded queue), "
    "deadline (the request's timeout parameter passed while queued), latency_budget (queued "
    "past CIRCLE_DETECTOR_MAX_LATENCY_MS), admission (the memory budget stayed full)",
    ["reason"],
)


def count_refusal(reason: str) -> None:
    """One request refused (load_shedding.py, batching.py, admission.py)."""
    REFUSALS.labels(reason).inc()


def observe_batch(size: int, waits: Sequence[float], seconds: float) -> None:
    """The batcher's observer."""
    BATCH_SIZE.observe(size)
    STAGE_SECONDS.labels("network").observe(seconds)
    queue = STAGE_SECONDS.labels("queue")
    for wait in waits:
        queue.observe(wait)
