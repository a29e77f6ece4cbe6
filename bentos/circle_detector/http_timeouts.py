"""A request-header read timeout for uvicorn, which has none (slowloris).

uvicorn closes idle keep-alive connections, but a client that opens a connection and sends its
headers a byte at a time holds it (and a slot of the server) for as long as it likes. This
protocol arms a timer when a connection opens and when each request begins; the headers must
be complete before it fires, else the client gets a 408 JSON answer and the connection closes.
The body has its own timeout in the V2 app (`rest/endpoints.py`), so it applies under any server.

`install(timeout_s)` makes it uvicorn's `http="auto"` protocol (what `bentoml serve`'s worker
uses); `protocol(timeout_s)` returns the class for a `uvicorn.Config(http=...)`.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http import auto
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


def _timeout_response(timeout_s: float) -> bytes:
    body = json.dumps({"error": f"request headers not received within {timeout_s:g} s"}).encode()
    head = (
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


def protocol(timeout_s: float) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with a header read timeout of `timeout_s` seconds."""
    response = _timeout_response(timeout_s)

    class HeaderTimeoutProtocol(HttpToolsProtocol):
        header_timeout_s = timeout_s
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self._header_timer is None:
                self._arm()

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._expired)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _expired(self) -> None:
            self._header_timer = None
            if not self.transport.is_closing():
                self.transport.write(response)
                self.transport.close()

    return HeaderTimeoutProtocol


def install(timeout_s: float) -> None:
    """Make the timed protocol uvicorn's `auto` HTTP protocol in this process."""
    auto.AutoHTTPProtocol = protocol(timeout_s)
