"""A finished run again — re-run it as a new run, or resume a failed or cancelled one from its checkpoint
(app.reruns) — and a run's within-epoch loss points (app.batch_points).  Team-scoped like every run route:
another team's run is a 404."""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request

from app import batch_points, lifecycle, reruns
from app import runs as svc
from app.api.deps import SessionDep, SettingsDep, read_session
from app.api.routes.runs import FastJSON, RunId
from app.auth import Auth
from app.schemas import CONFLICT, ERRORS, SUBMIT, BatchesOut, RunOut

router = APIRouter(prefix="/api/v1", tags=["runs"], responses=ERRORS)
REQUEUE = {**CONFLICT, 429: SUBMIT[429]}


@router.post("/runs/{run_id}/rerun", status_code=201, response_model=RunOut, responses=REQUEUE)
def rerun_run(run_id: RunId, request: Request, session: SessionDep, settings: SettingsDep, who: Auth):
    """A new queued run with this finished run's config, in its project, named ``NAME (re-run of #ID)``, with
    its tags and the notes ``Re-run of run #ID.``; answers the new run.  409 while the run is queued or
    running; 429 / 422 as for ``POST /runs`` (the team's queue cap and budget, the server's rules)."""
    new_id = reruns.rerun(session, svc.get_run(session, run_id, who.team_ids), settings)
    answer = FastJSON(svc.fetch_run(session, new_id, who.team_ids), status_code=201)
    session.commit()
    lifecycle.enqueue(request.app.state.celery, settings, [new_id])
    return answer


@router.post("/runs/{run_id}/resume", response_model=RunOut, responses=REQUEUE)
def resume_run(run_id: RunId, request: Request, session: SessionDep, settings: SettingsDep, who: Auth):
    """Put a failed or cancelled run back in the queue: a worker goes on from its latest checkpoint, keeping
    its recorded epochs, with a fresh attempt budget.  409 for a run in another status or without a
    checkpoint; 429 / 422 as for ``POST /runs`` (its remaining epochs count against the team's budget)."""
    reruns.resume(session, svc.get_run(session, run_id, who.team_ids), settings)
    session.commit()
    lifecycle.enqueue(request.app.state.celery, settings, [run_id])
    return FastJSON(svc.fetch_run(session, run_id, who.team_ids))


@router.get("/runs/{run_id}/batches", response_model=BatchesOut)
async def get_batches(run_id: RunId, request: Request, who: Auth,
                      since: Annotated[int, Query(ge=1, le=10_000, description=(
                          "Only points of this epoch and later (a live page re-reads the epoch in progress)."
                      ))] = 1):
    """Within-epoch training-loss points, in order: at most 50 an epoch and 2 000 a run (docs/METRICS.md)."""
    with read_session(request) as conn:
        points = batch_points.read(conn, run_id, who.team_ids, since)
    if points is None:
        raise HTTPException(404, f"run {run_id} not found")
    return FastJSON({"run_id": run_id, "points": points})
