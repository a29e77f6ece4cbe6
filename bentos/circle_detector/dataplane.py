"""The transport-free core of the V2 protocol: metadata, readiness and `infer`.

REST and gRPC translate their messages to `protocol.types` and call this; nothing here knows
about HTTP or gRPC. Pre-processing (decoding, resizing) and refinement run on a thread pool
beside the network, which runs on its own thread behind the in-process adaptive batcher.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np

from . import metrics
from .admission import Budget, unbounded
from .batching import AdaptiveBatcher
from .model.detector import (
    DEFAULT_MAX_DETECTIONS,
    DEFAULT_SCORE_THRESHOLD,
    CircleDetector,
    Prepared,
    prepare,
)
from .model.image_text import DEFAULT_MAX_FILE_BYTES, image_file_and_pixels
from .model.imageio import DEFAULT_MAX_PIXELS, ImageDecodeError, decode_image
from .protocol import (
    BadRequest,
    InferInput,
    InferOutput,
    InferRequest,
    InferResponse,
    NotFound,
    NotReady,
)

SERVER_NAME = "circle-detector-bento"
EXTENSIONS = ["binary_tensor_data"]
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


def _server_version() -> str:
    try:
        return version("circle-detector")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0"


class DataPlane:
    """One model behind the V2 protocol, its network calls batched across requests."""

    def __init__(
        self,
        detector: CircleDetector,
        *,
        max_batch_size: int = 32,
        max_latency_ms: float = 30_000,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        max_images: int = 64,
        max_request_pixels: int | None = None,
        threads: int = 2,
        pixel_budget: Budget | None = None,
        ready_deadline_s: float = float("inf"),
        model_name: str | None = None,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    ) -> None:
        self.detector = detector
        #: The name it is served under (KServe's `--model_name`), by default the model's own.
        self.model_name = model_name or detector.info.name
        self.model_version = detector.info.version
        self.max_pixels = max_pixels
        self.max_images = max_images
        #: One BYTES element's image file, after base64 text is decoded.
        self.max_file_bytes = max_file_bytes
        #: All images of one request together (memory bound): 4 full-size images by default.
        self.max_request_pixels = max_request_pixels or 4 * max_pixels
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="v2-prep")
        self.batcher: AdaptiveBatcher[Prepared, np.ndarray] = AdaptiveBatcher(
            detector.candidates,
            max_batch_size=max_batch_size,
            max_latency_ms=max_latency_ms,
            observer=metrics.observe_batch,
        )
        self._ready = False
        self._started = time.monotonic()
        self.ready_deadline_s = ready_deadline_s
        #: Decoded pixels in flight across requests (unbounded when none is given).
        self.pixel_budget = pixel_budget or unbounded("decoded pixels")
        #: Set by the first inference a client got an answer to (not the warm-up's).
        self.answered = asyncio.Event()

    # -- health and metadata ------------------------------------------------------------------

    def live(self) -> bool:
        """Live unless the server has failed to become ready within its deadline."""
        return self._ready or self.not_ready_for() <= self.ready_deadline_s

    def not_ready_for(self) -> float:
        """Seconds since start-up without having become ready (0 once ready)."""
        return 0.0 if self._ready else time.monotonic() - self._started

    def liveness_error(self) -> str | None:
        """Why the server is not live (past its ready deadline), or None when it is."""
        if self.live():
            return None
        return (
            f"not ready {self.not_ready_for():.0f} s after start-up, past the deadline of "
            f"{self.ready_deadline_s:g} s (CIRCLE_DETECTOR_READY_DEADLINE_S)"
        )

    def ready(self) -> bool:
        return self._ready

    def set_ready(self, ready: bool) -> None:
        """Let the service withdraw readiness (e.g. a transport failed to start)."""
        self._ready = ready

    def server_metadata(self) -> dict[str, Any]:
        return {"name": SERVER_NAME, "version": _server_version(), "extensions": EXTENSIONS}

    def model_ready(self, name: str, version: str | None = None) -> bool:
        self.check_model(name, version)
        return self._ready

    def model_metadata(self, name: str, version: str | None = None) -> dict[str, Any]:
        self.check_model(name, version)
        return {
            "name": self.model_name,
            "versions": [self.model_version],
            "platform": PLATFORMS.get(self.detector.network.name, self.detector.network.name),
            "inputs": [{"name": INPUT_NAME, "datatype": "BYTES", "shape": [-1]}],
            "outputs": [
                {"name": name, "datatype": dt, "shape": shape}
                for name, (dt, shape) in OUTPUTS.items()
            ],
        }

    def check_model(self, name: str, version: str | None) -> None:
        if name != self.model_name:
            raise NotFound(f"unknown model '{name}'; this server serves '{self.model_name}'")
        if version is not None and version != self.model_version:
            raise NotFound(
                f"model '{name}' has no version '{version}'; available: '{self.model_version}'"
            )

    async def warm_up(self, side: int = 96) -> None:
        """Run one inference of a `side` x `side` image through the whole path (batcher
        included), then report ready."""
        # Within the configured pixel limits, so that a small limit does not fail the warm-up.
        side = max(8, min(side, math.isqrt(min(self.max_pixels, self.max_request_pixels))))
        yy, xx = np.mgrid[:side, :side]
        ring = np.abs(np.hypot(xx - side / 2, yy - side / 2) - side / 4) < 2
        image = np.where(ring, 0, 255).astype(np.uint8)[None]
        request = InferRequest(inputs=[InferInput(INPUT_NAME, "UINT8", list(image.shape), image)])
        await self._infer(request)
        self._ready = True

    async def close(self) -> None:
        self._ready = False
        await self.batcher.close()
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- inference ----------------------------------------------------------------------------

    async def infer(
        self, name: str, request: InferRequest, version: str | None = None
    ) -> InferResponse:
        self.check_model(name, version)
        if not self._ready:
            raise NotReady(f"model '{name}' is not ready yet")
        started = time.perf_counter()
        try:
            response = await self._infer(request)
        except Exception:
            metrics.INFERENCES.labels(self.model_name, "failure").inc()
            raise
        metrics.INFERENCES.labels(self.model_name, "success").inc()
        self.answered.set()
        metrics.INFERENCE_SECONDS.labels(self.model_name).observe(time.perf_counter() - started)
        return response

    async def _infer(self, request: InferRequest) -> InferResponse:
        # Base64 text of an image is decoded here: off the event loop, as the decoding is.
        loop = asyncio.get_running_loop()
        image, pixels = await loop.run_in_executor(self._pool, self._image_input, request)
        async with self.pixel_budget.hold(pixels):
            return await self._infer_images(request, image)

    async def _infer_images(
        self, request: InferRequest, image: list[tuple[int, bytes | np.ndarray]]
    ) -> InferResponse:
        score_threshold, max_detections = self._parameters(request.parameters)
        wanted = self._wanted_outputs(request)
        loop = asyncio.get_running_loop()
        prepared = await asyncio.gather(
            *(loop.run_in_executor(self._pool, self._prepare, i, item) for i, item in image)
        )
        candidates = await self.batcher.submit(prepared)
        circles = await asyncio.gather(
            *(
                loop.run_in_executor(self._pool, self._finish, p, rows, score_threshold)
                for p, rows in zip(prepared, candidates, strict=True)
            )
        )
        circles = [c[c[:, 3] >= score_threshold][:max_detections] for c in circles]
        outputs = [
            InferOutput(name, OUTPUTS[name][0], data, binary)
            for name, data in output_tensors(circles).items()
            if (binary := wanted.get(name)) is not None
        ]
        return InferResponse(self.model_name, self.model_version, outputs, id=request.id)

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

    def _prepare(self, index: int, item: bytes | np.ndarray) -> Prepared:
        with metrics.STAGE_SECONDS.labels("prepare").time():
            try:
                array = decode_image(item, self.max_pixels) if isinstance(item, bytes) else item
                return prepare(array, self.detector.max_side)
            except ImageDecodeError as exc:
                raise BadRequest(f"image {index}: {exc}") from None

    def _finish(self, p: Prepared, rows: np.ndarray, score_threshold: float) -> np.ndarray:
        with metrics.STAGE_SECONDS.labels("finish").time():
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
