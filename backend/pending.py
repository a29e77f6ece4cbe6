"""The background retry: images left pending are detected as soon as the model is ready again.

The loop checks every PENDING_RETRY_POLL_S whether claimable pending images exist; if so, it
asks the model server whether it is ready and, once it is, drains the backlog with
PENDING_RETRY_CONCURRENCY workers. A worker whose image comes back pending (the model went
away again) stops the drain; the loop then backs off, doubling up to PENDING_RETRY_INTERVAL_S.

Claims. A claim writes a marker ("background retry running (worker, since ...)") into the
image's `error` column. On PostgreSQL (several replicas) the next claimable row is picked and
marked in one short transaction with `SELECT ... FOR UPDATE SKIP LOCKED`: replicas never wait
for each other and never pick the same row. On SQLite (one process) a compare-and-set on
`error` does it: the marker is written only where `error` still holds what was read, so of two
workers exactly one wins. A marked image is not claimable again until the claim's lease has
passed, or, on PostgreSQL, until its replica no longer holds its liveness lock (a replica
killed mid-detection: the others take its claims over at their next poll; backend/liveness.py),
nor is an upload still in its first detection (no error yet) until it is stale.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from backend.errors import APIError
from backend.inference import InferenceError
from backend.liveness import Liveness
from backend.models import Image, ImageStatus

if TYPE_CHECKING:
    from backend.images import ImageService

log = logging.getLogger(__name__)

CLAIM_PREFIX = "background retry running"
_BEFORE = "; before: "
#: Margin on top of the longest a detection can take before its claim or upload counts as dead.
LEASE_MARGIN_S = 30.0


class PendingRetry:
    """Claims pending images and detects them with bounded concurrency."""

    def __init__(self, service: ImageService) -> None:
        self.service = service
        self.settings = service.settings
        #: On PostgreSQL, replicas know who is alive (backend/liveness.py), so a killed
        #: replica's claims pass to the others at once instead of after the lease.
        self.liveness = Liveness(self.settings) if self.settings.dialect == "postgres" else None
        tag = f"{self.liveness.key:08x}" if self.liveness else uuid.uuid4().hex[:6]
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{tag}"
        self._orphaned: Q | None = None
        self._inflight: set[uuid.UUID] = set()
        self._buffer: list[Image] = []
        self._lock = asyncio.Lock()
        #: Images this process has claimed (logged; the replica tests count them).
        self.claims = 0

    @property
    def lease_s(self) -> float:
        """After this long a claim (or an upload's first detection) is presumed dead."""
        s = self.settings
        longest = s.model_retry_deadline_s + s.model_timeout_s * s.model_server_error_attempts
        return longest + LEASE_MARGIN_S

    def _claimable(self) -> Q:
        stale = datetime.now(UTC) - timedelta(seconds=self.lease_s)
        failed_once = Q(error__isnull=False) & ~Q(error__startswith=CLAIM_PREFIX)
        claimable = Q(status=ImageStatus.PENDING) & (failed_once | Q(updated_at__lt=stale))
        return claimable | self._orphaned if self._orphaned is not None else claimable

    async def _find_orphans(self) -> None:
        """PostgreSQL: claims whose replica no longer holds its liveness lock are claimable."""
        live = await self.liveness.live_keys() if self.liveness else None
        if live is None:
            self._orphaned = None
            return
        owned = [Q(error__contains=f":{key:08x}, since") for key in live]
        mine = Q(*owned, join_type="OR") if owned else Q(pk__isnull=True)
        self._orphaned = Q(status=ImageStatus.PENDING, error__startswith=CLAIM_PREFIX) & ~mine

    async def close(self) -> None:
        if self.liveness:
            await self.liveness.close()

    async def has_work(self) -> bool:
        """Whether any pending image can be claimed now (one indexed query)."""
        await self._find_orphans()
        query = Image.filter(self._claimable())
        if self._inflight:
            query = query.exclude(id__in=list(self._inflight))
        return await query.exists()

    def _marker(self, image: Image) -> tuple[str, datetime]:
        now = datetime.now(UTC)
        before = image.error or "no error yet"
        if before.startswith(CLAIM_PREFIX) and _BEFORE in before:
            before = before.split(_BEFORE, 1)[1]  # an expired claim: keep the real reason
        marker = f"{CLAIM_PREFIX} ({self.worker}, since {now.isoformat()}){_BEFORE}{before}"
        return marker[:2000], now

    async def _claim(self, image: Image) -> bool:
        """Compare-and-set on `error`: True when this worker now owns `image`."""
        marker, now = self._marker(image)
        seen = Q(error=image.error) if image.error is not None else Q(error__isnull=True)
        won = await Image.filter(seen, id=image.id, status=ImageStatus.PENDING).update(
            error=marker, updated_at=now
        )
        if won:
            image.error = marker
        return bool(won)

    async def _claim_locked(self) -> Image | None:
        """PostgreSQL: lock the oldest claimable row no one else holds, mark it, commit."""
        async with in_transaction() as conn:
            query = Image.filter(self._claimable()).using_db(conn)
            if self._inflight:
                query = query.exclude(id__in=list(self._inflight))
            image = await query.order_by("updated_at").select_for_update(skip_locked=True).first()
            if image is None:
                return None
            marker, now = self._marker(image)
            await Image.filter(id=image.id).using_db(conn).update(error=marker, updated_at=now)
            image.error = marker
        self.claims += 1
        return image

    async def _next(self) -> Image | None:
        """The next image this process claims, oldest first; None when none is left."""
        if self.settings.dialect == "postgres":
            image = await self._claim_locked()
            if image is not None:
                self._inflight.add(image.id)
            return image
        async with self._lock:
            while True:
                if not self._buffer:
                    query = Image.filter(self._claimable())
                    if self._inflight:
                        query = query.exclude(id__in=list(self._inflight))
                    limit = 4 * self.settings.pending_retry_concurrency
                    self._buffer = list(await query.order_by("updated_at").limit(limit))
                    if not self._buffer:
                        return None
                image = self._buffer.pop(0)
                if image.id not in self._inflight and await self._claim(image):
                    self._inflight.add(image.id)
                    self.claims += 1
                    return image

    async def drain(self) -> tuple[int, bool]:
        """Detect claimable images until none is left; returns (done, interrupted).

        `interrupted` is True when an image came back pending: the model is unavailable again.
        One image's failure (missing file, a refusal, an unexpected error) never stops the rest.
        """
        done = 0
        stop = asyncio.Event()

        async def work() -> None:
            nonlocal done
            while not stop.is_set():
                image = await self._next()
                if image is None:
                    return
                try:
                    status = await self.service.detect_pending(image)
                except APIError as exc:  # deleted while detection ran, or no memory budget
                    log.warning("background retry of image %s: %s", image.id, exc.message)
                    continue
                except Exception:  # this image only; its claim expires after the lease
                    log.exception("background retry of image %s failed", image.id)
                    continue
                finally:
                    self._inflight.discard(image.id)
                if status == ImageStatus.PENDING:
                    stop.set()
                done += status == ImageStatus.DONE

        self._buffer = []
        await asyncio.gather(*(work() for _ in range(self.settings.pending_retry_concurrency)))
        return done, stop.is_set()


async def retry_pending_forever(service: ImageService) -> None:
    """The background loop (one task per process; cancelled at shutdown)."""
    retry = PendingRetry(service)
    try:
        await _loop(service, retry)
    finally:
        await retry.close()


async def _loop(service: ImageService, retry: PendingRetry) -> None:
    s = service.settings
    delay = s.pending_retry_poll_s
    waiting_reason = ""
    while True:
        await asyncio.sleep(delay)
        try:
            if not await retry.has_work():
                delay = s.pending_retry_poll_s
                continue
            try:
                await asyncio.wait_for(service.client.ready(), s.ready_timeout_s)
            except (InferenceError, TimeoutError) as exc:
                reason = str(exc) or type(exc).__name__
                if reason != waiting_reason:
                    log.warning("pending images wait for the model server: %s", reason)
                    waiting_reason = reason
                delay = s.pending_retry_poll_s
                continue
            waiting_reason = ""
            done, interrupted = await retry.drain()
            if done:
                log.info(
                    "background retry detected %d pending image(s) (worker %s, %d claims)",
                    done,
                    retry.worker,
                    retry.claims,
                )
            delay = (
                min(max(delay, s.pending_retry_poll_s) * 2, s.pending_retry_interval_s)
                if interrupted
                else s.pending_retry_poll_s
            )
        except Exception:
            log.exception("background retry round failed")
            delay = min(max(delay, s.pending_retry_poll_s) * 2, s.pending_retry_interval_s)
