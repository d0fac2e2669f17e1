"""A finished run again: ``POST /runs/{id}/rerun`` (a new queued run with its config) and ``POST
/runs/{id}/resume`` (the same failed or cancelled run back to queued, from its latest checkpoint).  Both are
submissions: the server's rules for a config (``check_servable``), its team's queue cap and queued-work budget
(``check_queue_room``) apply as to ``POST /runs``.  The caller commits, then ``lifecycle.enqueue``s the run."""

from __future__ import annotations

import re

from fastapi import HTTPException
from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from app import lifecycle, run_meta
from app import runs as svc
from app.models import FINISHED, Artifact, Run
from app.settings import Settings
from gxnor_core.config import ExperimentConfig

_MARK = re.compile(r" \(re-run of #\d+\)$")
MAX_NAME = 200


def rerun_name(name: str, run_id: int) -> str:
    """``NAME (re-run of #ID)``: a re-run of a re-run names the run it copies, not a chain of marks; the
    name is cut to fit the column."""
    mark = f" (re-run of #{run_id})"
    return _MARK.sub("", name)[:MAX_NAME - len(mark)] + mark


def rerun_notes(run_id: int) -> str:
    """Where a re-run came from, in its notes (app.run_meta): the team sees it on the run's page and finds it
    with the list's search (``q=re-run of run #ID``), and no column is needed for it."""
    return f"Re-run of run #{run_id}."


def rerun(session: Session, run: Run, settings: Settings) -> int:
    """A new queued run with ``run``'s config exactly (its ``name`` field included), in its project (so its
    team), named and noted as its re-run, with its tags; not part of its sweep (a sweep's points stay one run
    each).  409 while ``run`` is queued or running.  Returns the new run's id."""
    if run.status not in FINISHED:
        raise HTTPException(409, f"run {run.id} is {run.status}; a run can be re-run once it has finished")
    config = ExperimentConfig.model_validate(run.config)
    svc.check_servable(config, settings)
    svc.check_queue_room(session, settings, run.project.team_id, [config])
    new = lifecycle.create(session, run.project, config, settings.max_attempts)
    new.name = rerun_name(run.name, run.id)  # the config keeps its name, as a rename leaves it
    run_meta.set_tags(session, new.id, run_meta.tags_of(session, [run.id]).get(run.id, []))
    run_meta.set_notes(session, new.id, rerun_notes(run.id))
    return new.id


def has_checkpoint(session: Session, run_id: int) -> bool:
    """Whether the run has a latest checkpoint (the worker's ``resume_from`` reads it)."""
    kind = svc.CHECKPOINT_KINDS["latest"]
    return bool(session.scalar(select(exists().where(Artifact.run_id == run_id, Artifact.kind == kind))))


def resume(session: Session, run: Run, settings: Settings) -> None:
    """``run`` back to queued (app.lifecycle.resume): a worker goes on from its latest checkpoint, keeping the
    epochs it recorded.  409 unless it failed or was cancelled and has a checkpoint.  Its remaining epochs count
    against the team's queued-work budget."""
    if run.status not in lifecycle.RESUMABLE:
        raise HTTPException(409, f"run {run.id} is {run.status}; only a failed or cancelled run can be resumed")
    if not has_checkpoint(session, run.id):
        raise HTTPException(409, f"run {run.id} has no checkpoint to resume from (it recorded no epoch); "
                                 "re-run it instead")
    config = ExperimentConfig.model_validate(run.config)
    svc.check_servable(config, settings)
    # What is left to train is what the budget counts (as app.budget.queued_work counts a queued run).
    left = config.model_copy(update={"train": config.train.model_copy(
        update={"epochs": max(0, run.total_epochs - run.epochs_done)})})
    svc.check_queue_room(session, settings, run.project.team_id, [left])
    if not lifecycle.resume(session, run.id, settings.max_attempts):  # it changed since it was read
        status = session.scalar(select(Run.status).where(Run.id == run.id))
        raise HTTPException(409, f"run {run.id} is {status}; only a failed or cancelled run can be resumed")
