"""Per model version statistics in Triton's schema (the statistics extension).

`GET /v2/models/{m}[/versions/{v}]/stats` and gRPC `ModelStatistics` return what one
`ModelStats` per loaded version has counted since it was loaded:

- `inference_stats.success` / `fail`: client requests, and the nanoseconds each spent in the
  server from being routed to the model to its answer (warm-ups are not counted);
- `queue`: per successful request, the time its images waited for the batcher (from being
  submitted to the start of the first batch that ran one of them);
- `compute_input`: decoding and preparing its images; `compute_infer`: from its first batch's
  start to its last batch's end; `compute_output`: refinement, scoring and the output tensors;
- `inference_count`: images run by the network for clients, `execution_count`: network runs
  (batches) with at least one client image; `batch_stats`: per batch size (the client images
  of a run: a warm-up image sharing a run is not counted), the runs and their network
  nanoseconds (`compute_infer`; the input and output work happens per image outside the
  batch, so their batch figures count the runs with 0 ns).

So `sum(batch_size * compute_infer.count) == inference_count`, and with no failures
`inference_count` is the images of the `success.count` requests. The same events feed
`/metrics` (`metrics.py`): `circle_detector_inferences_total{outcome}` counts the requests,
`circle_detector_inference_seconds` their time, the `circle_detector_stage_seconds` histograms
the stages, and `circle_detector_batch_size` the runs; those count the warm-ups' runs too.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any


@dataclass
class Duration:
    """Triton's `StatisticDuration`: a count and cumulative nanoseconds."""

    count: int = 0
    ns: int = 0

    def add(self, ns: int, count: int = 1) -> None:
        self.count += count
        self.ns += max(0, int(ns))

    def as_dict(self) -> dict[str, int]:
        return {"count": self.count, "ns": self.ns}


@dataclass
class RequestTimes:
    """One successful request's nanoseconds in each phase."""

    queue: int
    compute_input: int
    compute_infer: int
    compute_output: int


class ModelStats:
    """Counters of one model version; recorded from the event loop and the network thread."""

    _PHASES = ("success", "fail", "queue", "compute_input", "compute_infer", "compute_output")

    def __init__(self, name: str, version: str) -> None:
        self.name = name
        self.version = version
        self._lock = threading.Lock()
        self._phases = {phase: Duration() for phase in self._PHASES}
        self._batches: dict[int, Duration] = {}
        self.inference_count = 0
        self.execution_count = 0
        #: Milliseconds since the epoch of the last successful request (0: none yet).
        self.last_inference = 0

    def succeeded(self, total_ns: int) -> None:
        """A client request answered (the dataplane counts it)."""
        with self._lock:
            self._phases["success"].add(total_ns)
            self.last_inference = int(time.time() * 1000)

    def measured(self, times: RequestTimes) -> None:
        """A successful request's phases (its runtime measures them)."""
        with self._lock:
            for phase in ("queue", "compute_input", "compute_infer", "compute_output"):
                self._phases[phase].add(getattr(times, phase))

    def failed(self, total_ns: int) -> None:
        with self._lock:
            self._phases["fail"].add(total_ns)

    def batch(self, images: int, infer_ns: int) -> None:
        """One network run holding `images` client images (warm-ups not counted)."""
        with self._lock:
            self.inference_count += images
            self.execution_count += 1
            self._batches.setdefault(images, Duration()).add(infer_ns)

    def as_dict(self) -> dict[str, Any]:
        """Triton's `ModelStatistics` as its HTTP endpoint writes it."""
        with self._lock:
            return {
                "name": self.name,
                "version": self.version,
                "last_inference": self.last_inference,
                "inference_count": self.inference_count,
                "execution_count": self.execution_count,
                "inference_stats": {p: d.as_dict() for p, d in self._phases.items()},
                "batch_stats": [
                    {
                        "batch_size": size,
                        "compute_input": {"count": d.count, "ns": 0},
                        "compute_infer": d.as_dict(),
                        "compute_output": {"count": d.count, "ns": 0},
                    }
                    for size, d in sorted(self._batches.items())
                ],
            }
