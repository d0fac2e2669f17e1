"""Worker processes and the queue as a team sees them: heartbeats in SQL (the ``workers`` table, migration 0012),
queue positions and ETAs (docs/DESIGN.md, "Workers and the queue").

**Heartbeats.**  A worker process (worker.heartbeat) writes its row with ``beat`` when it starts, every
``GXNOR_WORKER_HEARTBEAT_S`` seconds and when it takes or finishes a run, and deletes it with ``remove`` on a
clean shutdown.  They live in SQL, not in the broker, so they work with the embedded filesystem queue as with
Redis.  A worker is **alive** while its ``last_seen`` is within ``ALIVE_BEATS`` of its *own* heartbeat periods
(stored on its row, so a reader with another setting judges it right): one late beat (a busy database) is no
death, three are.  A row silent for ``PRUNE_AFTER_S`` (a killed worker never deletes its own) is pruned by the
reaper (``prune``).  Clocks: like the run leases, this compares a worker's clock with the reader's (NTP).

**What a team sees.**  Workers are shared by every team: ``list_workers`` names a worker's run only when it is
one of the caller's teams' runs, and says "busy" otherwise.  The queue is shared too: ``queue`` gives the
caller's queued runs with their place in the whole queue (runs of other teams ahead are counted, never shown).

**Queue order and ETA.**  Queue order is submission order (run id): both brokers deliver messages in the order
they were sent, and a run re-sent by the reaper was queued before the runs after it.  (A team at its running
limit, app.budget, is passed over: its runs wait longer than their place says.)  A queued run's
``eta_seconds`` — when it should start — is the estimated work ahead of it (the remaining epochs of every
running run and of every queued run before it, app.estimator) divided by the alive workers' concurrency; null
when no worker is alive.  ``seconds`` is the run's own estimated training time.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import HTTPException
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from app import estimator
from app.auth import _aware  # SQLite returns naive datetimes (stored in UTC)
from app.models import Project, Run, Team, Worker, utcnow

ALIVE_BEATS = 3  # a worker is alive while it was seen within this many of its heartbeat periods
PRUNE_AFTER_S = 6 * 3600.0  # a row silent this long is deleted (its process is long gone)
_CONFIG_DEVICE = Run.config[("train", "device")].as_string()


@dataclass(frozen=True)
class WorkerInfo:
    """What a worker process says about itself in its row."""

    id: str  # hostname:pid (worker.runner.WORKER_NAME: the name it writes into runs.worker)
    hostname: str
    pid: int
    device: str  # cpu, or cuda:<device name>
    concurrency: int
    heartbeat_s: float

    @classmethod
    def local(cls, pid: int, device: str, concurrency: int, heartbeat_s: float) -> WorkerInfo:
        host = socket.gethostname()
        return cls(f"{host}:{pid}", host, pid, device, concurrency, heartbeat_s)


# --- written by the worker --------------------------------------------------------------------------------------


def beat(session: Session, me: WorkerInfo, run_id: int | None, starting: bool = False) -> None:
    """The worker's heartbeat: ``last_seen`` now and the run it trains (None: idle).  Inserts the row when there
    is none (the first beat, or after a prune while the process was frozen); ``starting`` resets
    ``started_at``.  Only this process writes its row, so update-then-insert needs no upsert."""
    now = utcnow()
    values = {"last_seen": now, "current_run_id": run_id, "device": me.device, "concurrency": me.concurrency,
              "heartbeat_s": me.heartbeat_s}
    if starting:
        values["started_at"] = now
    if session.execute(update(Worker).where(Worker.id == me.id).values(**values)).rowcount:
        return
    session.add(Worker(id=me.id, hostname=me.hostname, pid=me.pid, **{"started_at": now, **values}))


def remove(session: Session, worker_id: str) -> None:
    """A clean shutdown: the worker is gone, not dead."""
    session.execute(delete(Worker).where(Worker.id == worker_id))


def prune(session: Session) -> int:
    """Delete the rows not seen for ``PRUNE_AFTER_S``; returns how many."""
    cutoff = utcnow() - timedelta(seconds=PRUNE_AFTER_S)
    return session.execute(delete(Worker).where(Worker.last_seen < cutoff)).rowcount


# --- read by the API --------------------------------------------------------------------------------------------


def is_alive(last_seen: datetime, heartbeat_s: float, now: datetime | None = None) -> bool:
    """Seen within ``ALIVE_BEATS`` heartbeat periods."""
    return (now or utcnow()) - _aware(last_seen) <= timedelta(seconds=ALIVE_BEATS * heartbeat_s)


_WORKERS = (select(Worker, Run.name, Project.team_id)
            .outerjoin(Run, Run.id == Worker.current_run_id).outerjoin(Project, Project.id == Run.project_id)
            .order_by(Worker.hostname, Worker.pid))


def list_workers(session: Session, teams: frozenset[int]) -> list[dict]:
    """Every worker, alive or dead (until pruned); its run named only when it is one of ``teams``'."""
    now = utcnow()
    out = []
    for w, run_name, team_id in session.execute(_WORKERS):
        busy = w.current_run_id is not None
        mine = busy and team_id in teams
        out.append({"id": w.id, "hostname": w.hostname, "pid": w.pid, "device": w.device,
                    "concurrency": w.concurrency, "alive": is_alive(w.last_seen, w.heartbeat_s, now),
                    "started_at": _aware(w.started_at), "last_seen": _aware(w.last_seen), "busy": busy,
                    "run": {"id": w.current_run_id, "name": run_name} if mine else None})
    return out


def capacity(session: Session) -> tuple[int, int]:
    """(alive workers, runs they take at once)."""
    now = utcnow()
    alive = [c for seen, period, c in session.execute(select(Worker.last_seen, Worker.heartbeat_s,
                                                             Worker.concurrency)) if is_alive(seen, period, now)]
    return len(alive), sum(alive)


_RUNNING_WORK = select(estimator.ARCH, estimator.DATASET, _CONFIG_DEVICE, Run.total_epochs, Run.epochs_done,
                       Run.progress_epoch, Run.progress_fraction).where(Run.status == "running")
_QUEUED = (select(Run.id, Run.name, Project.name, Team.id, Team.name, estimator.ARCH, estimator.DATASET,
                  _CONFIG_DEVICE, Run.total_epochs, Run.epochs_done)
           .join(Project, Project.id == Run.project_id).join(Team, Team.id == Project.team_id)
           .where(Run.status == "queued").order_by(Run.id))


def _seconds_left(session: Session, arch, dataset, device, total: int, done: float) -> float:
    """A run's remaining estimated seconds (``done``: epochs, a running epoch's share included)."""
    return estimator.remaining_seconds(estimator.per_epoch(session, arch, dataset, device or "auto"), total, done)


def queue(session: Session, teams: frozenset[int], only_run: int | None = None) -> dict:
    """The whole queue's length, the alive workers, and ``teams``' queued runs in queue order (only
    ``only_run`` when given) with their place and ETA (see the module docstring)."""
    alive, slots = capacity(session)
    ahead_s = sum(_seconds_left(session, arch, ds, dev, total, done + (frac if epoch > done else 0.0))
                  for arch, ds, dev, total, done, epoch, frac in session.execute(_RUNNING_WORK))
    items, length = [], 0
    for run_id, name, project, team_id, team, arch, ds, dev, total, done in session.execute(_QUEUED):
        own = _seconds_left(session, arch, ds, dev, total, done)
        if team_id in teams and only_run in (None, run_id):
            items.append({"id": run_id, "name": name, "project": project, "team": team, "position": length + 1,
                          "ahead": length, "seconds": own, "eta_seconds": ahead_s / slots if slots else None})
        ahead_s += own
        length += 1
    return {"length": length, "workers_alive": alive, "capacity": slots, "items": items}


def run_queue(session: Session, run_id: int, teams: frozenset[int]) -> dict:
    """One run's place in the queue (no place once it is not queued); 404 unless it is one of ``teams``'."""
    status = session.execute(select(Run.status).join(Project, Project.id == Run.project_id)
                             .where(Run.id == run_id, Project.team_id.in_(teams))).scalar()
    if status is None:
        raise HTTPException(404, f"run {run_id} not found")
    q = queue(session, teams, only_run=run_id)
    item = q["items"][0] if q["items"] else {}
    return {"id": run_id, "status": status, "length": q["length"], "workers_alive": q["workers_alive"],
            "capacity": q["capacity"], **{k: item.get(k) for k in ("position", "ahead", "seconds", "eta_seconds")}}
