"""The backend's logic in one place: store an upload, run detection, re-detect, delete.

Consistency rules:
- A file and the rows pointing at it change together. The `Blob` row of a file is locked
  (SELECT ... FOR UPDATE; SQLite serialises transactions anyway) while the file is written or
  removed, the file is written before the transaction commits and removed if it fails, and a
  deleted file is first moved aside and only purged after the commit (restored otherwise).
- Nothing uploaded is lost: the image is committed before the model server is called, so when
  the model server stays down the image remains, marked `pending`, for `POST .../detect`.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import anyio.to_thread
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from backend.annotate import annotated_png
from backend.config import Settings
from backend.errors import APIError
from backend.imagecheck import ImageInfo, inspect_image
from backend.inference import (
    InferenceClient,
    ModelRejectedError,
    ModelUnavailableError,
    with_retries,
)
from backend.metrics import Metrics
from backend.models import Blob, Detection, Image, ImageStatus
from backend.schemas import Timings
from backend.storage import Storage, content_key
from backend.uploads import Upload

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DetectParams:
    """Per-request overrides of the detection defaults."""

    score_threshold: float
    max_detections: int


class ImageService:
    """Uploads, detections and deletions, shared by every route."""

    def __init__(
        self, settings: Settings, storage: Storage, client: InferenceClient, metrics: Metrics
    ) -> None:
        self.settings = settings
        self.storage = storage
        self.client = client
        self.metrics = metrics

    def params(self, score_threshold: float | None, max_detections: int | None) -> DetectParams:
        """Request values, or the configured defaults."""
        return DetectParams(
            self.settings.score_threshold if score_threshold is None else score_threshold,
            self.settings.max_detections if max_detections is None else max_detections,
        )

    async def create(self, upload: Upload, params: DetectParams) -> tuple[Image, Timings]:
        """Validate, store (file + rows together), then detect; returns the image and timings."""
        t0 = time.perf_counter()
        if len(upload.data) > self.settings.max_upload_bytes:
            raise APIError(413, f"upload too large: the limit is {self.settings.max_upload_bytes}")
        info = await anyio.to_thread.run_sync(
            inspect_image, upload.data, self.settings.max_image_pixels
        )
        t1 = time.perf_counter()
        image = await self._store(upload, info, params)
        t2 = time.perf_counter()
        await self._detect(image, upload.data, params)
        t3 = time.perf_counter()
        timings = Timings(
            validate_ms=(t1 - t0) * 1000,
            store_ms=(t2 - t1) * 1000,
            inference_ms=image.inference_ms if image.status == ImageStatus.DONE else None,
            total_ms=(t3 - t0) * 1000,
        )
        return image, timings

    async def _store(self, upload: Upload, info: ImageInfo, params: DetectParams) -> Image:
        key = content_key(upload.data)
        async with in_transaction() as conn:
            _, created = await Blob.get_or_create(
                sha256=key,
                defaults={"size_bytes": len(upload.data), "content_type": info.content_type},
                using_db=conn,
            )
            await Blob.filter(sha256=key).using_db(conn).select_for_update().first()
            try:
                await self.storage.put(key, upload.data)
                return await Image.create(
                    id=uuid.uuid4(),
                    blob_id=key,
                    filename=upload.filename,
                    content_type=info.content_type,
                    format=info.format,
                    width=info.width,
                    height=info.height,
                    size_bytes=len(upload.data),
                    status=ImageStatus.PENDING,
                    score_threshold=params.score_threshold,
                    max_detections=params.max_detections,
                    using_db=conn,
                )
            except BaseException:
                if created:  # the file is ours alone: remove it while the blob row is locked
                    token = await self.storage.discard(key)
                    if token:
                        await self.storage.purge(token)
                raise

    async def detect(self, image: Image, params: DetectParams) -> Image:
        """Run detection again on a stored image (pending, failed, or a new model version)."""
        try:
            data = await self.storage.get(image.blob_id)  # type: ignore[attr-defined]
        except FileNotFoundError as exc:
            raise APIError(500, "the stored file of this image is missing") from exc
        await self._detect(image, data, params)
        return image

    async def _detect(self, image: Image, data: bytes, params: DetectParams) -> None:
        """Call the model server (with retries) and record the outcome on `image`."""
        s = self.settings

        def on_retry(attempt: int, exc: Exception) -> None:
            self.metrics.model_retries.inc()
            log.warning("model server attempt %d failed: %s", attempt, exc)

        try:
            result, attempts = await with_retries(
                lambda: self.client.infer(
                    data,
                    width=image.width,
                    height=image.height,
                    score_threshold=params.score_threshold,
                    max_detections=params.max_detections,
                ),
                deadline_s=s.model_retry_deadline_s,
                backoff_s=s.model_retry_backoff_s,
                backoff_max_s=s.model_retry_backoff_max_s,
                on_retry=on_retry,
            )
        except ModelUnavailableError as exc:
            await self._mark(image, ImageStatus.PENDING, str(exc), exc.attempts, params)
            return
        except ModelRejectedError as exc:
            await self._mark(image, ImageStatus.FAILED, str(exc), 1, params)
            return
        self.metrics.inference.observe(result.inference_ms / 1000)
        async with in_transaction() as conn:
            locked = await Image.filter(id=image.id).using_db(conn).select_for_update().first()
            if locked is None:
                raise APIError(404, "the image was deleted while detection ran")
            await Detection.filter(image_id=image.id).using_db(conn).delete()
            await Detection.bulk_create(
                [
                    Detection(
                        image_id=image.id,
                        rank=rank,
                        x1=c.x1,
                        y1=c.y1,
                        x2=c.x2,
                        y2=c.y2,
                        cx=c.cx,
                        cy=c.cy,
                        radius=c.radius,
                        score=c.score,
                    )
                    for rank, c in enumerate(result.circles)
                ],
                using_db=conn,
            )
            image.status = ImageStatus.DONE
            image.error = None
            image.attempts = locked.attempts + attempts
            image.model_name = result.model_name
            image.model_version = result.model_version
            image.score_threshold = params.score_threshold
            image.max_detections = params.max_detections
            image.num_detections = len(result.circles)
            image.inference_ms = result.inference_ms
            image.detected_at = datetime.now(UTC)
            await image.save(using_db=conn)
        self.metrics.inference_outcomes.labels("done").inc()
        self.metrics.objects.inc(len(result.circles))

    async def _mark(
        self, image: Image, status: ImageStatus, error: str, attempts: int, params: DetectParams
    ) -> None:
        log.warning("image %s left %s: %s", image.id, status.value, error)
        self.metrics.inference_outcomes.labels(status.value).inc()
        async with in_transaction() as conn:
            locked = await Image.filter(id=image.id).using_db(conn).select_for_update().first()
            if locked is None:
                raise APIError(404, "the image was deleted while detection ran")
            image.status = status
            image.error = error[:2000]
            image.attempts = locked.attempts + attempts
            image.score_threshold = params.score_threshold
            image.max_detections = params.max_detections
            await image.save(
                using_db=conn,
                update_fields=[
                    "status",
                    "error",
                    "attempts",
                    "score_threshold",
                    "max_detections",
                    "updated_at",
                ],
            )

    async def get(self, image_id: uuid.UUID) -> Image:
        """The image or a 404."""
        image = await Image.get_or_none(id=image_id)
        if image is None:
            raise APIError(404, f"image {image_id} not found")
        return image

    async def detections(self, image: Image) -> list[Detection]:
        """The image's objects, best first."""
        return await Detection.filter(image_id=image.id).order_by("rank")

    async def detection(self, image: Image, object_id: int) -> Detection:
        """One object of the image, or a 404 (also when it belongs to another image)."""
        det = await Detection.get_or_none(id=object_id, image_id=image.id)
        if det is None:
            raise APIError(404, f"object {object_id} not found in image {image.id}")
        return det

    async def page(
        self, limit: int, offset: int, status: ImageStatus | None = None
    ) -> tuple[list[Image], int]:
        """Images newest first, and how many there are in all (of `status`, when given)."""
        query = Image.all() if status is None else Image.filter(status=status)
        items = await query.order_by("-created_at", "-id").offset(offset).limit(limit)
        return items, await query.count()

    async def read_file(self, image: Image) -> bytes:
        """The original bytes."""
        try:
            return await self.storage.get(image.blob_id)  # type: ignore[attr-defined]
        except FileNotFoundError as exc:
            raise APIError(500, "the stored file of this image is missing") from exc

    async def annotated(self, image: Image) -> bytes:
        """PNG with the circles drawn."""
        data = await self.read_file(image)
        dets = await self.detections(image)
        return await anyio.to_thread.run_sync(annotated_png, data, dets)

    async def delete(self, image_id: uuid.UUID) -> None:
        """Remove the row, its objects and (when no other image shares it) the file."""
        token: str | None = None
        key = ""
        try:
            async with in_transaction() as conn:
                image = await Image.filter(id=image_id).using_db(conn).select_for_update().first()
                if image is None:
                    raise APIError(404, f"image {image_id} not found")
                key = image.blob_id  # type: ignore[attr-defined]
                await Blob.filter(sha256=key).using_db(conn).select_for_update().first()
                await Detection.filter(image_id=image_id).using_db(conn).delete()
                await image.delete(using_db=conn)
                if not await Image.filter(blob_id=key).using_db(conn).exists():
                    await Blob.filter(sha256=key).using_db(conn).delete()
                    token = await self.storage.discard(key)
        except BaseException:
            if token:
                await self.storage.restore(token, key)
            raise
        if token:
            await self.storage.purge(token)

    async def retry_pending(self, older_than_s: float, limit: int = 16) -> int:
        """Detect again the images left pending longest; returns how many are now done.

        Only images whose detection already failed once (or whose upload died) qualify. Each is
        claimed first (its `updated_at` bumped, rows locked with SKIP LOCKED on PostgreSQL), so
        replicas running this loop side by side do not pick the same images.
        A round stops at the first image the model server still cannot take.
        """
        now = datetime.now(UTC)
        s = self.settings
        # An upload still in its first detection has no error yet; leave it alone unless it is
        # so old that its request must have died (a crash mid-upload).
        stale = older_than_s + s.model_retry_deadline_s + s.model_timeout_s
        async with in_transaction() as conn:
            query = (
                Image.filter(
                    Q(error__isnull=False) | Q(updated_at__lt=now - timedelta(seconds=stale)),
                    status=ImageStatus.PENDING,
                    updated_at__lt=now - timedelta(seconds=older_than_s),
                )
                .order_by("updated_at")
                .limit(limit)
                .using_db(conn)
                .select_for_update(skip_locked=True)
            )
            claimed = [image.id for image in await query]
            if claimed:
                await Image.filter(id__in=claimed).using_db(conn).update(updated_at=now)
        done = 0
        for image_id in claimed:
            image = await Image.get_or_none(id=image_id)
            if image is None or image.status != ImageStatus.PENDING:
                continue
            params = self.params(image.score_threshold, image.max_detections)
            await self.detect(image, params)
            if image.status == ImageStatus.PENDING:
                break
            done += image.status == ImageStatus.DONE
        return done

    async def pending_count(self) -> int:
        """Images waiting for detection (for the metrics gauge)."""
        return await Image.filter(status=ImageStatus.PENDING).count()
