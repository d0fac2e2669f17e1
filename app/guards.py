"""Request guards that hold however the app is served: Host (DNS rebinding), cross-site writes (CSRF).

**Host.**  With auth switched off the API trusts every loopback client, so a page on another site whose
name is re-pointed at 127.0.0.1 (DNS rebinding) could read and write through the victim's browser.  Such a
request carries the attacker's name in ``Host``: only loopback names are answered then (``localhost``,
``127.0.0.1``, ``[::1]``, any port).  With auth on, ``GXNOR_ALLOWED_HOSTS`` (a JSON list) restricts the names,
and the default is any (a token is needed anyway).  Others get 400.

**Cross-site writes.**  A page on another origin can send a "simple" request — POST with no body, or a
form-encoded or text/plain one — without a CORS preflight; with auth off nothing else would stop it (the
cancel routes have no body).  So every state-changing request (POST, PUT, PATCH, DELETE) under ``/api/`` must
show that it was not such a request: a JSON ``Content-Type``, an ``Authorization`` header or an
``X-Requested-With`` header (each forces a preflight, which this server never grants).  With auth on, every
such route needs the ``Authorization`` header anyway (401 without it).  And when the browser
says where the request comes from (``Origin``), that origin must be this server's own.  Refusals are 403 with
a message saying what to send.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import orjson

from app.settings import Settings

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "testserver"})  # (the last: Starlette's TestClient)


def _host_name(value: str) -> str:
    """``example.org:8000`` → ``example.org``; ``[::1]:8000`` → ``::1``; lower case."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def answered_hosts(settings: Settings) -> frozenset[str] | None:
    """The Host names this server answers to (``None``: any)."""
    if settings.allowed_hosts is not None:
        return frozenset(h.lower() for h in settings.allowed_hosts)
    return None if settings.auth else LOOPBACK_HOSTS


def host_answered(hosts: frozenset[str] | None, host: str | None) -> bool:
    return hosts is None or (host is not None and _host_name(host) in hosts)


class RequestGuard:
    """Pure ASGI middleware (no per-request objects beyond a header scan)."""

    def __init__(self, app, settings: Settings):
        self.app = app
        self.need_marker = not settings.auth  # with auth on, the Authorization header every write needs is one
        self.hosts = answered_hosts(settings)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        host = origin = ctype = None
        marked = False
        for name, value in scope["headers"]:
            if name == b"host":
                host = value.decode("latin-1")
            elif name == b"origin":
                origin = value.decode("latin-1")
            elif name == b"content-type":
                ctype = value.decode("latin-1")
            elif name in (b"authorization", b"x-requested-with"):
                marked = True
        if not host_answered(self.hosts, host):
            return await _refuse(send, 400, "this server does not answer to that Host name")
        if scope["method"] in UNSAFE and scope["path"].startswith("/api/"):
            is_json = ctype is not None and ctype.split(";", 1)[0].strip().lower() == "application/json"
            if self.need_marker and not (is_json or marked):
                return await _refuse(send, 403, "a state-changing request must send 'Content-Type: "
                                     "application/json' (or an Authorization or X-Requested-With header)")
            if origin is not None and (host is None or not _same_origin(origin, host)):
                return await _refuse(send, 403, "cross-origin request refused")
        return await self.app(scope, receive, send)


def _same_origin(origin: str, host: str) -> bool:
    if origin == "null":
        return False
    parts = urlsplit(origin)
    return parts.netloc.lower() == host.strip().lower()


async def _refuse(send, status: int, message: str) -> None:
    body = orjson.dumps({"detail": message})
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
