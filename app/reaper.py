"""The reaper: runs whose worker died (lease lapsed) go back to the queue, or fail when their
attempt budget is spent; the heartbeat rows of workers gone for hours are pruned (app.workers).  Idempotent,
so every API process and worker may run one."""

from __future__ import annotations

import logging
import math
import threading
import time

from app import budget, lifecycle, workers
from app.broker import pending_run_ids
from app.db import session_scope
from app.settings import Settings

PRUNE_EVERY_S = 3600.0  # dead workers' heartbeat rows: an hour's lateness against their 6 h is nothing

log = logging.getLogger("gxnor.reaper")


def reap(settings: Settings, celery) -> list[int]:
    """Requeue (and re-send) every running run whose lease has lapsed; returns their ids."""
    with session_scope(settings.db_url) as s:
        expired = lifecycle.requeue_expired(s)
    for run_id in expired:
        log.warning("run %s: its worker stopped renewing the lease; requeued", run_id)
    lifecycle.enqueue(celery, settings, expired)
    return expired


def resend_lost(settings: Settings, celery, suspects: set[int]) -> list[int]:
    """Resend queued runs that the broker no longer holds a message for.

    A run is resent only when it was missing in two consecutive rounds (``suspects`` carries
    the previous round's), so a message that is just being published or picked up is not
    mistaken for a lost one; a duplicate is harmless anyway (claims are atomic).  This is also how a run
    whose first send failed (the broker was down when it was submitted) reaches the broker, and a run whose
    claim was refused because its team was at its running limit (app.budget) comes back once it has room."""
    pending = pending_run_ids(celery, settings.queue)
    if pending is None:
        return []
    with session_scope(settings.db_url) as s:  # with a running limit, only what the teams have room for
        queued = budget.sendable_queued(s, settings.team_max_running)
    missing = queued - pending
    lost = sorted(missing & suspects)
    suspects.clear()
    suspects.update(missing - set(lost))
    for run_id in lost:
        log.warning("run %s: the broker has no message for it (lost, or dropped at its team's running limit); "
                    "resent", run_id)
    lifecycle.enqueue(celery, settings, lost)
    return lost


def start_reaper(settings: Settings, celery) -> threading.Event:
    """Reap every ``reaper_interval_s`` in a daemon thread; set the returned event to stop it."""
    stop = threading.Event()
    suspects: set[int] = set()
    pruned_at = -math.inf

    def loop() -> None:
        nonlocal pruned_at
        while not stop.wait(settings.reaper_interval_s):
            try:
                reap(settings, celery)
                resend_lost(settings, celery, suspects)
                if time.monotonic() - pruned_at >= PRUNE_EVERY_S:  # rows of workers gone for hours (app.workers)
                    with session_scope(settings.db_url) as s:
                        workers.prune(s)
                    pruned_at = time.monotonic()
            except Exception:  # noqa: BLE001 - e.g. database or broker briefly unreachable: next round
                log.warning("reaper round failed", exc_info=True)

    threading.Thread(target=loop, name="gxnor-reaper", daemon=True).start()
    return stop
