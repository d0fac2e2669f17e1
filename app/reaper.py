"""The reaper: runs whose worker died (lease lapsed) go back to the queue, or fail when their
attempt budget is spent.  Idempotent, so every API process and worker may run one."""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import select, update

from app.db import session_scope
from app.models import Run
from app.settings import Settings

log = logging.getLogger("gxnor.reaper")


def reap(settings: Settings, celery) -> list[int]:
    """Requeue (and re-send) every running run whose lease has lapsed; returns their ids."""
    from worker.celery_app import TASK_NAME
    from worker.runner import fail_spent

    with session_scope(settings.db_url) as s:
        expired = list(s.scalars(
            update(Run).where(Run.status == "running", Run.lease_expires_at < time.time())
            .values(status="queued", lease_expires_at=None).returning(Run.id)
        ))
        if expired:
            fail_spent(s, expired)
            expired = list(s.scalars(select(Run.id).where(Run.id.in_(expired), Run.status == "queued")))
    for run_id in expired:
        log.warning("run %s: its worker stopped renewing the lease; requeued", run_id)
        celery.send_task(TASK_NAME, args=[run_id], queue=settings.queue)
    return expired


def start_reaper(settings: Settings, celery) -> threading.Event:
    """Reap every ``reaper_interval_s`` in a daemon thread; set the returned event to stop it."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(settings.reaper_interval_s):
            try:
                reap(settings, celery)
            except Exception:  # noqa: BLE001 - e.g. database briefly unreachable: try again next round
                log.warning("reaper round failed", exc_info=True)

    threading.Thread(target=loop, name="gxnor-reaper", daemon=True).start()
    return stop
