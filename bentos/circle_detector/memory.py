"""Giving memory back to the system after big requests (glibc's allocator keeps it otherwise).

Without this, a 64 MiB gRPC message parsed into Python objects leaves hundreds of MB in the
allocator's free lists, and each following big request on another thread's arena adds more:
the resident size ratchets up. Two measures, both no-ops off glibc:

- `configure()` (at start-up, before threads exist): fixed mmap threshold, so large buffers
  come from (and go straight back to) mmap instead of the heap; at most 2 malloc arenas.
- `trim_after(n)`: after a request that held at least `TRIM_BYTES`, a garbage collection and
  `malloc_trim(0)` on a thread, at most one at a time.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import threading
import time

logger = logging.getLogger(__name__)
#: A request that held at least this many bytes is followed by a trim.
TRIM_BYTES = 16 * 1024 * 1024
#: Pauses before each trim after a big request's end, one after the other: trims at 0.2 s and
#: 2 s (by then the transport has let go of the message and an error response is sent).
TRIM_DELAYS_S = (0.2, 1.8)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8
_MMAP_THRESHOLD = 1024 * 1024
_ARENA_MAX = 2


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        libc.malloc_trim  # noqa: B018 - glibc only
        libc.mallopt  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()
_trimming = threading.Lock()


def configure() -> None:
    """Tune glibc's allocator for a server that sees occasional huge requests."""
    if _LIBC is None:
        return
    _LIBC.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
    _LIBC.mallopt(_M_TRIM_THRESHOLD, 4 * _MMAP_THRESHOLD)
    _LIBC.mallopt(_M_ARENA_MAX, _ARENA_MAX)


def trim(delays_s: tuple[float, ...] = (0.0,)) -> None:
    """Collect garbage and return free heap pages of every arena to the system (blocking; a
    few ms), after each of `delays_s` (a failed request's frames can live on in an exception's
    reference cycle until a collection after the error response is sent)."""
    if _LIBC is None or not _trimming.acquire(blocking=False):
        return
    try:
        for delay in delays_s:
            time.sleep(delay)
            gc.collect()
            _LIBC.malloc_trim(0)
    finally:
        _trimming.release()


def trim_after(held_bytes: int) -> None:
    """Trim on a background thread once a request that held `held_bytes` is done."""
    if held_bytes >= TRIM_BYTES and _LIBC is not None:
        thread = threading.Thread(target=trim, args=(TRIM_DELAYS_S,), name="malloc-trim")
        thread.daemon = True
        thread.start()
