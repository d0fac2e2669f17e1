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
from worker.celery_app import TASK_NAME

log = logging.getLogger("gxnor.reaper")


def reap(settings: Settings, celery) -> list[int]:
    """Requeue (and re-send) every running run whose lease has lapsed; returns their ids."""
    from worker.runner import fail_spent

    with session_scope(settings.db_url) as s:
        # SKIP LOCKED: a worker frozen inside its epoch transaction holds the run's row lock; waiting for it
        # would stall the reaper (every run) until PostgreSQL ends that session (idle_in_transaction timeout,
        # app.db) — skip it this round instead.
        lapsed = (select(Run.id).where(Run.status == "running", Run.lease_expires_at < time.time())
                  .with_for_update(skip_locked=True))
        expired = list(s.scalars(
            update(Run).where(Run.id.in_(lapsed), Run.status == "running")
            .values(status="queued", lease_expires_at=None).returning(Run.id)
        ))
        if expired:
            fail_spent(s, expired)
            expired = list(s.scalars(select(Run.id).where(Run.id.in_(expired), Run.status == "queued")))
    for run_id in expired:
        log.warning("run %s: its worker stopped renewing the lease; requeued", run_id)
        celery.send_task(TASK_NAME, args=[run_id], queue=settings.queue)
    return expired


def resend_lost(settings: Settings, celery, suspects: set[int]) -> list[int]:
    """Resend queued runs that the broker no longer holds a message for.

    A run is resent only when it was missing in two consecutive rounds (``suspects`` carries
    the previous round's), so a message that is just being published or picked up is not
    mistaken for a lost one; a duplicate is harmless anyway (claims are atomic)."""
    from app.broker import pending_run_ids

    pending = pending_run_ids(celery, settings.queue)
    if pending is None:
        return []
    with session_scope(settings.db_url) as s:
        queued = set(s.scalars(select(Run.id).where(Run.status == "queued")))
    missing = queued - pending
    lost = sorted(missing & suspects)
    suspects.clear()
    suspects.update(missing - set(lost))
    for run_id in lost:
        log.warning("run %s: the broker lost its message; resent", run_id)
        celery.send_task(TASK_NAME, args=[run_id], queue=settings.queue)
    return lost


def start_reaper(settings: Settings, celery) -> threading.Event:
    """Reap every ``reaper_interval_s`` in a daemon thread; set the returned event to stop it."""
    stop = threading.Event()
    suspects: set[int] = set()

    def loop() -> None:
        while not stop.wait(settings.reaper_interval_s):
            try:
                reap(settings, celery)
                resend_lost(settings, celery, suspects)
            except Exception:  # noqa: BLE001 - e.g. database or broker briefly unreachable: next round
                log.warning("reaper round failed", exc_info=True)

    threading.Thread(target=loop, name="gxnor-reaper", daemon=True).start()
    return stop
