"""Within-epoch loss points (``batch_points``, migration 0013; docs/METRICS.md, "Batch points").

The trainer bounds them (gxnor_core.train.batch_point_ends: at most 50 an epoch, 2 000 a run); the worker
buffers them and writes them with its throttled progress update and with each epoch's transaction, so they cost
no write of their own; the API reads one run's, team-scoped, in one statement."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from app import prepared
from app.models import BatchPoint, Project, Run


class Point(NamedTuple):
    epoch: int
    fraction: float
    loss: float
    samples: int


def store(session: Session, run_id: int, points: Sequence[Point]) -> None:
    """Add the points (a non-finite loss is stored as NULL, as JSON has no NaN)."""
    session.add_all(BatchPoint(run_id=run_id, epoch=p.epoch, fraction=p.fraction,
                               loss=p.loss if math.isfinite(p.loss) else None, samples=p.samples) for p in points)


def drop_after(session: Session, run_id: int, epoch: int) -> None:
    """Remove the points of epochs after ``epoch``: an attempt that resumes from that epoch's checkpoint trains
    the next one again, so a previous attempt's partial epoch must not stay on the chart."""
    session.execute(delete(BatchPoint).where(BatchPoint.run_id == run_id, BatchPoint.epoch > epoch))


# The run's team in the same statement (an outer join: a visible run with no points is one row of NULLs), as
# app.runs reads a run's epochs.
_POINTS = (select(Project.team_id, BatchPoint.epoch, BatchPoint.fraction, BatchPoint.loss, BatchPoint.samples)
           .select_from(Run).join(Project, Project.id == Run.project_id)
           .outerjoin(BatchPoint, (BatchPoint.run_id == Run.id) & (BatchPoint.epoch >= bindparam("since")))
           .where(Run.id == bindparam("id")).order_by(BatchPoint.epoch, BatchPoint.fraction))


def read(session: Session, run_id: int, teams: frozenset[int], since: int = 1) -> list[dict] | None:
    """The run's points of epochs ``since`` and later, in order; None unless the run exists and is visible."""
    rows = prepared.rows(session, _POINTS, {"id": run_id, "since": since})
    if not rows or rows[0][0] not in teams:
        return None
    return [{"epoch": e, "fraction": f, "loss": loss, "samples": n} for _, e, f, loss, n in rows if e is not None]
