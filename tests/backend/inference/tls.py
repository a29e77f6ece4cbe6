"""TLS for tests: a self-signed certificate for 127.0.0.1 (openssl CLI) and a TLS-terminating
TCP proxy in front of a plain server (the Bento), as a gateway or sidecar would be.

The proxy offers ALPN `h2` and `http/1.1`, so gRPC (HTTP/2) and REST both pass through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import free_port


def self_signed(folder: Path, name: str = "model") -> tuple[Path, Path]:
    """(certificate, key) PEM files for CN=127.0.0.1 with IP and DNS subjectAltNames."""
    if not shutil.which("openssl"):
        pytest.skip("the openssl command is needed to make a test certificate")
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


@contextlib.contextmanager
def tls_proxy(upstream: str, cert: Path, key: Path) -> Iterator[str]:
    """Serve TLS on a free port of 127.0.0.1, forwarding plain TCP to `upstream` (host:port);
    yields "127.0.0.1:PORT"."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    context.set_alpn_protocols(["h2", "http/1.1"])
    host, port = upstream.rsplit(":", 1)
    listen = free_port()
    loop = asyncio.new_event_loop()
    started = threading.Event()
    stop: asyncio.Future | None = None

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(host, int(port))
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    async def main() -> None:
        nonlocal stop
        stop = loop.create_future()
        server = await asyncio.start_server(handle, "127.0.0.1", listen, ssl=context)
        started.set()
        async with server:
            await stop

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert started.wait(10), "TLS proxy did not start"
    try:
        yield f"127.0.0.1:{listen}"
    finally:
        loop.call_soon_threadsafe(lambda: stop.done() or stop.set_result(None))
        thread.join(10)
        if not thread.is_alive():
            loop.close()
