"""File storage behind a small interface: content-addressed, atomic writes, two-step deletes.

Files are named by the SHA-256 of their bytes (never by anything a client sent) and written to
a temporary file that is then renamed into place, so a crash never leaves half a file under a
real name. Deleting is two steps (`discard` moves the file aside, then `purge` or `restore`) so
that the caller can keep the file and the database row in step across a failed commit.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from pathlib import Path
from typing import Protocol

import anyio.to_thread

_KEY = re.compile(r"^[0-9a-f]{64}$")


class StorageError(RuntimeError):
    """The storage could not read or write a file."""


def content_key(data: bytes) -> str:
    """The name a file gets in storage: hex SHA-256 of its bytes."""
    return hashlib.sha256(data).hexdigest()


class Storage(Protocol):
    """What the backend needs from a file store."""

    async def put(self, key: str, data: bytes) -> bool:
        """Store `data` under `key` (idempotent); True when a new file was written."""

    async def get(self, key: str) -> bytes:
        """The bytes under `key`; FileNotFoundError when missing."""

    async def exists(self, key: str) -> bool:
        """Whether `key` is stored."""

    async def discard(self, key: str) -> str | None:
        """Move `key` aside; returns a token for `restore`/`purge`, None when it was missing."""

    async def restore(self, token: str, key: str) -> None:
        """Undo `discard`."""

    async def purge(self, token: str) -> None:
        """Finish `discard`: the file is gone for good."""

    async def check_writable(self) -> None:
        """Raise StorageError unless a file can be written and removed."""


class LocalStorage:
    """A directory on local disk (the PVC in Kubernetes): root/ab/cd/abcd...."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._tmp = self.root / ".tmp"
        self._trash = self.root / ".trash"

    def path(self, key: str) -> Path:
        """Where `key` lives; only a hex SHA-256 is accepted, so no client text reaches a path."""
        if not _KEY.match(key):
            raise ValueError(f"invalid storage key {key!r}")
        return self.root / key[:2] / key[2:4] / key

    def file_count(self) -> int:
        """Number of stored files (for tests and diagnostics)."""
        return sum(1 for p in self.root.glob("??/??/*") if p.is_file())

    async def put(self, key: str, data: bytes) -> bool:
        return await anyio.to_thread.run_sync(self._put, key, data)

    def _put(self, key: str, data: bytes) -> bool:
        if content_key(data) != key:
            raise ValueError("storage key does not match the data's SHA-256")
        final = self.path(key)
        try:
            if final.is_file() and final.stat().st_size == len(data):
                return False
            final.parent.mkdir(parents=True, exist_ok=True)
            self._tmp.mkdir(parents=True, exist_ok=True)
            tmp = self._tmp / f"{uuid.uuid4().hex}.part"
            try:
                with open(tmp, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, final)
            finally:
                tmp.unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot write file to storage: {exc.strerror or exc}") from exc
        return True

    async def get(self, key: str) -> bytes:
        return await anyio.to_thread.run_sync(self.path(key).read_bytes)

    async def exists(self, key: str) -> bool:
        return await anyio.to_thread.run_sync(self.path(key).is_file)

    async def discard(self, key: str) -> str | None:
        return await anyio.to_thread.run_sync(self._discard, key)

    def _discard(self, key: str) -> str | None:
        source = self.path(key)
        try:
            self._trash.mkdir(parents=True, exist_ok=True)
            token = f"{key}.{uuid.uuid4().hex}"
            os.replace(source, self._trash / token)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(f"cannot remove file from storage: {exc.strerror or exc}") from exc
        return token

    async def restore(self, token: str, key: str) -> None:
        await anyio.to_thread.run_sync(self._restore, token, key)

    def _restore(self, token: str, key: str) -> None:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self._trash_path(token), target)

    async def purge(self, token: str) -> None:
        await anyio.to_thread.run_sync(self._trash_path(token).unlink, True)

    def _trash_path(self, token: str) -> Path:
        key, _, suffix = token.partition(".")
        if not _KEY.match(key) or not re.fullmatch(r"[0-9a-f]{32}", suffix):
            raise ValueError(f"invalid trash token {token!r}")
        return self._trash / token

    async def check_writable(self) -> None:
        await anyio.to_thread.run_sync(self._check_writable)

    def _check_writable(self) -> None:
        try:
            self._tmp.mkdir(parents=True, exist_ok=True)
            probe = self._tmp / f"probe-{uuid.uuid4().hex}"
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as exc:
            reason = exc.strerror or exc
            raise StorageError(f"storage {self.root} is not writable: {reason}") from exc
