"""uvicorn for `python -m backend`, with the request timeouts uvicorn lacks and a clean exit.

uvicorn cuts idle keep-alive connections (`timeout_keep_alive`) but never a request whose
headers or body trickle in (slowloris): a client sending one byte every few seconds holds a
connection, and its buffer, forever. `TimedHttpToolsProtocol` arms a timer when a request
starts (the connection opens, or the first byte of the next request on a kept-alive one):
headers not complete within HEADER_TIMEOUT_S get `408` and the connection closed (a connection
that sent nothing at all is closed silently, as browsers' preconnected sockets expect); a body not
complete within BODY_TIMEOUT_S after its headers gets the connection closed (the app then sees
a disconnect). The response's own time is not limited.

uvicorn re-raises SIGINT/SIGTERM after its graceful shutdown, so the process would end with
KeyboardInterrupt (or be killed by SIGTERM). A shutdown that a signal asked for is the normal
end of a server: `serve` exits 0 after the lifespan has stopped (background retry included).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from backend.config import Settings

log = logging.getLogger(__name__)

_408 = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
    b"connection: close\r\ncontent-length: %d\r\n\r\n%s"
)


class TimedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header and body read deadlines."""

    header_timeout_s = 10.0
    body_timeout_s = 60.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._begun = False  # a request's first byte has arrived

    def _arm(self, seconds: float, on_expiry: Any) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, on_expiry)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout_s, self._headers_too_slow)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._begun = True
        self._arm(self.header_timeout_s, self._headers_too_slow)

    def on_headers_complete(self) -> None:
        self._arm(self.body_timeout_s, self._body_too_slow)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        self._begun = False
        super().on_message_complete()

    def _headers_too_slow(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if not self._begun:
            self.transport.close()
            return
        log.warning("request headers not complete in %g s: closed", self.header_timeout_s)
        body = b'{"error": "request headers not received within %g s"}' % self.header_timeout_s
        self.transport.write(_408 % (len(body), body))
        self.transport.close()

    def _body_too_slow(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        log.warning("request body not complete in %g s: closed", self.body_timeout_s)
        if self.cycle is not None and not self.cycle.response_started:
            body = b'{"error": "request body not received within %g s"}' % self.body_timeout_s
            self.transport.write(_408 % (len(body), body))
        self.transport.close()


def protocol_class(settings: Settings) -> type[TimedHttpToolsProtocol]:
    """The protocol class with this configuration's timeouts."""
    return type(
        "ConfiguredTimedHttpToolsProtocol",
        (TimedHttpToolsProtocol,),
        {"header_timeout_s": settings.header_timeout_s, "body_timeout_s": settings.body_timeout_s},
    )


def _exit_cleanly(signum: int, frame: Any) -> None:
    """Runs when uvicorn re-raises the signal that stopped it: the stop was asked for."""
    log.info("stopped by %s", signal.Signals(signum).name)
    sys.exit(0)


def serve(app: Any, settings: Settings) -> None:
    """Serve `app` until SIGINT/SIGTERM; returns (exit 0) after a graceful shutdown."""
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=10,
        http=protocol_class(settings),
    )
    # uvicorn restores these after its own handlers and re-raises the signal into them.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _exit_cleanly)
    uvicorn.Server(config).run()
