"""A compute budget per team, on top of the queue cap (docs/DESIGN.md, "Compute budget"); both limits are off
(0) unless the server sets them.

- ``GXNOR_TEAM_MAX_RUNNING``: at most this many of one team's runs running at once.  The claim enforces it
  (app.lifecycle.claim → ``check_running_room``): under the team's lock it counts the team's running runs, and
  a claim that would pass the limit raises ``AtRunningLimit`` and writes nothing.  The run stays queued; the
  worker drops that message and takes its next one (another team's run).  The reaper re-sends a queued run
  whose message is gone only while its team has room (``sendable_queued``: per team, its oldest queued runs up
  to its free slots), so a team at its limit costs the workers nothing, and a freed slot is taken within about
  two reaper rounds (``GXNOR_REAPER_INTERVAL_S``) — sooner when one of the team's messages is still waiting.
- ``GXNOR_TEAM_MAX_QUEUED_SECONDS``: a team's queued work in estimated seconds (app.estimator: each queued
  run's remaining epochs × seconds per epoch) may not pass this.  app.runs.check_queue_room checks it together
  with the queue cap, under the same team lock (``lock_team``), so parallel submissions cannot all pass.
"""

from __future__ import annotations

from collections import Counter

from fastapi import HTTPException
from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from app import estimator
from app.db import sqlite_write_lock
from app.models import Project, Run, Team

RETRY_AFTER_MIN_S, RETRY_AFTER_MAX_S = 60, 3600


class AtRunningLimit(RuntimeError):
    """A claim refused because the run's team already has its maximum of runs running."""

    def __init__(self, team_id: int, running: int, limit: int):
        self.team_id, self.running, self.limit = team_id, running, limit
        super().__init__(f"team {team_id} has {running} runs running; this server runs at most {limit} per team")


def lock_team(session: Session, team_id: int) -> None:
    """Serialise a team's queue and budget checks with what they guard (inserting runs, claiming one), until
    the session's transaction ends.

    PostgreSQL: lock the team's row.  ``FOR NO KEY UPDATE`` conflicts with itself (two submissions or claims for
    one team queue up) but not with the key-share locks that inserting a project or run for the team takes.
    SQLite has no row locks: take the database's write lock now (``BEGIN IMMEDIATE``) instead of at the first
    write, so no other writer can count or write in between (others wait on the busy timeout, app.db)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(Team.id).where(Team.id == team_id).with_for_update(key_share=True))
        return
    sqlite_write_lock(session)


def _team_runs(status: str):
    return select(func.count()).select_from(Run).join(Project, Project.id == Run.project_id).where(
        Run.status == status, Project.team_id == bindparam("team"))


_RUNNING = _team_runs("running")
# The team of a run a claim could take (queued, budget left); a run it could not take needs no count.
_TEAM_OF_CLAIMABLE = select(Project.team_id).join(Run, Run.project_id == Project.id).where(
    Run.id == bindparam("id"), Run.status == "queued", Run.attempt < Run.max_attempts)


def running_runs(session: Session, team_id: int) -> int:
    return session.execute(_RUNNING, {"team": team_id}).scalar_one()


def check_running_room(session: Session, run_id: int, limit: int) -> None:
    """Before a claim (with ``limit`` > 0): take the run's team lock, held until the claim commits, and raise
    AtRunningLimit when the team already runs ``limit`` runs.  Two workers claiming two runs of one team
    at once are serialised by the lock, so they cannot both pass the same count."""
    team_id = session.execute(_TEAM_OF_CLAIMABLE, {"id": run_id}).scalar()
    if team_id is None:
        return
    lock_team(session, team_id)
    running = running_runs(session, team_id)
    if running >= limit:
        raise AtRunningLimit(team_id, running, limit)


def sendable_queued(session: Session, limit: int) -> set[int]:
    """The queued runs the reaper may (re-)send: all of them without a running limit; with one, per team its
    oldest queued runs up to the slots it has free (``limit`` − its running runs)."""
    queued = select(Run.id).where(Run.status == "queued")
    if not limit:
        return set(session.scalars(queued))
    running = dict(session.execute(
        select(Project.team_id, func.count()).join(Run, Run.project_id == Project.id)
        .where(Run.status == "running").group_by(Project.team_id)).all())
    taken: Counter[int] = Counter()
    out = set()
    for run_id, team_id in session.execute(
            select(Run.id, Project.team_id).join(Project, Project.id == Run.project_id)
            .where(Run.status == "queued").order_by(Run.id)):
        if running.get(team_id, 0) + taken[team_id] < limit:
            taken[team_id] += 1
            out.add(run_id)
    return out


_QUEUED_KINDS = (
    select(estimator.ARCH.label("arch"), estimator.DATASET.label("dataset"),
           Run.config[("train", "device")].as_string().label("device"),
           (Run.total_epochs - Run.epochs_done).label("left"))
    .join(Project, Project.id == Run.project_id)
    .where(Run.status == "queued", Project.team_id == bindparam("team"))
    .subquery()
)
_QUEUED_WORK = select(_QUEUED_KINDS.c.arch, _QUEUED_KINDS.c.dataset, _QUEUED_KINDS.c.device, func.count(),
                      func.sum(_QUEUED_KINDS.c.left)).group_by(
    _QUEUED_KINDS.c.arch, _QUEUED_KINDS.c.dataset, _QUEUED_KINDS.c.device)


def queued_work(session: Session, team_id: int) -> tuple[int, float]:
    """The team's queued runs: how many, and their remaining work in estimated seconds."""
    runs, seconds = 0, 0.0
    for arch, dataset, device, n, left in session.execute(_QUEUED_WORK, {"team": team_id}):
        runs += n
        seconds += max(0, left or 0) * estimator.per_epoch(session, arch, dataset, device or "auto").seconds_per_epoch
    return runs, seconds


def _amount(seconds: float) -> str:
    return f"{estimator.human(seconds)} ({seconds:,.0f} s)".replace(",", " ")


def too_costly(adding: int, seconds: float, limit: float) -> str:
    """Why a submission that alone passes the queued-work budget is refused (422: waiting would not help)."""
    what = "this run" if adding == 1 else f"these {adding} runs"
    return (f"{what} would take an estimated {_amount(seconds)} of training; this server queues at most "
            f"{_amount(limit)} of estimated work per team")


def check_queued_seconds(session: Session, team_id: int, queued: float, adding: float, limit: float) -> None:
    """429 when the team's queued work plus ``adding`` passes ``limit`` (estimated seconds; called under the
    team lock, with ``queued`` counted there).  Retry-After: the excess divided by the team's running runs
    (work leaves the queue about that fast as they finish and the next start), within 1 minute and 1 hour."""
    if queued + adding <= limit:
        return
    excess = queued + adding - limit
    wait = excess / max(1, running_runs(session, team_id))
    retry = int(min(RETRY_AFTER_MAX_S, max(RETRY_AFTER_MIN_S, wait)))
    raise HTTPException(429, f"your team's queued runs are estimated at {_amount(queued)} of training and this "
                             f"adds {_amount(adding)}; this server queues at most {_amount(limit)} of estimated "
                             f"work per team — try again when some have started",
                        headers={"Retry-After": str(retry)})
