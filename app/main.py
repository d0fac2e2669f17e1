"""The FastAPI application: routes under /api/v1, OpenAPI at /openapi.json, docs at /docs."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from app import health_port
from app.api.routes import (
    access,
    catalog,
    estimate,
    health,
    models,
    records,
    run_edits,
    run_restarts,
    runs,
    sweeps,
    ui,
    workers,
)
from app.api.routes.health import BrokerStatus, HealthState, kept_fresh
from app.auth import ensure_admin
from app.db import migrate, session_scope
from app.exported import ModelService
from app.guards import RequestGuard
from app.queue import make_celery
from app.reaper import start_reaper
from app.security import SecurityHeaders, allowed_methods
from app.settings import Settings, get_settings
from app.streams import Hub
from gxnor_core.errors import FieldError


def _field(loc: tuple) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts)


class BodyLimit:
    """413 for a request body over ``max_bytes``, by its Content-Length or while it streams in; 408 when the
    next part of a body takes longer than ``timeout_s`` to arrive (a slow client holds no slot for ever)."""

    def __init__(self, app, max_bytes: int, timeout_s: float = 30.0):
        self.app, self.max_bytes, self.timeout_s = app, max_bytes, timeout_s

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            return await self._reject(send, 413, b'{"detail":"request body too large"}')
        seen, body_done = 0, False

        async def counted():
            nonlocal seen, body_done
            if body_done:  # after the body, receive() waits for the client to leave: no deadline
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.timeout_s)
            except TimeoutError:  # (an HTTPException: FastAPI passes it on as it is, as 408)
                raise HTTPException(408, "the request body did not arrive in time",
                                    headers={"Connection": "close"}) from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
                if seen > self.max_bytes:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await self._reject(send, 413, b'{"detail":"request body too large"}')

    async def _reject(self, send, status: int, body: bytes):
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


def operation_id(route) -> str:
    """A route's OpenAPI operation id is its function's name (``create_run``, ``list_runs``): what a client
    generated from /openapi.json names its methods.  tests/test_openapi_ids.py keeps them unique."""
    return route.name


def prepare_database(settings: Settings) -> str | None:
    """Migrate to the newest schema; on first start create the admin.  Returns the admin's new token when
    one was made (shown once) — the CLI prints it with a sign-in link before the server starts."""
    migrate(settings.db_url)
    given = settings.admin_token.get_secret_value() if settings.admin_token else None
    try:
        with session_scope(settings.db_url) as session:
            return ensure_admin(session, given)
    except IntegrityError:  # another process made the admin at the same moment: that one stands
        return None


def _end_streams_on_signal(hub: Hub):
    """On SIGTERM/SIGINT end every event stream before uvicorn waits for open responses (it waits for each
    to finish, and a stream never would).  Chained in front of uvicorn's own handler; returns the undo."""
    loop = asyncio.get_running_loop()
    previous = {}

    def handler(signum, frame):
        loop.call_soon_threadsafe(hub.close_all)
        prev = previous.get(signum)
        if callable(prev):
            prev(signum, frame)
        else:  # nobody else handles it: its default action
            signal.signal(signum, prev)
            signal.raise_signal(signum)

    try:
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread (an in-process test client): nothing to chain
        return lambda: None

    def restore():
        for sig, prev in previous.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(sig, prev)

    return restore


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    settings.ensure_dirs()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        token = prepare_database(settings)
        if token:  # started without the CLI (which prints a sign-in link): the token must not be lost
            print(f"GXNOR Lab: created user 'admin' in team 'default'; its API token (shown once): {token}",
                  flush=True)
        stop_reaper = start_reaper(settings, app.state.celery)
        restore = _end_streams_on_signal(app.state.hub)
        # Everything loaded so far (torch, SQLAlchemy, the app) lives as long as the process: move it out of
        # the collector's reach, so a full collection scans only what requests allocate — without this a
        # gen-2 pass over torch's objects stalls every request in flight for ~100 ms.
        gc.collect()
        gc.freeze()
        # And collect young objects every 10 000 allocations instead of 700: a full collection then comes
        # ~14x less often.  Under 1 000 open event streams one still took 30-125 ms (every ~10 s in
        # bench.sse_load), holding the GIL — every request and the health port's thread waited; with this,
        # none came in the bench's minute (health port p99 79 -> 11 ms loaded, docs/BENCHMARKS.md "Session 9").
        gc.set_threshold(10_000, 10, 10)
        async with kept_fresh(HealthState(settings, app.state.broker_status)):
            with health_port.serving(settings.health_host, settings.health_port) as app.state.health_server:
                yield
        app.state.hub.close_all()
        app.state.models.close()
        restore()
        stop_reaper.set()

    app = FastAPI(title="GXNOR Lab", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,  # /docs: ui.py
                  generate_unique_id_function=operation_id,
                  description="Train and study gated XNOR networks: runs, metrics, layers, comparisons.")
    app.state.settings = settings
    app.state.celery = make_celery(settings)
    app.state.broker_status = BrokerStatus(app.state.celery)
    app.state.models = ModelService(settings)  # exported models and the scoring pool (app.exported)
    app.state.hub = Hub(settings.db_url, poll_s=min(settings.progress_interval_s, 0.5),
                        max_streams=settings.max_streams, max_per_user=settings.max_streams_per_user,
                        check_s=min(settings.auth_cache_s, 2.0) or 1.0)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, timeout_s=settings.body_timeout_s)
    app.add_middleware(RequestGuard, settings=settings)
    app.add_middleware(SecurityHeaders)  # outermost: on every response, errors and 413/429 included

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        field = _field(tuple(first.get("loc", ())))
        msg = "unknown key" if first.get("type") == "extra_forbidden" else first.get("msg", "invalid")
        detail = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in errors]
        return JSONResponse(status_code=422, content={"detail": detail, "field": field, "message": f"{field}: {msg}"})

    @app.exception_handler(FieldError)  # a bad config, sweep spec or request field: 422 naming it
    async def _field_error(request: Request, exc: FieldError):
        return JSONResponse(status_code=422, content={
            "detail": [{"loc": ["body", *exc.field.split(".")], "msg": exc.message, "type": "value_error"}],
            "field": exc.field, "message": str(exc)})

    @app.exception_handler(405)
    async def _method_not_allowed(request: Request, exc):
        # Starlette lists only the first matching route's methods; list every route's for this path.
        return JSONResponse(status_code=405, content={"detail": "Method Not Allowed"},
                            headers={"Allow": allowed_methods(app.router.routes, request.scope)})

    @app.exception_handler(PoolTimeout)
    async def _pool_exhausted(request: Request, exc: PoolTimeout):
        return JSONResponse(status_code=503, headers={"Retry-After": "2"},
                            content={"detail": "the server is busy (no database connection free); try again shortly"})

    @app.exception_handler(DBAPIError)
    async def _database_down(request: Request, exc: DBAPIError):
        # A broken or refused connection is an outage (503, retry later); anything else is a bug.
        if isinstance(exc, OperationalError | InterfaceError) or exc.connection_invalidated:
            health.database_failed()  # the next probe asks the database afresh instead of a cached "reachable"
            return JSONResponse(status_code=503, headers={"Retry-After": "5"},
                                content={"detail": "the database is unavailable; try again shortly"})
        raise exc

    app.include_router(health.router)
    app.include_router(runs.router)
    app.include_router(run_edits.router)
    app.include_router(run_restarts.router)
    app.include_router(models.router)
    app.include_router(records.router)
    app.include_router(sweeps.router)
    app.include_router(estimate.router)
    app.include_router(workers.router)
    app.include_router(access.router)
    app.include_router(catalog.router)
    app.include_router(ui.router)
    return app

