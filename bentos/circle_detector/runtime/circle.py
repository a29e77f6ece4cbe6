"""The circle detector behind the runtime interface: its V2 tensors and the work of a request.

A request's way through it: it is admitted or refused on arrival by the images in flight
(`load_shedding.InFlightLimit`, before any work); the `image` input is checked and sized from
the files' headers (`_image_input`, before any decoding), holds its pixels of the process-wide
pixel budget, is decoded and prepared on a thread pool (`_prepare`), goes through the adaptive
batcher to the network (`batching.AdaptiveBatcher`, the network on its own thread), and is
refined, scored and padded into the output tensors (`_finish`, `output_tensors`).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from .. import metrics
from ..admission import Budget, unbounded
from ..batching import AdaptiveBatcher
from ..load_shedding import InFlightLimit
from ..model.detector import (
    DEFAULT_MAX_DETECTIONS,
    DEFAULT_SCORE_THRESHOLD,
    CircleDetector,
    Prepared,
    prepare,
)
from ..model.image_text import DEFAULT_MAX_FILE_BYTES, image_file_and_pixels
from ..model.imageio import DEFAULT_MAX_PIXELS, ImageDecodeError, decode_image
from ..protocol import BadRequest, InferInput, InferOutput, InferRequest, InferResponse
from ..scheduling import DEFAULT_PRIORITY, PRIORITY_LEVELS, Schedule, schedule
from ..stats import ModelStats, RequestTimes
from .interface import TensorSpec

INPUT_NAME = "image"
#: Output name -> (datatype, shape in metadata).
OUTPUTS: dict[str, tuple[str, list[int]]] = {
    "num_detections": ("INT32", [-1]),
    "boxes": ("FP32", [-1, -1, 4]),
    "centers": ("FP32", [-1, -1, 2]),
    "radii": ("FP32", [-1, -1]),
    "scores": ("FP32", [-1, -1]),
}
MAX_DETECTIONS_LIMIT = 10_000
#: Runtime -> the V2 metadata's `platform` (Triton's names).
PLATFORMS = {"onnxruntime": "onnxruntime_onnx", "torch": "pytorch_libtorch"}


class CircleRuntime:
    """One loaded version of the circle detector, its network calls batched across requests."""

    inputs = (TensorSpec(INPUT_NAME, "BYTES", (-1,)),)
    outputs = tuple(TensorSpec(name, dt, tuple(shape)) for name, (dt, shape) in OUTPUTS.items())

    def __init__(
        self,
        detector: CircleDetector,
        *,
        name: str | None = None,
        version: str | None = None,
        max_batch_size: int = 32,
        max_latency_ms: float = 30_000,
        max_queue_size: int = 0,
        max_in_flight: int = 0,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        max_images: int = 64,
        max_request_pixels: int | None = None,
        threads: int = 2,
        pixel_budget: Budget | None = None,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    ) -> None:
        self.detector = detector
        #: The name it is served under (KServe's `--model_name`), by default the model's own.
        self.name = name or detector.info.name
        #: Its version: the version folder's name in a model repository, else the model's own.
        self.version = version or detector.info.version
        self.platform = PLATFORMS.get(detector.network.name, detector.network.name)
        self.max_pixels = max_pixels
        self.max_images = max_images
        #: One BYTES element's image file, after base64 text is decoded.
        self.max_file_bytes = max_file_bytes
        #: All images of one request together (memory bound): 4 full-size images by default.
        self.max_request_pixels = max_request_pixels or 4 * max_pixels
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="v2-prep")
        self.preprocess_threads = threads
        self.batcher: AdaptiveBatcher[Prepared, np.ndarray] = AdaptiveBatcher(
            self.run_batch,
            max_batch_size=max_batch_size,
            max_latency_ms=max_latency_ms,
            max_queue_size=max_queue_size,
            observer=self._observe_batch,
        )
        self.in_flight = InFlightLimit(max_latency_ms, limit=max_in_flight, floor=max_batch_size)
        #: Decoded pixels in flight across requests (unbounded when none is given).
        self.pixel_budget = pixel_budget or unbounded("decoded pixels")
        self._warm = False
        self._closed = False
        self.stats = ModelStats(self.name, self.version)
        #: Images submitted to the batcher (by id) -> (start, end) ns of the run that took
        #: them; the warm-ups' ids, which the statistics leave out.
        self._submitted: dict[int, tuple[int, int] | None] = {}
        self._warming: set[int] = set()
        #: Client images in the batch that ran last (batches run one at a time).
        self._batch_clients = 0
        self._lock = threading.Lock()

    def ready(self) -> bool:
        return self._warm and not self._closed

    async def warm_up(self, full_size: bool = False) -> None:
        """One inference of a ring image through the whole path (batcher included), small or
        at the network's largest input, within the configured pixel limits (so that a small
        limit does not fail the warm-up)."""
        side = self.detector.max_side if full_size else 96
        side = max(8, min(side, math.isqrt(min(self.max_pixels, self.max_request_pixels))))
        yy, xx = np.mgrid[:side, :side]
        ring = np.abs(np.hypot(xx - side / 2, yy - side / 2) - side / 4) < 2
        image = np.where(ring, 0, 255).astype(np.uint8)[None]
        request = InferRequest(inputs=[InferInput(INPUT_NAME, "UINT8", list(image.shape), image)])
        await self._infer(request, counted=False)
        self._warm = True

    async def close(self) -> None:
        self._closed = True
        await self.batcher.close()
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- inference ----------------------------------------------------------------------------

    def run_batch(self, items: list[Prepared]) -> list[np.ndarray]:
        """The batcher's run function: the network on one batch, timed for the statistics."""
        started = time.perf_counter_ns()
        results = self.detector.candidates(items)
        ended = time.perf_counter_ns()
        clients = 0
        with self._lock:
            for item in items:
                key = id(item)
                if key in self._submitted:
                    self._submitted[key] = (started, ended)
                    clients += key not in self._warming
        if clients:
            self.stats.batch(clients, ended - started)
        self._batch_clients = clients
        return results

    def _observe_batch(self, size: int, waits: Sequence[float], seconds: float) -> None:
        """The batch that just ran, to /metrics unless it was warm-ups only (as the stats)."""
        if self._batch_clients:
            metrics.observe_batch(size, waits, seconds)

    def config(self) -> dict[str, Any]:
        """Triton's model configuration fields of this runtime (JSON form)."""
        network = self.detector.network
        batcher = self.batcher
        gpu = "CUDAExecutionProvider" in getattr(network, "providers", ())
        settings = {
            "runtime": network.name,
            "runtime_threads": network.threads,
            "preprocess_threads": self.preprocess_threads,
            "max_latency_ms": batcher.max_latency_ms,
            "max_in_flight": self.in_flight.limit or 0,
            "max_pixels": self.max_pixels,
            "max_images": self.max_images,
            "max_request_pixels": self.max_request_pixels,
            "max_side": self.detector.max_side,
        }
        return {
            "backend": "onnxruntime" if network.name == "onnxruntime" else "pytorch",
            "runtime": network.name,
            "max_batch_size": batcher.max_batch_size,
            "input": [t.as_config() for t in self.inputs],
            "output": [t.as_config() for t in self.outputs],
            "dynamic_batching": {
                # a batch starts as soon as the network is free: no queue delay
                "max_queue_delay_microseconds": 0,
                "priority_levels": PRIORITY_LEVELS,
                "default_priority_level": DEFAULT_PRIORITY,
                "default_queue_policy": {
                    "timeout_action": "REJECT",
                    "default_timeout_microseconds": int(batcher.max_latency_ms * 1000),
                    "allow_timeout_override": True,
                    "max_queue_size": batcher.queue_limit,
                },
            },
            "instance_group": [
                {"name": f"{self.name}_0", "kind": "KIND_GPU" if gpu else "KIND_CPU", "count": 1}
            ],
            "parameters": {k: {"string_value": str(v)} for k, v in settings.items()},
        }

    async def infer(self, request: InferRequest) -> InferResponse:
        return await self._infer(request, counted=True)

    async def _infer(self, request: InferRequest, counted: bool) -> InferResponse:
        """`counted`: a client's request (its phases go to the statistics), not a warm-up."""
        plan = schedule(request.parameters)  # priority, and the deadline from now (timeout)
        admitted = (
            self.in_flight.admit(self._image_count(request), plan.priority)
            if counted
            else contextlib.nullcontext()  # a warm-up is never refused
        )
        with admitted:
            # Base64 text of an image is decoded here: off the event loop, as the decoding is.
            loop = asyncio.get_running_loop()
            image, pixels = await loop.run_in_executor(self._pool, self._image_input, request)
            async with self.pixel_budget.hold(pixels):
                return await self._infer_images(request, image, plan, counted)

    def _image_count(self, request: InferRequest) -> int:
        """The images a request claims (its `image` input's first dimension, at least 1, at
        most `max_images`), before it is checked: what it is admitted for."""
        tensor = request.input(INPUT_NAME)  # the codecs made its shape non-negative integers
        first = tensor.shape[0] if tensor is not None and tensor.shape else 1
        return max(1, min(first, self.max_images))

    async def _infer_images(
        self,
        request: InferRequest,
        image: list[tuple[int, bytes | np.ndarray]],
        plan: Schedule,
        counted: bool,
    ) -> InferResponse:
        score_threshold, max_detections = self._parameters(request.parameters)
        wanted = self._wanted_outputs(request)
        loop = asyncio.get_running_loop()
        began = time.perf_counter_ns()
        prepared = await asyncio.gather(
            *(
                loop.run_in_executor(self._pool, self._prepare, i, item, counted)
                for i, item in image
            )
        )
        submitted = time.perf_counter_ns()
        keys = [id(p) for p in prepared]
        with self._lock:
            self._submitted.update(dict.fromkeys(keys))
            if not counted:
                self._warming.update(keys)
        try:
            candidates = await self.batcher.submit(
                prepared, priority=plan.priority, deadline=plan.deadline
            )
        finally:
            with self._lock:
                runs = [run for key in keys if (run := self._submitted.pop(key, None))]
                self._warming.difference_update(keys)
        returned = time.perf_counter_ns()
        circles = await asyncio.gather(
            *(
                loop.run_in_executor(self._pool, self._finish, p, rows, score_threshold, counted)
                for p, rows in zip(prepared, candidates, strict=True)
            )
        )
        circles = [c[c[:, 3] >= score_threshold][:max_detections] for c in circles]
        outputs = [
            InferOutput(name, OUTPUTS[name][0], data, binary)
            for name, data in output_tensors(circles).items()
            if (binary := wanted.get(name)) is not None
        ]
        if counted:
            first = min((run[0] for run in runs), default=returned)
            last = max((run[1] for run in runs), default=returned)
            self.stats.measured(
                RequestTimes(
                    queue=first - submitted,
                    compute_input=submitted - began,
                    compute_infer=last - first,
                    compute_output=time.perf_counter_ns() - returned,
                )
            )
        return InferResponse(self.name, self.version, outputs, id=request.id)

    def _image_input(
        self, request: InferRequest
    ) -> tuple[list[tuple[int, bytes | np.ndarray]], int]:
        """The images to infer and their pixels in all (read from headers, not decoded)."""
        for tensor in request.inputs:
            if tensor.name != INPUT_NAME:
                raise BadRequest(f"unknown input '{tensor.name}'; the model takes '{INPUT_NAME}'")
        tensor = request.input(INPUT_NAME)
        if tensor is None:
            raise BadRequest(f"missing input '{INPUT_NAME}'")
        if len(request.inputs) > 1:
            raise BadRequest(f"input '{INPUT_NAME}' is given {len(request.inputs)} times")
        if len(tensor.shape) == 0 or tensor.shape[0] == 0:
            raise BadRequest(f"input '{INPUT_NAME}' is an empty batch")
        if tensor.shape[0] > self.max_images:
            raise BadRequest(
                f"input '{INPUT_NAME}' has {tensor.shape[0]} images; the limit is {self.max_images}"
            )
        if tensor.datatype == "BYTES":
            if len(tensor.shape) != 1:
                raise BadRequest(
                    f"BYTES input '{INPUT_NAME}' must have shape [N] (one encoded file per image), "
                    f"got {tensor.shape}"
                )
            files = [self._image_file(i, b) for i, b in enumerate(tensor.data)]
            total = sum(pixels for _, pixels in files)
            self._check_request_pixels(total)
            return [(i, file) for i, (file, _) in enumerate(files)], total
        if tensor.datatype in ("UINT8", "UINT16"):
            if len(tensor.shape) not in (3, 4) or (
                len(tensor.shape) == 4 and tensor.shape[3] not in (1, 3, 4)
            ):
                raise BadRequest(
                    f"{tensor.datatype} input '{INPUT_NAME}' must have shape [N, H, W] or "
                    f"[N, H, W, C] with C in 1, 3, 4; got {tensor.shape}"
                )
            pixels = math.prod(tensor.shape[1:3])
            if pixels > self.max_pixels:
                raise BadRequest(
                    f"images are {tensor.shape[2]}x{tensor.shape[1]} = {pixels} pixels, "
                    f"over the limit of {self.max_pixels}"
                )
            self._check_request_pixels(pixels * tensor.shape[0])
            return list(enumerate(tensor.data)), pixels * tensor.shape[0]
        raise BadRequest(
            f"input '{INPUT_NAME}' must be BYTES (encoded files) or UINT8 (pixels), "
            f"got {tensor.datatype}"
        )

    def _image_file(self, index: int, element: bytes) -> tuple[bytes, int]:
        """Raw image bytes or base64 text of them (KServe's convention) as the file itself,
        with its pixels from the header."""
        try:
            return image_file_and_pixels(element, self.max_file_bytes)
        except ImageDecodeError as exc:
            raise BadRequest(f"image {index}: {exc}") from None

    def _check_request_pixels(self, total: int) -> None:
        if total > self.max_request_pixels:
            raise BadRequest(
                f"the request's images have {total} pixels in all, over the per-request limit "
                f"of {self.max_request_pixels}; send fewer or smaller images per request"
            )

    def _prepare(self, index: int, item: bytes | np.ndarray, counted: bool = True) -> Prepared:
        with _timed("prepare", counted):
            try:
                array = decode_image(item, self.max_pixels) if isinstance(item, bytes) else item
                return prepare(array, self.detector.max_side)
            except ImageDecodeError as exc:
                raise BadRequest(f"image {index}: {exc}") from None

    def _finish(
        self, p: Prepared, rows: np.ndarray, score_threshold: float, counted: bool = True
    ) -> np.ndarray:
        with _timed("finish", counted):
            return self.detector.finish(p, rows, score_threshold)

    @staticmethod
    def _parameters(params: dict[str, Any]) -> tuple[float, int]:
        threshold = params.get("score_threshold", DEFAULT_SCORE_THRESHOLD)
        if isinstance(threshold, bool) or not isinstance(threshold, int | float):
            raise BadRequest("parameter 'score_threshold' must be a number")
        if not 0.0 <= threshold <= 1.0:
            raise BadRequest(f"parameter 'score_threshold' must be in [0, 1], got {threshold}")
        limit = params.get("max_detections", DEFAULT_MAX_DETECTIONS)
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise BadRequest("parameter 'max_detections' must be an integer")
        if not 0 <= limit <= MAX_DETECTIONS_LIMIT:
            raise BadRequest(
                f"parameter 'max_detections' must be in [0, {MAX_DETECTIONS_LIMIT}], got {limit}"
            )
        return float(threshold), int(limit)

    @staticmethod
    def _wanted_outputs(request: InferRequest) -> dict[str, bool]:
        default = bool(request.parameters.get("binary_data_output", False))
        if request.outputs is None:
            return dict.fromkeys(OUTPUTS, default)
        wanted = {}
        for out in request.outputs:
            if out.name not in OUTPUTS:
                raise BadRequest(f"unknown output '{out.name}'; the model has {', '.join(OUTPUTS)}")
            wanted[out.name] = default if out.binary is None else out.binary
        return wanted


def _timed(stage: str, counted: bool) -> contextlib.AbstractContextManager[Any]:
    """A stage's timer for /metrics; none for a warm-up, which the statistics leave out too."""
    return metrics.STAGE_SECONDS.labels(stage).time() if counted else contextlib.nullcontext()


def output_tensors(circles: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """Pad per-image (K_i, 4) rows of (cx, cy, r, score) to the V2 output tensors."""
    n = len(circles)
    k = max((len(c) for c in circles), default=0)
    padded = np.zeros((n, k, 4), dtype=np.float32)
    for i, c in enumerate(circles):
        padded[i, : len(c)] = c
    cx, cy, r = padded[..., 0], padded[..., 1], padded[..., 2]
    return {
        "num_detections": np.array([len(c) for c in circles], dtype=np.int32),
        "boxes": np.stack([cx - r, cy - r, cx + r, cy + r], axis=-1).astype(np.float32),
        "centers": padded[..., :2].copy(),
        "radii": r.copy(),
        "scores": padded[..., 3].copy(),
    }
