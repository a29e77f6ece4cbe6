"""The backend's logic in one place: store an upload, run detection, re-detect, delete.

Consistency rules:
- A file and the rows pointing at it change together. The `Blob` row of a file is locked
  (SELECT ... FOR UPDATE; SQLite serialises transactions anyway) while the file is written or
  removed, the file is written before the transaction commits and removed if it fails, and a
  deleted file is first moved aside and only purged after the commit (restored otherwise).
- Nothing uploaded is lost: the image is committed before the model server is called, so when
  the model server stays down the image remains, marked `pending`, for `POST .../detect`.

Why a crash at any instruction leaves the old state or the new one (storage.py has the file
side; backend/reconcile.py repairs the leftovers at start-up):
- Upload: 1. file to `.tmp/*.part`, fsync, rename into place; 2. blob + image rows, commit.
  Killed in 1: a `.part` file (removed). Killed between 1 and 2, or the commit fails: a file
  without a blob row (removed: the upload never happened, no 2xx was sent). After 2: the new
  state. A client's retry with its `Idempotency-Key` finds the committed image.
- Delete: 1. rows deleted and the file moved to `.trash/` inside one transaction; 2. commit;
  3. purge. Killed before 2: the rows are still there, so the trashed file is restored (old
  state). Killed after 2: no row, so the trashed file is purged (new state).
- Upload and delete transactions hold a shared PostgreSQL advisory lock that reconciliation
  takes exclusively, so a replica starting up never judges another replica's work in flight.
- A file found missing with its row still there (lost outside the backend) fails the image
  (`status` failed, the reason in `error`); its file routes answer 410, never 500. Missing
  because a concurrent delete won: 404.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import anyio.to_thread
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from backend.annotate import annotated_png, shrink_cost, thumbnail_jpeg
from backend.budget import MemoryBudget, return_big_blocks_to_the_os
from backend.config import Settings
from backend.errors import APIError
from backend.imagecheck import ImageInfo, read_header, verify_image
from backend.inference import (
    InferenceClient,
    ModelMisconfiguredError,
    ModelRejectedError,
    ModelUnavailableError,
    with_retries,
)
from backend.metrics import Metrics
from backend.models import Blob, Detection, Image, ImageStatus
from backend.reconcile import MISSING_FILE, hold_writer_lock
from backend.schemas import Timings
from backend.storage import Opened, Storage, StorageError, content_key
from backend.uploads import Upload

log = logging.getLogger(__name__)
T = TypeVar("T")


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
        return_big_blocks_to_the_os()  # so that freed pixels leave the RSS (budget.py)
        wait, after = settings.budget_wait_s, settings.retry_after_s
        #: File bytes in memory (upload bodies, files read back); reserved before pixels.
        self.body_budget = MemoryBudget("file memory", settings.budget_body_bytes, wait, after)
        #: Decoded pixels (checking uploads, annotations, thumbnails).
        self.pixel_budget = MemoryBudget("pixel memory", settings.budget_pixel_bytes, wait, after)
        #: The last "misconfigured: ..." answer of the model server, until a call succeeds:
        #: readiness reports it even when it does not call the model (READY_REQUIRES_MODEL=false).
        self.model_misconfiguration: str | None = None

    def params(self, score_threshold: float | None, max_detections: int | None) -> DetectParams:
        """Request values, or the configured defaults."""
        return DetectParams(
            self.settings.score_threshold if score_threshold is None else score_threshold,
            self.settings.max_detections if max_detections is None else max_detections,
        )

    async def create(
        self, upload: Upload, params: DetectParams, idempotency_key: str | None = None
    ) -> tuple[Image, Timings, bool]:
        """Validate, store (file + rows together), then detect.

        Returns the image, timings and whether it is a replay: an earlier upload with the same
        `idempotency_key` and the same bytes (a client's retry) returns that image instead of a
        second one; the same key with other bytes is a 422.
        """
        t0 = time.perf_counter()
        if len(upload.data) > self.settings.max_upload_bytes:
            raise APIError(413, f"upload too large: the limit is {self.settings.max_upload_bytes}")
        info = await anyio.to_thread.run_sync(
            read_header, upload.data, self.settings.max_image_pixels
        )
        async with self.pixel_budget.reserve(info.check_bytes):
            await anyio.to_thread.run_sync(verify_image, upload.data)
        t1 = time.perf_counter()
        key = content_key(upload.data)
        image = await self._replay(idempotency_key, key) if idempotency_key else None
        replayed = image is not None
        if image is None:
            try:
                image = await self._store(upload, key, info, params, idempotency_key)
            except IntegrityError:
                image = await self._replay(idempotency_key, key) if idempotency_key else None
                if image is None:
                    raise
                replayed = True
        t2 = time.perf_counter()
        if not replayed or (image.status == ImageStatus.PENDING and image.error is None):
            # a replay of an upload killed before its detection finished detects it now
            await self._detect(image, upload.data, params)
        t3 = time.perf_counter()
        timings = Timings(
            validate_ms=(t1 - t0) * 1000,
            store_ms=(t2 - t1) * 1000,
            inference_ms=image.inference_ms if image.status == ImageStatus.DONE else None,
            total_ms=(t3 - t0) * 1000,
        )
        return image, timings, replayed

    async def _replay(self, idempotency_key: str, key: str) -> Image | None:
        """The image an earlier upload with this key stored; 422 when its bytes differ."""
        image = await Image.get_or_none(idempotency_key=idempotency_key)
        if image is not None and image.blob_id != key:  # type: ignore[attr-defined]
            raise APIError(
                422,
                "this Idempotency-Key was already used for a different file; use a new key "
                "for a new upload",
                image_id=str(image.id),
            )
        return image

    async def _store(
        self,
        upload: Upload,
        key: str,
        info: ImageInfo,
        params: DetectParams,
        idempotency_key: str | None,
    ) -> Image:
        """Write the file under `key` (its content key) and commit its rows together."""
        async with in_transaction() as conn:
            await hold_writer_lock(conn, self.settings)
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
                    idempotency_key=idempotency_key,
                    using_db=conn,
                )
            except BaseException:
                if created:  # the file is ours alone: remove it while the blob row is locked
                    token = await self.storage.discard(key)
                    if token:
                        await self.storage.purge(token)
                raise

    async def detect(self, image: Image, params: DetectParams) -> Image:
        """Run detection again on a stored image (pending, failed, or a new model version).

        404 when the image is deleted meanwhile; 410 (and the image failed) when its file is
        missing. The file's bytes count against the memory budget while the model is called.
        """
        async with self.body_budget.reserve(2 * image.size_bytes):
            data = await self.read_file(image)
            await self._detect(image, data, params)
        return image

    async def _detect(
        self, image: Image, data: bytes, params: DetectParams, deadline_s: float | None = None
    ) -> None:
        """Call the model server (with retries; transient errors until `deadline_s`, default
        MODEL_RETRY_DEADLINE_S) and record the outcome on `image`."""
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
                deadline_s=s.model_retry_deadline_s if deadline_s is None else deadline_s,
                backoff_s=s.model_retry_backoff_s,
                backoff_max_s=s.model_retry_backoff_max_s,
                server_error_attempts=s.model_server_error_attempts,
                on_retry=on_retry,
            )
        except ModelUnavailableError as exc:
            await self._mark(image, ImageStatus.PENDING, str(exc), exc.attempts, params)
            return
        except ModelRejectedError as exc:
            if isinstance(exc, ModelMisconfiguredError):
                self.model_misconfiguration = str(exc)
            await self._mark(image, ImageStatus.FAILED, str(exc), exc.attempts, params)
            return
        self.model_misconfiguration = None
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
        """The original bytes; 404 when a concurrent delete won, 410 when the file is lost."""
        return await self._from_storage(image, self.storage.get)

    async def open_file(self, image: Image) -> Opened:
        """The original as an open file to stream (it stays readable if deleted meanwhile)."""
        return await self._from_storage(image, self.storage.open)

    async def _from_storage(self, image: Image, fetch: Callable[[str], Awaitable[T]]) -> T:
        key = image.blob_id  # type: ignore[attr-defined]
        try:
            return await fetch(key)
        except FileNotFoundError:
            pass
        await self._settle(image)
        try:
            return await fetch(key)  # a delete that rolled back has restored it
        except FileNotFoundError:
            await self._lost(image)
        raise APIError(410, MISSING_FILE, image_id=str(image.id))

    async def _settle(self, image: Image) -> None:
        """Wait for a delete in flight (it holds the blob row's lock); 404 when it won."""
        key = image.blob_id  # type: ignore[attr-defined]
        async with in_transaction() as conn:
            blob = await Blob.filter(sha256=key).using_db(conn).select_for_update().first()
            alive = blob is not None and await Image.filter(id=image.id).using_db(conn).exists()
        if not alive:
            raise APIError(404, f"image {image.id} not found")

    async def _lost(self, image: Image) -> None:
        """Fail an image whose file is gone, so that nothing waits for its detection."""
        log.error("image %s: stored file %s is missing", image.id, image.blob_id)  # type: ignore[attr-defined]
        await Image.filter(id=image.id).update(status=ImageStatus.FAILED, error=MISSING_FILE)
        image.status, image.error = ImageStatus.FAILED, MISSING_FILE

    async def annotated(self, image: Image) -> bytes:
        """PNG with the circles drawn, at most ANNOTATED_MAX_SIDE px (cached in storage)."""
        dets = await self.detections(image)
        side = self.settings.annotated_max_side
        drawn = repr(
            [(d.rank, d.x1, d.y1, d.x2, d.y2, d.cx, d.cy, d.radius, d.score) for d in dets]
        )
        digest = hashlib.sha256(drawn.encode()).hexdigest()[:32]
        return await self._derived(
            image,
            f"annotated-{side}-{digest}.png",
            side,
            lambda data: annotated_png(data, dets, side),
        )

    async def thumbnail(self, image: Image) -> bytes:
        """A small JPEG for the history page (cached in storage)."""
        side = self.settings.thumbnail_side
        return await self._derived(
            image, f"thumb-{side}.jpg", side, lambda data: thumbnail_jpeg(data, side)
        )

    async def _derived(
        self, image: Image, name: str, side: int, make: Callable[[bytes], bytes]
    ) -> bytes:
        """A file made from the image's file: from the cache, or made within the budgets."""
        key = image.blob_id  # type: ignore[attr-defined]
        try:
            cached = await self.storage.get_derived(key, name)
        except StorageError as exc:
            log.warning("cached %s of %s unreadable, making it again: %s", name, key, exc)
            cached = None
        if cached is not None:
            return cached
        cost = shrink_cost(image.format, image.width, image.height, side)
        async with self.body_budget.reserve(image.size_bytes):
            data = await self.read_file(image)
            async with self.pixel_budget.reserve(cost):
                made = await anyio.to_thread.run_sync(make, data)
        try:
            await self.storage.put_derived(key, name, made)
        except StorageError as exc:  # a cache: serve it anyway
            log.warning("could not cache %s of %s: %s", name, key, exc)
        return made

    async def delete(self, image_id: uuid.UUID) -> None:
        """Remove the row, its objects and (when no other image shares it) the file.

        Order (see the module docstring): rows deleted and file moved aside in one transaction,
        commit, then purge; a failed commit restores the file.
        """
        token: str | None = None
        key = ""
        try:
            async with in_transaction() as conn:
                await hold_writer_lock(conn, self.settings)
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
                try:
                    await self.storage.restore(token, key)
                except StorageError as exc:  # reconciliation restores it at the next start
                    log.error("could not restore %s after a failed delete: %s", key, exc)
            raise
        if token:
            try:
                await self.storage.purge(token)
            except StorageError as exc:  # committed: reconciliation purges it at the next start
                log.error("could not purge %s after its delete: %s", key, exc)

    async def detect_pending(self, image: Image) -> ImageStatus | None:
        """One detection of a pending image for the background retry (backend/pending.py);
        returns its status after it, None when it was deleted before its file was read (a
        delete while the model runs raises APIError 404, as in `detect`).

        Transient errors get one attempt (the retry loop watches readiness itself), a 500 its
        few; a missing file fails this image (410 path of read_file) rather than stopping others.
        """
        params = self.params(image.score_threshold, image.max_detections)
        async with self.body_budget.reserve(2 * image.size_bytes):
            try:
                data = await self.read_file(image)
            except APIError as exc:  # 404: deleted meanwhile; 410: file lost, image failed
                log.warning("background retry skips image %s: %s", image.id, exc.message)
                return None if exc.status_code == 404 else image.status
            await self._detect(image, data, params, deadline_s=0)
        return image.status

    async def pending_count(self) -> int:
        """Images waiting for detection (for the metrics gauge)."""
        return await Image.filter(status=ImageStatus.PENDING).count()
