import asyncio
import time

from fastapi import APIRouter, Request
from sqlalchemy import text

from app.db import get_read_engine
from app.schemas import Health

router = APIRouter()
BROKER_CHECK_S = 2.0
_SELECT_1 = text("SELECT 1")


@router.get("/healthz", response_model=Health, tags=["health"])
@router.head("/healthz", response_model=Health, include_in_schema=False)  # HEAD too (load balancers), not in the schema
async def healthz(request: Request) -> Health:
    """Liveness plus database and broker reachability.  The database is asked inline (``SELECT 1`` on the read
    connections, which nothing else holds); the broker is checked in a worker thread at most every 2 s and
    the last answer given — so a health probe stays fast however busy the server is."""
    try:
        with get_read_engine(request.app.state.settings.db_url).connect() as conn:
            conn.execute(_SELECT_1)
        db_ok = True
    except Exception:  # noqa: BLE001 - any failure means unreachable
        db_ok = False
    broker_ok = await request.app.state.broker_status.get()
    return Health(status="ok" if db_ok and broker_ok else "degraded", database=db_ok, broker=broker_ok)


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
