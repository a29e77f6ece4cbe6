"""Helpers for backend tests: run `python -m backend` as a real server, make test images.

Every wait is bounded; a server that fails to start raises with the tail of its log.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
from PIL import Image, ImageDraw

from tests.servers import REPO_ROOT, free_port, start_bento, stop_process_group

API = "/api/v1/images/"
API_KEY = "test-key-123"
START_TIMEOUT_S = 60.0


@dataclass
class BackendServer:
    """A running `python -m backend`."""

    url: str
    env: dict[str, str]
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def storage_dir(self) -> Path:
        return Path(self.env.get("STORAGE_DIR") or self.data_dir / "images")

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "backend.sqlite3"

    def client(self, **kwargs) -> httpx.Client:
        kwargs.setdefault("timeout", 60.0)
        return httpx.Client(base_url=self.url, headers=self.headers, **kwargs)

    def async_client(self, **kwargs) -> httpx.AsyncClient:
        kwargs.setdefault("timeout", 120.0)
        return httpx.AsyncClient(base_url=self.url, headers=self.headers, **kwargs)

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def file_count(self) -> int:
        """Stored files (content-addressed, under ab/cd/)."""
        return sum(1 for p in self.storage_dir.glob("??/??/*") if p.is_file())

    def file_path(self, data: bytes) -> Path:
        key = hashlib.sha256(data).hexdigest()
        return self.storage_dir / key[:2] / key[2:4] / key


def start_backend(
    data_dir: Path, env: Mapping[str, str] | None = None, timeout_s: float = START_TIMEOUT_S
) -> BackendServer:
    """Start `python -m backend` on a free port and wait until /health answers."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    full_env = {
        **os.environ,
        "DATA_DIR": str(data_dir),
        "LOG_LEVEL": "warning",
        "MODEL_RETRY_DEADLINE_S": "1",
        "MODEL_RETRY_BACKOFF_S": "0.1",
        "MODEL_RETRY_BACKOFF_MAX_S": "0.5",
        "PENDING_RETRY_INTERVAL_S": "0",  # tests that want the background retry turn it on
        **(env or {}),
    }
    full_env.pop("PORT", None)
    log_path = data_dir / f"backend-{port}.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "backend", "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO_ROOT,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    headers = {"X-API-Key": full_env["API_KEY"]} if full_env.get("API_KEY") else {}
    server = BackendServer(
        f"http://127.0.0.1:{port}", full_env, data_dir, process, log_path, headers
    )
    try:
        _wait_healthy(server, timeout_s)
    except BaseException:
        stop_backend(server)
        raise
    return server


def _wait_healthy(server: BackendServer, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(
                    f"backend exited with {server.process.returncode}:\n{server.log_tail()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if client.get(f"{server.url}/health").status_code == 200:
                    return
            time.sleep(0.05)
    raise TimeoutError(f"backend not healthy after {timeout_s:.0f} s:\n{server.log_tail()}")


def stop_backend(server: BackendServer, sig: int = signal.SIGTERM, timeout_s: float = 15) -> None:
    """Stop the server (SIGTERM for a clean stop, SIGKILL to simulate a crash)."""
    stop_process_group(server.process, sig, timeout_s)


def wait_until(
    predicate: Callable[[], bool], timeout_s: float = 15.0, what: str = "condition"
) -> float:
    """Poll `predicate` every 50 ms until it holds; seconds it took (fails past `timeout_s`)."""
    start = time.monotonic()
    while not predicate():
        assert time.monotonic() - start < timeout_s, f"{what} not met in {timeout_s} s"
        time.sleep(0.05)
    return time.monotonic() - start


@contextlib.contextmanager
def running_backend(
    data_dir: Path, env: Mapping[str, str] | None = None
) -> Iterator[BackendServer]:
    server = start_backend(data_dir, env)
    try:
        yield server
    finally:
        stop_backend(server)


def circles_png(seed: int = 0, size: tuple[int, int] = (160, 120), fmt: str = "PNG") -> bytes:
    """A light image with a few dark circles; `seed` makes each one's bytes unique."""
    rng = np.random.default_rng(seed)
    width, height = size
    img = Image.new("L", size, 230)
    draw = ImageDraw.Draw(img)
    for _ in range(3):
        r = int(rng.integers(6, min(width, height) // 4))
        cx, cy = int(rng.integers(r, width - r)), int(rng.integers(r, height - r))
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=40, width=2)
    img.putpixel((0, 0), int(seed % 256))
    img.putpixel((1, 0), int(seed // 256 % 256))
    out = io.BytesIO()
    img.convert("RGB").save(out, format=fmt)
    return out.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A tiny valid-looking PNG whose header claims width x height grey pixels (a bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (width + 1) * 4, 9)  # a few rows of zeros
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def upload(client: httpx.Client, data: bytes, name: str = "c.png", **params) -> httpx.Response:
    """POST one file the way a browser would."""
    return client.post(API, files={"file": (name, data, "image/png")}, params=params or None)


def snapshot(server: BackendServer) -> tuple[int, int]:
    """(images in the database, files in storage): must not change after a rejected upload."""
    with server.client() as c:
        total = c.get(API, params={"limit": 1}).json()["total"]
    return total, server.file_count()


def db_rows(server: BackendServer, sql: str) -> list[tuple]:
    """Run SQL directly on the server's database (SQLite file or PostgreSQL)."""
    url = server.env.get("DATABASE_URL") or ""
    if not url:
        import sqlite3

        with contextlib.closing(sqlite3.connect(server.sqlite_path, timeout=10)) as conn:
            rows = conn.execute(sql).fetchall()
            conn.commit()
            return rows

    import asyncio

    import asyncpg

    async def run() -> list[tuple]:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            return [tuple(r) for r in await conn.fetch(sql)]
        finally:
            await conn.close()

    return asyncio.run(run())


def start_bento_at(bentoml_home: Path, http_port: int, grpc_port: int):
    """`tests.servers.start_bento` on chosen ports, so a stopped model server can come back at
    the same address."""
    return start_bento(bentoml_home, http_port=http_port, grpc_port=grpc_port)
