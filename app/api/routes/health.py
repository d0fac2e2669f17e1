from fastapi import APIRouter, Request
from sqlalchemy import text

from app.api.deps import SettingsDep
from app.db import get_engine
from app.schemas import Health

router = APIRouter()


@router.get("/healthz", response_model=Health, tags=["health"])
def healthz(request: Request, settings: SettingsDep) -> Health:
    """Liveness plus database and broker reachability."""
    try:
        with get_engine(settings.db_url).connect() as conn:
            conn.execute(text("SELECT 1"))
        db_ok = True
    except Exception:  # noqa: BLE001 - any failure means unreachable
        db_ok = False
    broker_ok = broker_reachable(request.app.state.celery)
    return Health(status="ok" if db_ok and broker_ok else "degraded", database=db_ok, broker=broker_ok)


def broker_reachable(celery) -> bool:
    try:
        with celery.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return True
    except Exception:  # noqa: BLE001
        return False
