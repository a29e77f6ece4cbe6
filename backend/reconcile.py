"""Start-up reconciliation of storage with the database, so that any crash heals on restart.

What a killed upload or delete can leave behind (see the orders in images.py and storage.py),
and what becomes of it:

| found                                   | meaning                          | done          |
|-----------------------------------------|----------------------------------|---------------|
| `.tmp/*` (`.part` files, probes)        | a write that never finished      | removed       |
| `.trash/<key>.*`, blob row present      | a delete that never committed    | restored      |
| `.trash/<key>.*`, no blob row           | a delete committed, not purged   | purged        |
| a stored file without a blob row        | an upload that never committed   | removed       |
| a blob row without its file             | lost outside the backend         | images failed |
| `.derived/<key>/` without a stored file | a cache of something deleted     | removed       |

The same table holds for the S3 store (backend/s3storage.py), read from the bucket's paginated
listing: `trash/`, `derived/` and `tmp/` prefixes take the place of the folders.

On PostgreSQL several replicas share the storage: uploads and deletes hold a shared advisory
lock for their transaction (`hold_writer_lock`) and reconciliation takes it exclusively, so it
runs only while no other replica's write is in flight and never mistakes one for debris. On
SQLite the database belongs to one process, which reconciles before it serves.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from backend.config import Settings
from backend.models import Blob, Image, ImageStatus
from backend.storage import Storage

log = logging.getLogger(__name__)

#: Arbitrary constant naming the advisory lock between writers (shared) and reconciliation.
WRITER_LOCK = 0x0C1_2C1F
MISSING_FILE = "the stored file of this image is missing; delete the image and upload it again"
_CHUNK = 500


@dataclass
class Report:
    """What reconciliation found and did (logged, and returned for tests)."""

    temp_removed: int = 0
    restored: int = 0
    purged: int = 0
    orphans_removed: int = 0
    missing: list[str] = field(default_factory=list)
    images_failed: int = 0
    derived_removed: int = 0

    def __bool__(self) -> bool:
        return any(v for v in vars(self).values())


async def hold_writer_lock(conn: BaseDBAsyncClient, settings: Settings) -> None:
    """In a write transaction: the shared side of the lock reconciliation takes exclusively."""
    if settings.dialect == "postgres":
        await conn.execute_query("SELECT pg_advisory_xact_lock_shared($1)", [WRITER_LOCK])


async def _known(conn: BaseDBAsyncClient, keys: Iterable[str]) -> set[str]:
    """The keys among `keys` that have a blob row."""
    keys = list(keys)
    found: set[str] = set()
    for i in range(0, len(keys), _CHUNK):
        chunk = keys[i : i + _CHUNK]
        rows = await Blob.filter(sha256__in=chunk).using_db(conn).values_list("sha256", flat=True)
        found.update(rows)
    return found


async def reconcile(storage: Storage, settings: Settings) -> Report:
    """Bring storage and database back in step after a crash; see the module's table."""
    report = Report()
    async with in_transaction() as conn:
        if settings.dialect == "postgres":
            await conn.execute_query("SELECT pg_advisory_xact_lock($1)", [WRITER_LOCK])
        present = await _files_side(storage, conn, report)
        await _rows_side(conn, report, present)
    if report:
        log.warning("reconciled storage with the database: %s", report)
    return report


async def _files_side(storage: Storage, conn: BaseDBAsyncClient, report: Report) -> set[str]:
    """Resolve every file-side leftover; returns the keys stored with a row afterwards."""
    report.temp_removed += await storage.sweep_temp()
    trash = await storage.list_trash()
    known = await _known(conn, {key for _, key in trash})
    for token, key in trash:
        if key in known and not await storage.exists(key):
            await storage.restore(token, key)
            report.restored += 1
        else:
            await storage.purge(token)
            report.purged += 1
    stored = await storage.list_keys()
    present = await _known(conn, stored)
    for key in stored:
        if key not in present:
            await storage.remove(key)
            report.orphans_removed += 1
    for key in await storage.list_derived():
        if key not in present:
            await storage.drop_derived(key)
            report.derived_removed += 1
    return present


async def _rows_side(conn: BaseDBAsyncClient, report: Report, present: set[str]) -> None:
    """Fail the images whose file is missing (their file routes then answer 410)."""
    keys = await Blob.all().using_db(conn).values_list("sha256", flat=True)
    report.missing = [k for k in keys if k not in present]
    for i in range(0, len(report.missing), _CHUNK):
        chunk = report.missing[i : i + _CHUNK]
        report.images_failed += (
            await Image.filter(blob_id__in=chunk)
            .using_db(conn)
            .update(status=ImageStatus.FAILED, error=MISSING_FILE)
        )
