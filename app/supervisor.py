"""Start-up duties of the embedded product (one machine, one local worker)."""

from __future__ import annotations

from sqlalchemy import select, update

from app.db import session_scope
from app.models import Run
from app.settings import Settings
from worker.celery_app import TASK_NAME, make_celery


def requeue_orphans(settings: Settings) -> list[int]:
    """At start-up no local worker is running yet, so a ``running`` run was interrupted: put it back
    to ``queued``; then (re)send every queued run's task.  The database is the source of truth —
    a run whose message survived in the queue as well is claimed once and the extra message skipped."""
    with session_scope(settings.db_url) as s:
        s.execute(update(Run).where(Run.status == "running").values(status="queued", lease_expires_at=None))
        queued = list(s.scalars(select(Run.id).where(Run.status == "queued").order_by(Run.id)))
    celery = make_celery(settings)
    for run_id in queued:
        celery.send_task(TASK_NAME, args=[run_id], queue=settings.queue)
    return queued
