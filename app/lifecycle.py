"""The run lifecycle: the one module that writes ``Run.status`` and the lease columns (``attempt``,
``max_attempts``, ``worker``, ``lease_expires_at``, ``heartbeat_at``), and the one way runs reach the broker.

The database is the source of truth.  Every transition is one atomic ``UPDATE … WHERE status = <from>``, so
two processes racing for the same run cannot both win, a duplicate broker message is harmless, and an
illegal transition writes nothing.

======================  =============================  ==================================  =====================
from                    event                          to                                  function (called by)
======================  =============================  ==================================  =====================
—                       a run is submitted             queued                              ``create`` (API: runs,
                                                                                           sweeps)
queued                  a worker takes its message     running, attempt + 1, new lease     ``claim`` (worker)
queued, budget spent    a worker's claim, a reaper     failed ("gave up …")                ``fail_spent`` (inside
                        round                                                              ``claim``, reaper)
queued, team at its     a worker takes its message     stays queued, nothing written       ``claim`` (worker;
running limit                                          (``AtRunningLimit``)                app.reaper re-sends)
running                 heartbeat, progress, an epoch  running, lease renewed              ``Lease.fenced``
                        written                                                            (worker)
running                 training ended                 succeeded / failed / cancelled      ``finish`` (worker)
running                 the worker shuts down warm     queued, budget + 1                  ``hand_back`` (worker)
running, lease lapsed   a reaper round                 queued                              ``requeue_expired``
                                                                                           (app.reaper)
running                 ``gxnor up`` starts (no local  queued                              ``requeue_orphans``
                        worker is running yet)                                             (app.supervisor)
queued                  cancel                         cancelled                           ``cancel`` (API)
running                 cancel                         running, cancel_requested (the      ``cancel`` (API)
                                                       worker then finishes it cancelled)
failed / cancelled      resume (it has a checkpoint)   queued, a fresh attempt budget      ``resume`` (API)
======================  =============================  ==================================  =====================

Everything else is refused and writes nothing:

- ``claim`` of a run that is not queued (running elsewhere, finished) returns None; one whose team already
  runs ``GXNOR_TEAM_MAX_RUNNING`` runs raises ``AtRunningLimit`` (app.budget);
- ``cancel`` of a finished (or missing) run returns None;
- ``resume`` of a run that is not failed or cancelled (queued, running, succeeded, missing) returns False;
- ``Lease.fenced``, ``finish`` and ``hand_back`` by an attempt that no longer holds the run (a newer attempt
  took it over, or it is not running any more — e.g. finishing a cancelled run) raise ``LeaseLost``;
- ``finish`` to a state that is not final raises ``ValueError``, as does ``Lease.fenced`` asked to write a
  lifecycle column;
- ``requeue_expired``, ``requeue_orphans`` and ``fail_spent`` touch only rows in their from-state.

The attempt counter is the lease's fencing token: every write of a worker carries it, so once the reaper has
handed a presumed-dead worker's run to another, the old worker's writes are rejected (docs/DESIGN.md, "Run
lifecycle").
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.budget import check_running_room
from app.db import session_scope
from app.models import FINISHED, Project, Run, utcnow
from app.queue import TASK_NAME
from app.settings import Settings
from gxnor_core.config import PRESETS, ExperimentConfig

log = logging.getLogger("gxnor.lifecycle")

GAVE_UP = ("gave up: the run lost its worker on every attempt (killed, out of memory or machine gone); "
           "see the attempt count")
# Columns only this module's transitions set; a worker's fenced write may not name them.
_LIFECYCLE_COLUMNS = frozenset({"status", "attempt", "max_attempts", "worker", "lease_expires_at", "finished_at"})


class LeaseLost(RuntimeError):
    """Another attempt owns the run now, or it is not running any more: this worker must stop and write
    nothing more."""


def create(session: Session, project: Project, config: ExperimentConfig, max_attempts: int,
           sweep_id: int | None = None, sweep_index: int | None = None) -> Run:
    """A new run, queued (flushed, so it has its id; the caller commits, then ``enqueue``s it).  A run whose
    config keeps a stock name gets a name of its own (``default_name``)."""
    run = Run(
        project=project, name=config.name, status="queued", config=config.model_dump(mode="json"),
        total_epochs=config.train.epochs, max_attempts=max_attempts, sweep_id=sweep_id, sweep_index=sweep_index,
    )
    session.add(run)
    session.flush()
    if sweep_id is None and config.name in STOCK_NAMES:
        run.name = default_name(config.name, run.id)
        session.flush()
    return run


# The names a config has when nobody named the run: the default config's and each preset's.  Seven runs of the
# "quick" preset would all be called "quick"; sweep points are named by their point label instead (app.sweeps).
STOCK_NAMES = frozenset({ExperimentConfig.model_fields["name"].default, *(p["name"] for p in PRESETS.values())})


def default_name(base: str, run_id: int) -> str:
    """``quick-17``: the stock name and the run's id — distinct, stable, and it still says what the run is (the
    config keeps the stock name; ``PATCH /runs/{id}`` renames)."""
    return f"{base}-{run_id}"


def claim(session: Session, run_id: int, lease_seconds: float, worker: str, max_running: int = 0) -> int | None:
    """queued → running under a fresh lease; returns the attempt (the fencing token), or None when the run
    is not queued (any more) — or its attempt budget is spent, and then it is marked failed.  With
    ``max_running`` (``GXNOR_TEAM_MAX_RUNNING``) a run whose team already runs that many raises
    ``AtRunningLimit`` and stays queued, nothing written (the team's lock, app.budget, makes count and claim
    one step)."""
    if max_running:
        check_running_room(session, run_id, max_running)
    row = session.execute(
        update(Run).where(Run.id == run_id, Run.status == "queued", Run.attempt < Run.max_attempts).values(
            status="running", attempt=Run.attempt + 1, worker=worker, lease_expires_at=time.time() + lease_seconds,
            started_at=func.coalesce(Run.started_at, utcnow()), heartbeat_at=utcnow(), error=None,
            error_detail=None,
        ).returning(Run.attempt)
    ).first()
    if row is not None:
        return int(row[0])
    fail_spent(session, [run_id])
    return None


def fail_spent(session: Session, run_ids: Sequence[int]) -> list[int]:
    """Queued runs whose attempt budget is spent end failed, with the reason; returns their ids."""
    return list(session.scalars(
        update(Run).where(Run.id.in_(run_ids), Run.status == "queued", Run.attempt >= Run.max_attempts)
        .values(status="failed", finished_at=utcnow(), lease_expires_at=None, error=GAVE_UP).returning(Run.id)
    ))


class Lease:
    """A worker's claim on a run: renewed by a heartbeat thread (use it as a context manager), checked by
    every write of that worker."""

    def __init__(self, run_id: int, token: int, settings: Settings):
        self.run_id, self.token, self.url = run_id, token, settings.db_url
        self.seconds = settings.lease_seconds
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-{run_id}", daemon=True)

    def fenced(self, session: Session, **values) -> bool:
        """UPDATE the run with ``values`` (progress, summary, info …) only if this attempt still holds it,
        renewing the lease; returns cancel_requested.  Raises LeaseLost otherwise, and the caller's whole
        transaction rolls back."""
        owned = _LIFECYCLE_COLUMNS.intersection(values)
        if owned:
            raise ValueError(f"{', '.join(sorted(owned))}: written by the lifecycle's transitions only")
        return self._write(session, **values)

    def _write(self, session: Session, **values) -> bool:
        row = session.execute(
            update(Run).where(Run.id == self.run_id, Run.attempt == self.token, Run.status == "running")
            .values(**{"lease_expires_at": time.time() + self.seconds, **values}).returning(Run.cancel_requested)
        ).first()
        if row is None:
            self.lost.set()
            raise LeaseLost(f"run {self.run_id}: attempt {self.token} no longer holds the lease")
        return bool(row[0])

    def _beat(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                with session_scope(self.url) as s:
                    self.fenced(s, heartbeat_at=utcnow())
            except LeaseLost:
                return
            except Exception:  # noqa: BLE001 - database unreachable: keep trying until the lease lapses
                log.warning("run %s: heartbeat failed", self.run_id, exc_info=True)

    def __enter__(self) -> Lease:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def finish(lease: Lease, status: str, error: str | None = None, **values) -> None:
    """running → succeeded / failed / cancelled: the final write of an attempt, fenced like the others
    (``values``: what the worker records with it, e.g. ``error_detail``)."""
    if status not in FINISHED:
        raise ValueError(f"finish() ends a run; {status!r} is not one of {', '.join(FINISHED)}")
    with session_scope(lease.url) as s:
        lease._write(s, status=status, error=error, heartbeat_at=utcnow(), finished_at=utcnow(), **values)


def hand_back(lease: Lease) -> None:
    """running → queued on a warm shutdown: the run resumes from its last checkpoint on the next worker.
    Handing a run back is not a failed attempt, so its budget grows by the attempt it used."""
    with session_scope(lease.url) as s:
        lease._write(s, status="queued", error=None, heartbeat_at=utcnow(), lease_expires_at=None,
                     max_attempts=Run.max_attempts + 1)


def cancel(session: Session, run_id: int) -> str | None:
    """queued → cancelled at once (a worker that later gets its message finds it not queued and skips it);
    running → cancel_requested, which the worker reads with its next progress write and then finishes the
    run cancelled.  Returns "cancelled" or "cancel_requested"; None when the run has finished (or is gone)."""
    done = session.execute(update(Run).where(Run.id == run_id, Run.status == "queued").values(
        status="cancelled", cancel_requested=True, finished_at=func.now())).rowcount
    if done:
        return "cancelled"
    done = session.execute(update(Run).where(Run.id == run_id, Run.status == "running")
                           .values(cancel_requested=True)).rowcount
    return "cancel_requested" if done else None


RESUMABLE = ("failed", "cancelled")


def resume(session: Session, run_id: int, attempts: int) -> bool:
    """failed / cancelled → queued, to go on from its latest checkpoint (the worker's ``resume_from``; the
    caller checks there is one): the epochs it recorded stay, its attempt budget is ``attempts`` more than it
    has used, the cancel request and the failure's reason are cleared.  Returns whether it was resumed (False
    for a run in any other state).  The caller commits, then ``enqueue``s it."""
    return bool(session.execute(update(Run).where(Run.id == run_id, Run.status.in_(RESUMABLE)).values(
        status="queued", cancel_requested=False, finished_at=None, lease_expires_at=None,
        error=None, error_detail=None, max_attempts=Run.attempt + attempts)).rowcount)


def requeue_expired(session: Session) -> list[int]:
    """running → queued for every run whose lease has lapsed (its worker died or froze); those whose budget
    is then spent end failed.  Returns the ids requeued (to be re-sent)."""
    # SKIP LOCKED: a worker frozen inside its epoch transaction holds the run's row lock; waiting for it
    # would stall the reaper (every run) until PostgreSQL ends that session (idle_in_transaction timeout,
    # app.db) — skip it this round instead.
    lapsed = (select(Run.id).where(Run.status == "running", Run.lease_expires_at < time.time())
              .with_for_update(skip_locked=True))
    expired = list(session.scalars(
        update(Run).where(Run.id.in_(lapsed), Run.status == "running")
        .values(status="queued", lease_expires_at=None).returning(Run.id)
    ))
    if not expired:
        return []
    failed = set(fail_spent(session, expired))
    return [i for i in expired if i not in failed]


def requeue_orphans(session: Session) -> list[int]:
    """running → queued for every running run: called when ``gxnor up`` starts, before its local worker,
    so a run still marked running was interrupted.  Returns their ids."""
    return list(session.scalars(update(Run).where(Run.status == "running")
                                .values(status="queued", lease_expires_at=None).returning(Run.id)))


def enqueue(celery, settings: Settings, run_ids: Iterable[int]) -> bool:
    """Send each run's task to the broker, after the runs are committed as queued.  A broker that is down
    is logged, not raised: the runs stay queued in SQL and the reaper re-sends every queued run the broker
    lacks (app.reaper.resend_lost).  Stops at the first failure (the rest would wait on the same outage);
    returns whether all were sent."""
    ids = list(run_ids)
    for n, run_id in enumerate(ids):
        try:
            celery.send_task(TASK_NAME, args=[run_id], queue=settings.queue)
        except Exception:  # noqa: BLE001 - any broker failure: SQL holds the run, the reaper re-sends it
            log.warning("run(s) %s not sent to the broker; they stay queued and the reaper will re-send them",
                        ", ".join(map(str, ids[n:])), exc_info=True)
            return False
    return True
