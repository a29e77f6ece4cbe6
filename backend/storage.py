"""File storage behind a small interface: content-addressed, atomic writes, two-step deletes.

Files are named by the SHA-256 of their bytes (never by anything a client sent). Layout:

    root/ab/cd/abcd...        the stored files (the only copies of the uploads)
    root/.tmp/*.part          files being written: written, fsynced, then renamed into place
    root/.trash/<key>.<uuid>  files moved aside by a delete that has not committed yet
    root/.derived/<key>/...   caches made from a file (thumbnails, annotated PNGs)

Why each step is safe at any instruction (a crash leaves the old state or the new one):
- A write goes to `.tmp/` first, is fsynced, renamed into place (atomic on POSIX), and the
  folder is fsynced, so a real name never holds half a file; a crash leaves only a `.part`
  file, which start-up reconciliation (backend/reconcile.py) removes.
- Deleting is two steps: `discard` moves the file into `.trash/` (atomic rename) before the
  database commit, then `purge` or `restore` once the commit's outcome is known. A crash in
  between leaves the file in `.trash/`: reconciliation restores it when its row is still there
  (the commit did not happen) and purges it otherwise.
- `.derived/` is a cache: losing or leaving it is harmless; reconciliation drops the folders of
  files that no longer exist.

Failures: a missing file is `FileNotFoundError`; a full disk is `StorageFullError` (ENOSPC,
EDQUOT; nothing is left half-written); any other I/O failure is `StorageError`.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

import anyio.to_thread

#: Chunk size of streamed reads (GET .../file).
CHUNK_BYTES = 256 * 1024

_KEY = re.compile(r"^[0-9a-f]{64}$")
_TOKEN = re.compile(r"^([0-9a-f]{64})\.([0-9a-f]{32})$")
_DERIVED = re.compile(r"^[a-z0-9][a-z0-9-]{0,95}\.(png|jpg)$")
_FULL = {errno.ENOSPC, errno.EDQUOT}


class StorageError(RuntimeError):
    """The storage could not read or write a file."""


class StorageFullError(StorageError):
    """The storage has no room left (ENOSPC/EDQUOT); nothing was half-written."""


def content_key(data: bytes) -> str:
    """The name a file gets in storage: hex SHA-256 of its bytes."""
    return hashlib.sha256(data).hexdigest()


def storage_error(exc: OSError, doing: str) -> StorageError:
    """The StorageError (or StorageFullError) an OSError met while `doing` becomes."""
    cls = StorageFullError if exc.errno in _FULL else StorageError
    return cls(f"cannot {doing}: {exc.strerror or exc}")


@dataclass
class Opened:
    """A stored file opened for streaming: its size and its bytes in chunks (closed at the end)."""

    size: int
    chunks: AsyncIterator[bytes]


class Storage(Protocol):
    """What the backend needs from a file store."""

    async def put(self, key: str, data: bytes) -> bool:
        """Store `data` under `key` (idempotent); True when a new file was written."""

    async def get(self, key: str) -> bytes:
        """The bytes under `key`; FileNotFoundError when missing."""

    async def open(self, key: str) -> Opened:
        """`key` opened to stream from (it stays readable if deleted meanwhile)."""

    async def exists(self, key: str) -> bool:
        """Whether `key` is stored."""

    async def discard(self, key: str) -> str | None:
        """Move `key` aside; returns a token for `restore`/`purge`, None when it was missing."""

    async def restore(self, token: str, key: str) -> None:
        """Undo `discard`."""

    async def purge(self, token: str) -> None:
        """Finish `discard`: the file is gone for good (its derived files too)."""

    async def get_derived(self, key: str, name: str) -> bytes | None:
        """A cached file made from `key` (thumbnail, annotated PNG), None when not cached."""

    async def put_derived(self, key: str, name: str, data: bytes) -> None:
        """Cache a file made from `key` (atomically; StorageError on failure)."""

    async def check_writable(self) -> None:
        """Raise StorageError unless a file can be written and removed."""

    # reconciliation (backend/reconcile.py): listings and removals

    async def sweep_temp(self) -> int:
        """Remove interrupted writes, probes and stray names; returns how many."""

    async def list_keys(self) -> list[str]:
        """Keys of every stored file."""

    async def list_trash(self) -> list[tuple[str, str]]:
        """(token, key) of every file moved aside by a delete."""

    async def list_derived(self) -> list[str]:
        """Keys that have cached derived files."""

    async def remove(self, key: str) -> None:
        """Remove a stored file and its caches at once (a file no row points at)."""

    async def drop_derived(self, key: str) -> None:
        """Remove every cached file made from `key` (best effort)."""


class LocalStorage:
    """A directory on local disk (the PVC in Kubernetes): root/ab/cd/abcd...."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.tmp_dir = self.root / ".tmp"
        self.trash_dir = self.root / ".trash"
        self.derived_dir = self.root / ".derived"

    def path(self, key: str) -> Path:
        """Where `key` lives; only a hex SHA-256 is accepted, so no client text reaches a path."""
        if not _KEY.match(key):
            raise ValueError(f"invalid storage key {key!r}")
        return self.root / key[:2] / key[2:4] / key

    def derived_path(self, key: str, name: str) -> Path:
        if not _DERIVED.match(name):
            raise ValueError(f"invalid derived file name {name!r}")
        self.path(key)  # validates the key
        return self.derived_dir / key / name

    def file_count(self) -> int:
        """Number of stored files (for tests and diagnostics)."""
        return sum(1 for _ in self.stored_keys())

    # -- writing -------------------------------------------------------------------------

    async def put(self, key: str, data: bytes) -> bool:
        return await anyio.to_thread.run_sync(self._put, key, data)

    def _put(self, key: str, data: bytes) -> bool:
        if content_key(data) != key:
            raise ValueError("storage key does not match the data's SHA-256")
        final = self.path(key)
        try:
            if final.is_file() and final.stat().st_size == len(data):
                return False
            self._write_atomically(final, data)
        except OSError as exc:
            raise storage_error(exc, "write file to storage") from exc
        return True

    def _write_atomically(self, final: Path, data: bytes) -> None:
        """`.tmp/x.part` -> fsync -> rename to `final` -> fsync its folder; no half file."""
        final.parent.mkdir(parents=True, exist_ok=True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.tmp_dir / f"{uuid.uuid4().hex}.part"
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, final)
            _fsync_dir(final.parent)
        finally:
            tmp.unlink(missing_ok=True)

    # -- reading -------------------------------------------------------------------------

    async def get(self, key: str) -> bytes:
        return await anyio.to_thread.run_sync(self._get, key)

    def _get(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise storage_error(exc, "read file from storage") from exc

    async def open(self, key: str) -> Opened:
        fh = await anyio.to_thread.run_sync(self._open, self.path(key))
        return Opened(os.fstat(fh.fileno()).st_size, _file_chunks(fh))

    @staticmethod
    def _open(path: Path) -> BinaryIO:
        try:
            return open(path, "rb")  # the caller streams and closes it
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise storage_error(exc, "open file in storage") from exc

    async def exists(self, key: str) -> bool:
        return await anyio.to_thread.run_sync(self.path(key).is_file)

    # -- deleting ------------------------------------------------------------------------

    async def discard(self, key: str) -> str | None:
        return await anyio.to_thread.run_sync(self._discard, key)

    def _discard(self, key: str) -> str | None:
        source = self.path(key)
        try:
            self.trash_dir.mkdir(parents=True, exist_ok=True)
            token = f"{key}.{uuid.uuid4().hex}"
            os.replace(source, self.trash_dir / token)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise storage_error(exc, "remove file from storage") from exc
        return token

    async def restore(self, token: str, key: str) -> None:
        await anyio.to_thread.run_sync(self._restore, token, key)

    def _restore(self, token: str, key: str) -> None:
        target = self.path(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self._trash_path(token), target)
        except OSError as exc:
            raise storage_error(exc, "restore file in storage") from exc

    async def purge(self, token: str) -> None:
        await anyio.to_thread.run_sync(self._purge, token)

    def _purge(self, token: str) -> None:
        path = self._trash_path(token)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise storage_error(exc, "purge file from storage") from exc
        key = path.name.split(".", 1)[0]
        if not self.path(key).exists():  # a new upload of the same bytes keeps its cache
            self._drop_derived(key)

    def _trash_path(self, token: str) -> Path:
        if not _TOKEN.match(token):
            raise ValueError(f"invalid trash token {token!r}")
        return self.trash_dir / token

    # -- derived files (caches) ----------------------------------------------------------

    async def get_derived(self, key: str, name: str) -> bytes | None:
        return await anyio.to_thread.run_sync(self._get_derived, key, name)

    def _get_derived(self, key: str, name: str) -> bytes | None:
        try:
            return self.derived_path(key, name).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise storage_error(exc, "read cached file") from exc

    async def put_derived(self, key: str, name: str, data: bytes) -> None:
        await anyio.to_thread.run_sync(self._put_derived, key, name, data)

    def _put_derived(self, key: str, name: str, data: bytes) -> None:
        try:
            self._write_atomically(self.derived_path(key, name), data)
        except OSError as exc:
            raise storage_error(exc, "cache file") from exc

    async def drop_derived(self, key: str) -> None:
        await anyio.to_thread.run_sync(self._drop_derived, key)

    def _drop_derived(self, key: str) -> None:
        """Remove every cached file made from `key` (best effort: it is only a cache)."""
        self.path(key)  # validates the key
        shutil.rmtree(self.derived_dir / key, ignore_errors=True)

    # -- listing (reconciliation) --------------------------------------------------------

    def stored_keys(self) -> Iterator[str]:
        """Keys of every stored file."""
        for path in self.root.glob("??/??/*"):
            if _KEY.match(path.name) and path.is_file():
                yield path.name

    def stray_files(self) -> Iterator[Path]:
        """Files under the content folders that no key names (never written by `put`)."""
        for path in self.root.glob("??/??/*"):
            if not _KEY.match(path.name):
                yield path

    def temp_files(self) -> list[Path]:
        """Everything in `.tmp/` (interrupted writes, probes)."""
        return list(self.tmp_dir.iterdir()) if self.tmp_dir.is_dir() else []

    def trash_tokens(self) -> list[tuple[str, str]]:
        """(token, key) of every file moved aside by a delete."""
        if not self.trash_dir.is_dir():
            return []
        found = []
        for path in self.trash_dir.iterdir():
            match = _TOKEN.match(path.name)
            if match:
                found.append((path.name, match.group(1)))
            else:
                path.unlink(missing_ok=True)
        return found

    def derived_keys(self) -> list[str]:
        """Keys that have a derived-files folder."""
        if not self.derived_dir.is_dir():
            return []
        return [p.name for p in self.derived_dir.iterdir() if _KEY.match(p.name)]

    async def remove(self, key: str) -> None:
        await anyio.to_thread.run_sync(self._remove, key)

    def _remove(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)
        self._drop_derived(key)

    async def sweep_temp(self) -> int:
        return await anyio.to_thread.run_sync(self._sweep_temp)

    def _sweep_temp(self) -> int:
        found = [*self.temp_files(), *self.stray_files()]
        for path in found:
            path.unlink(missing_ok=True)
        return len(found)

    async def list_keys(self) -> list[str]:
        return await anyio.to_thread.run_sync(lambda: list(self.stored_keys()))

    async def list_trash(self) -> list[tuple[str, str]]:
        return await anyio.to_thread.run_sync(self.trash_tokens)

    async def list_derived(self) -> list[str]:
        return await anyio.to_thread.run_sync(self.derived_keys)

    async def check_writable(self) -> None:
        await anyio.to_thread.run_sync(self._check_writable)

    def _check_writable(self) -> None:
        try:
            self.tmp_dir.mkdir(parents=True, exist_ok=True)
            probe = self.tmp_dir / f"probe-{uuid.uuid4().hex}"
            try:
                probe.write_bytes(b"ok")
            finally:
                probe.unlink(missing_ok=True)
        except OSError as exc:
            reason = exc.strerror or exc
            cls = StorageFullError if exc.errno in _FULL else StorageError
            raise cls(f"storage {self.root} is not writable: {reason}") from exc


async def _file_chunks(fh: BinaryIO) -> AsyncIterator[bytes]:
    """Read an open file in chunks off the event loop, closing it at the end."""
    try:
        while chunk := await anyio.to_thread.run_sync(fh.read, CHUNK_BYTES):
            yield chunk
    finally:
        fh.close()


def _fsync_dir(path: Path) -> None:
    """Make a rename in `path` durable (some filesystems do not support it: ignored)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
