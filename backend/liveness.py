"""Which replicas are alive, told by PostgreSQL: each holds a session advisory lock for its life.

A replica killed mid-detection leaves its claims on pending images (backend/pending.py). Its
lock goes with its database session, so the other replicas see at once that the claim's owner
is gone and take the image over, instead of waiting for the claim's lease. The lock lives on a
connection of its own (outside the pool); when that connection cannot be made or breaks, the
replica reports nothing (`live_keys` None) and claims fall back to the lease alone.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from typing import Any

from tortoise import connections

from backend.config import Settings

log = logging.getLogger(__name__)

#: First key of the advisory locks that say "this replica is alive" (the second is its own).
LIVENESS_NS = 0x0C1_2C20
_LIVE = (
    "SELECT objid FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = $1 "
    "AND objsubid = 2 AND database = (SELECT oid FROM pg_database WHERE datname = "
    "current_database())"
)


class Liveness:
    """This replica's liveness lock, and the keys of the replicas holding theirs."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.key = secrets.randbelow(2**31 - 1) + 1
        self._conn: Any = None

    async def hold(self) -> bool:
        """Take (or keep) this replica's lock; False when the database cannot be reached."""
        if self._conn is not None and not self._conn.is_closed():
            return True
        from backend.db import own_connection

        try:
            self._conn = await own_connection(self.settings, timeout_s=5)
            await self._conn.execute("SELECT pg_advisory_lock($1, $2)", LIVENESS_NS, self.key)
        except Exception as exc:  # the database is down: claims rely on their lease
            log.warning("cannot hold the replica liveness lock: %s", exc)
            await self.close()
            return False
        return True

    async def live_keys(self) -> set[int] | None:
        """Keys of the replicas alive now; None when this replica does not hold its own lock."""
        if not await self.hold():
            return None
        rows = await connections.get("default").execute_query_dict(_LIVE, [LIVENESS_NS])
        return {int(r["objid"]) for r in rows}

    async def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None
