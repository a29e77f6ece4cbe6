"""A small TCP proxy on 127.0.0.1 that a test stops and starts, to cut a database off.

Stopping closes the listening socket and resets every open connection (what a network
partition or a database failover looks like to the client); the database itself is left alone.
Starting listens again on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

from tests.servers import free_port


class TcpProxy:
    """Forwards 127.0.0.1:`port` to `target_host`:`target_port` while started."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    def _call(self, coro) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    def start(self) -> None:
        self._call(self._start())

    def stop(self) -> None:
        self._call(self._stop())

    def close(self) -> None:
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()

    async def _start(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(
                self._handle, "127.0.0.1", self.port, reuse_address=True
            )

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()  # RST: the client sees the connection die at once
        self._writers.clear()

    async def _open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(*self.target)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await self._open_upstream()
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()  # flushes what is buffered (abort would drop a response's tail)


class RoundRobinProxy(TcpProxy):
    """A load balancer in front of several replicas: each new connection goes to the next
    target, skipping any that refuses (a killed replica), like a Service with its endpoints."""

    def __init__(self, targets: list[tuple[str, int]]) -> None:
        super().__init__(*targets[0])
        self.targets = targets
        self.connections = [0] * len(targets)
        self._next = 0

    async def _open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        start, count = self._next, len(self.targets)
        self._next = (start + 1) % count
        for index in [(start + k) % count for k in range(count)]:  # local: other handlers run
            try:
                opened = await asyncio.open_connection(*self.targets[index])
            except OSError:
                continue
            self.connections[index] += 1
            return opened
        raise ConnectionRefusedError("no replica accepts connections")
