"""How the API is served: uvicorn with a deadline on request headers and a bounded graceful shutdown.

uvicorn times out idle keep-alive connections, but not a client that connects and sends nothing, nor one
that trickles its request headers a byte at a time (slowloris): each would hold a connection for ever.
``GuardedHTTPProtocol`` gives every request ``header_timeout_s`` (10 s) from its first byte — or from
connecting — to complete its headers, then closes the connection.  (Slow *bodies* are timed by
``app.main.BodyLimit``: 408.)

A plain ``GET``/``HEAD /healthz`` is answered by the protocol itself from the process's health state
(``app.api.routes.health``) as soon as it arrives, instead of waiting behind the requests in flight.

On SIGTERM/SIGINT the app ends its event streams at once (``app.streams.Hub.close_all``) and uvicorn gives
other open responses (a download) ``shutdown_timeout_s`` before cutting them, so the process always stops.
"""

from __future__ import annotations

import asyncio
import contextlib

import uvicorn
from uvicorn.protocols.http.auto import AutoHTTPProtocol

from app.api.routes import health
from app.guards import host_answered
from app.settings import get_settings

_HEALTH_REQUESTS = {b"GET /healthz HTTP/1.1": False, b"HEAD /healthz HTTP/1.1": True,
                    b"GET /healthz HTTP/1.0": False, b"HEAD /healthz HTTP/1.0": True}


class GuardedHTTPProtocol(AutoHTTPProtocol):  # httptools when installed, else h11
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None
        self._header_timeout = get_settings().header_timeout_s
        self._mid_request = False  # part of a request's headers is in the parser

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
        if self._answer_health(data):
            return
        super().data_received(data)
        self._mid_request = False
        if self.transport.is_closing():
            self._disarm()
        elif self._waiting_for_headers():
            self._mid_request = True
            self._arm()  # part of a request: the deadline runs from its first byte (more bytes do not extend it)
        else:
            self._disarm()  # headers complete: the request runs

    def _answer_health(self, data: bytes) -> bool:
        """Answer a health probe here and now, if ``data`` is exactly one complete, bodiless ``/healthz``
        request on an idle connection and the health state is fresh; otherwise leave it to the app."""
        state = health.CURRENT
        if state is None or self._mid_request or not self._waiting_for_headers() or getattr(self, "pipeline", None):
            return False
        end = data.find(b"\r\n\r\n")
        if end < 0 or end + 4 != len(data):
            return False
        line, _, headers = data[:end].partition(b"\r\n")
        head = _HEALTH_REQUESTS.get(line)
        if head is None:
            return False
        host, close = None, line.endswith(b"1.0")
        for raw in headers.split(b"\r\n"):
            name, _, value = raw.partition(b":")
            name = name.strip().lower()
            if name in (b"content-length", b"transfer-encoding", b"expect", b"upgrade"):
                return False  # a body or a protocol switch: the app's business
            if name == b"host":
                host = value.strip().decode("latin-1")
            elif name == b"connection":
                close = b"close" in value.lower() or (close and b"keep-alive" not in value.lower())
        if not host_answered(state.hosts, host):
            return False
        response = state.response(head)
        if response is None:
            return False
        self._unset_keepalive_if_required()
        self._disarm()
        self.transport.write(response if not close else response.replace(
            b"\r\n\r\n", b"\r\nconnection: close\r\n\r\n", 1))
        if close:
            self.transport.close()
        else:
            self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive,
                                                                self.timeout_keep_alive_handler)
        return True

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._disarm()  # idle again: uvicorn's keep-alive timeout takes over

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)


def run(app, *, host: str, port: int, workers: int = 1, log_level: str = "info", access_log: bool = False,
        on_started=None) -> None:
    """Serve ``app`` (an app, or with ``workers`` > 1 the import string of its factory) with the guards above.
    ``on_started()`` (an app only) is called in the server's loop once it listens (``gxnor up`` then says how
    to sign in)."""
    settings = get_settings()
    options = {"host": host, "port": port, "log_level": log_level, "access_log": access_log,
               "http": "app.serving:GuardedHTTPProtocol", "timeout_graceful_shutdown": settings.shutdown_timeout_s}
    if on_started is None or isinstance(app, str):
        uvicorn.run(app, factory=isinstance(app, str), workers=workers if isinstance(app, str) else None, **options)
        return
    server = _Server(uvicorn.Config(app, **options), on_started)
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises the Ctrl-C it handled (as uvicorn.run)
        server.run()
    if not server.started:  # as uvicorn.run: it could not listen (a port in use …), said in its log
        raise SystemExit(3)


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, on_started):
        super().__init__(config)
        self._on_started = on_started

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets)
        if self.started:
            self._on_started()
