"""Latency of the backend on local disk vs an S3 bucket (moto on 127.0.0.1), PostgreSQL, MODE=dummy.

`python -m tests.backend.measure_storage [N]`: N uploads (8 at a time) of 512x384 PNGs, then
GET /file and the first (uncached) and second (cached) /thumbnail of each, and DELETE; prints
p50/p95 per route and store, and the backend's peak RSS (VmHWM). Not a test: a measurement for
backend/README.md's production section.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tests.backend.helpers import API, circles_png, start_backend, stop_backend
from tests.backend.s3 import start_moto
from tests.servers import stop_process_group


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


async def _run(url: str, images: list[bytes]) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {k: [] for k in ("upload", "file", "thumb1", "thumb2", "del")}
    gate = asyncio.Semaphore(8)
    async with httpx.AsyncClient(base_url=url, timeout=60) as c:

        async def timed(name: str, method: str, path: str, **kw) -> httpx.Response:
            async with gate:
                t0 = time.perf_counter()
                r = await c.request(method, path, **kw)
                times[name].append((time.perf_counter() - t0) * 1000)
            assert r.status_code < 300, r.text
            return r

        ups = await asyncio.gather(
            *(timed("upload", "POST", API, files={"file": ("m.png", d)}) for d in images)
        )
        ids = [r.json()["id"] for r in ups]
        await asyncio.gather(*(timed("file", "GET", f"{API}{i}/file") for i in ids))
        await asyncio.gather(*(timed("thumb1", "GET", f"{API}{i}/thumbnail") for i in ids))
        await asyncio.gather(*(timed("thumb2", "GET", f"{API}{i}/thumbnail") for i in ids))
        await asyncio.gather(*(timed("del", "DELETE", f"{API}{i}") for i in ids))
    return times


def _pg_database() -> str:
    import uuid

    import asyncpg

    name = f"measure_{uuid.uuid4().hex[:10]}"

    async def make() -> None:
        conn = await asyncpg.connect("postgres://postgres@127.0.0.1:5432/postgres")
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(make())
    return f"postgres://postgres@127.0.0.1:5432/{name}"


def main(n: int = 200) -> None:
    root = Path(tempfile.mkdtemp(prefix="measure-storage-"))
    moto = start_moto(root)
    images = [circles_png(seed=50_000 + i, size=(512, 384)) for i in range(n)]
    size_kb = statistics.mean(len(d) for d in images) / 1024
    try:
        for store in ("local", "s3"):
            env = {"MODE": "dummy", "DATABASE_URL": _pg_database()}
            if store == "s3":
                env.update(moto.new_bucket())
            server = start_backend(root / store, env)
            try:
                asyncio.run(_run(server.url, images[:16]))  # warm-up
                times = asyncio.run(_run(server.url, images))
                status = Path(f"/proc/{server.process.pid}/status").read_text()
                hwm = next(x for x in status.splitlines() if x.startswith("VmHWM"))
            finally:
                stop_backend(server)
            cells = ", ".join(
                f"{k} p50 {_pct(v, 50):.1f} / p95 {_pct(v, 95):.1f} ms" for k, v in times.items()
            )
            peak = hwm.split()[1]
            print(f"{store}: {n} PNGs of {size_kb:.0f} KB, 8 at a time: {cells}; VmHWM {peak} kB")
    finally:
        stop_process_group(moto.process)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
