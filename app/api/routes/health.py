"""``/healthz``: liveness plus database and broker reachability.

Two ways in.  The route below answers through the app like any request.  And each API process keeps a
``HealthState`` fresh in the background (every ``REFRESH_S``) from which ``app.serving``'s protocol answers a
plain ``GET``/``HEAD /healthz`` the moment it arrives, before it is queued behind the requests in flight: a
load balancer's probe then measures whether the process is alive and its database and broker are
reachable — not how busy the event loop is (on a saturated server that wait is hundreds of ms, and a probe
that times out takes a busy-but-healthy server out of rotation).  The answer is the same JSON, at most
``REFRESH_S`` old; when the state is older than ``STALE_S`` (the loop was blocked that long) the request
takes the ordinary route instead.
"""

import asyncio
import contextlib
import time

import orjson
from fastapi import APIRouter, Request
from sqlalchemy import text

from app.db import get_read_engine
from app.guards import answered_hosts
from app.schemas import Health
from app.security import SECURITY_HEADERS
from app.settings import Settings

router = APIRouter()
BROKER_CHECK_S = 2.0
REFRESH_S = 0.25
STALE_S = 1.0
_SELECT_1 = text("SELECT 1")


@router.get("/healthz", response_model=Health, tags=["health"])
@router.head("/healthz", response_model=Health, include_in_schema=False)  # HEAD too (load balancers), not in the schema
async def healthz(request: Request) -> Health:
    """Liveness plus database and broker reachability.  The database is asked inline (``SELECT 1`` on the read
    connections, which nothing else holds); the broker is checked in a worker thread at most every 2 s and
    the last answer given — so a health probe stays fast however busy the server is."""
    db_ok = database_reachable(request.app.state.settings.db_url)
    broker_ok = await request.app.state.broker_status.get()
    return Health(status="ok" if db_ok and broker_ok else "degraded", database=db_ok, broker=broker_ok)


def database_reachable(db_url: str) -> bool:
    try:
        with get_read_engine(db_url).connect() as conn:
            conn.execute(_SELECT_1)
        return True
    except Exception:  # noqa: BLE001 - any failure means unreachable
        return False


class HealthState:
    """This process's health, refreshed every ``REFRESH_S`` by ``run`` (a task of the app's lifespan), as
    ready-made HTTP responses for ``app.serving``."""

    def __init__(self, settings: Settings, broker: "BrokerStatus"):
        self.db_url, self.broker = settings.db_url, broker
        self.hosts = answered_hosts(settings)  # the Host names answered, as app.guards has them
        self.checked = 0.0
        self._get = self._head = b""

    async def run(self) -> None:
        while True:
            broker_ok = await self.broker.get()
            # inline, with no await before _set: one SELECT 1 on the read connections, so a request's
            # database_failed() cannot fall between this answer and its publication
            db_ok = database_reachable(self.db_url)
            self._set(Health(status="ok" if db_ok and broker_ok else "degraded", database=db_ok, broker=broker_ok))
            await asyncio.sleep(REFRESH_S)

    def _set(self, health: Health) -> None:
        self._get = json_response(b"200 OK", health.model_dump())
        self._head = self._get.partition(b"\r\n\r\n")[0] + b"\r\n\r\n"
        self.checked = time.monotonic()

    def response(self, head: bool) -> bytes | None:
        """The whole HTTP response, or ``None`` when the state is stale (the caller takes the normal route)."""
        if time.monotonic() - self.checked > STALE_S:
            return None
        return self._head if head else self._get


def json_response(status: bytes, body: dict) -> bytes:
    """A whole HTTP/1.1 response with a JSON body and the headers every health answer carries."""
    raw = orjson.dumps(body)
    head = [b"HTTP/1.1 " + status, b"content-type: application/json", b"content-length: %d" % len(raw),
            b"cache-control: no-store", *(f"{k}: {v}".encode() for k, v in SECURITY_HEADERS)]
    return b"\r\n".join(head) + b"\r\n\r\n" + raw


CURRENT: HealthState | None = None  # this process's, while its app runs (read by app.serving)


def database_failed() -> None:
    """A request just found the database unreachable: drop the cached answer, so the next probe takes the
    ordinary route (which asks the database) rather than report "reachable" for up to ``REFRESH_S`` more."""
    if CURRENT is not None:
        CURRENT.checked = 0.0


@contextlib.asynccontextmanager
async def kept_fresh(state: HealthState):
    """Run ``state`` for the app's lifetime and publish it as ``CURRENT``."""
    global CURRENT
    task = asyncio.get_running_loop().create_task(state.run())
    CURRENT = state
    try:
        yield
    finally:
        CURRENT = None
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class BrokerStatus:
    """The broker's reachability, refreshed in the background (the check blocks for up to 2 s when it is down)."""

    def __init__(self, celery):
        self.celery = celery
        self.ok: bool | None = None
        self.checked = 0.0
        self._refresh: asyncio.Task | None = None

    async def get(self) -> bool:
        if time.monotonic() - self.checked > BROKER_CHECK_S and (self._refresh is None or self._refresh.done()):
            self._refresh = asyncio.get_running_loop().create_task(self._check())
        if self.ok is None:  # never checked yet: wait for the first answer
            await asyncio.shield(self._refresh)
        return bool(self.ok)

    async def _check(self) -> None:
        self.ok = await asyncio.to_thread(broker_reachable, self.celery)
        self.checked = time.monotonic()


def broker_reachable(celery) -> bool:
    try:
        with celery.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return True
    except Exception:  # noqa: BLE001
        return False
