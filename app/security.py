"""Security headers on every HTTP response, and the ``Allow`` header of a 405.

``SecurityHeaders`` is a pure ASGI middleware: it adds a fixed, precomputed list of headers to each
``http.response.start`` message and passes every other message through untouched, so streamed responses
(Server-Sent Events, file downloads) stream as before and a request costs one extra function call.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from starlette.routing import BaseRoute, Match

# The UI, its vendored plotly.js and the API docs (Swagger UI, vendored) are all served from this origin, and
# none of them needs an inline script, eval, a frame or another host.  Inline *styles* stay allowed: plotly.js
# writes `style` attributes and a <style> element as it draws (and Swagger UI sets style attributes).
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])

SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
)


class SecurityHeaders:
    """Adds ``headers`` (default: :data:`SECURITY_HEADERS`) to every HTTP response.  A response that already
    sets one of them keeps its own value for that one."""

    def __init__(self, app, headers: Iterable[tuple[str, str]] = SECURITY_HEADERS):
        self.app = app
        self.headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
        self.names = frozenset(k for k, _ in self.headers)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        extra, names = self.headers, self.names
        started = False

        async def send_with_headers(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                own = list(message.get("headers") or ())
                if any(k.lower() in names for k, _ in own):  # rare: keep the response's own value
                    present = {k.lower() for k, _ in own}
                    own.extend(h for h in extra if h[0] not in present)
                else:
                    own.extend(extra)
                message = {**message, "headers": own}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            # An unhandled error: Starlette's ServerErrorMiddleware, outside every middleware, would answer
            # 500 without these headers.  Answer it here (it sees the response started and only re-raises,
            # so the error is still logged) — unless a response is already under way.
            if not started:
                body = b'{"detail":"internal server error"}'
                await send_with_headers({"type": "http.response.start", "status": 500, "headers": [
                    (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
                await send_with_headers({"type": "http.response.body", "body": body})
            raise


def _flat(routes: Sequence[BaseRoute]) -> Iterable:
    """Every route, including those of included routers.  Newer FastAPI keeps an included router as one
    route object (which has no ``methods``); ``iter_route_contexts`` walks into it.  Older FastAPI copies the
    routes of an included router into the app's list, which is then already flat."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # pragma: no cover - FastAPI before included routers were kept whole
        return routes
    return iter_route_contexts(routes)


def allowed_methods(routes: Sequence[BaseRoute], scope) -> str:
    """The ``Allow`` value for a 405: the methods of every route whose path matches the request's."""
    allowed: set[str] = set()
    for route in _flat(routes):
        methods = getattr(route, "methods", None)
        if methods and route.matches(scope)[0] != Match.NONE:
            allowed.update(methods)
    return ", ".join(sorted(allowed))
