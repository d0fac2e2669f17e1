"""How the API is served: uvicorn with a deadline on request headers and a bounded graceful shutdown.

uvicorn times out idle keep-alive connections, but not a client that connects and sends nothing, nor one
that trickles its request headers a byte at a time (slowloris): each would hold a connection for ever.
``GuardedHTTPProtocol`` gives every request ``header_timeout_s`` (10 s) from its first byte — or from
connecting — to complete its headers, then closes the connection.  (Slow *bodies* are timed by
``app.main.BodyLimit``: 408.)

On SIGTERM/SIGINT the app ends its event streams at once (``app.streams.Hub.close_all``) and uvicorn gives
other open responses (a download) ``shutdown_timeout_s`` before cutting them, so the process always stops.
"""

from __future__ import annotations

import asyncio

import uvicorn
from uvicorn.protocols.http.auto import AutoHTTPProtocol

from app.settings import get_settings


class GuardedHTTPProtocol(AutoHTTPProtocol):  # httptools when installed, else h11
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None
        self._header_timeout = get_settings().header_timeout_s

    def _waiting_for_headers(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _arm(self) -> None:
        if self._header_deadline is None:
            self._header_deadline = self.loop.call_later(self._header_timeout, self._headers_overdue)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_overdue(self) -> None:
        self._header_deadline = None
        if self._waiting_for_headers() and not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm()  # a client that connects and sends nothing

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.transport.is_closing():
            self._disarm()
        elif self._waiting_for_headers():
            self._arm()  # part of a request: the deadline runs from its first byte (more bytes do not extend it)
        else:
            self._disarm()  # headers complete: the request runs

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._disarm()  # idle again: uvicorn's keep-alive timeout takes over

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)


def run(app, *, host: str, port: int, workers: int = 1, log_level: str = "info", access_log: bool = False) -> None:
    """Serve ``app`` (an app, or with ``workers`` > 1 the import string of its factory) with the guards above."""
    settings = get_settings()
    uvicorn.run(app, factory=isinstance(app, str), workers=workers if isinstance(app, str) else None,
                host=host, port=port, log_level=log_level, access_log=access_log,
                http="app.serving:GuardedHTTPProtocol", timeout_graceful_shutdown=settings.shutdown_timeout_s)
