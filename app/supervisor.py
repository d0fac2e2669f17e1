"""Start-up duties of the embedded product (one machine, one local worker)."""

from __future__ import annotations

from sqlalchemy import select

from app import lifecycle
from app.db import session_scope
from app.models import Run
from app.queue import make_celery
from app.settings import Settings


def requeue_orphans(settings: Settings) -> list[int]:
    """At start-up no local worker is running yet, so a ``running`` run was interrupted: put it back
    to ``queued``; then (re)send every queued run's task.  The database is the source of truth —
    a run whose message survived in the queue as well is claimed once and the extra message skipped."""
    with session_scope(settings.db_url) as s:
        lifecycle.requeue_orphans(s)
        queued = list(s.scalars(select(Run.id).where(Run.status == "queued").order_by(Run.id)))
    lifecycle.enqueue(make_celery(settings), settings, queued)
    return queued
