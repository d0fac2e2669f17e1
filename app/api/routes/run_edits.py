"""Changing runs after they were made: rename, tag, annotate, archive one run (PATCH), or act on many at once
(POST /runs/bulk).  Team-scoped like every run route: another team's run is a 404 (app.run_edits)."""

from fastapi import APIRouter

from app import run_edits
from app import runs as svc
from app.api.deps import SessionDep, SettingsDep
from app.api.routes.runs import FastJSON, RunId
from app.auth import Auth
from app.schemas import CONFLICT, ERRORS, BulkIn, BulkOut, RunOut, RunPatch

router = APIRouter(prefix="/api/v1", tags=["runs"], responses=ERRORS)


@router.patch("/runs/{run_id}", response_model=RunOut, responses=CONFLICT)
def update_run(run_id: RunId, session: SessionDep, who: Auth, body: RunPatch | None = None):
    """Change any of ``name``, ``tags`` (the whole set), ``notes`` and ``archived``; fields left out stay as
    they are.  409 when archiving a run that has not finished (cancel it first).  The run is looked up first:
    another team's run is a 404 whatever the body."""
    run = svc.get_run(session, run_id, who.team_ids)
    run_edits.check_patch(body)
    run_edits.patch_run(session, run, body)
    return FastJSON(svc.fetch_run(session, run_id, who.team_ids, admin=who.is_admin))


@router.post("/runs/bulk", response_model=BulkOut)
def bulk_runs(body: BulkIn, session: SessionDep, settings: SettingsDep, who: Auth):
    """One action on up to 500 runs: ``tag`` / ``untag`` (with ``tags``), ``cancel``, ``archive``,
    ``unarchive``, ``delete``.  Each id is checked on its own and answered in ``results`` with the status its
    single-run route would give (404 for a missing run or another team's, 409 for a run in the wrong status);
    the others still happen.  The answer is 200 whatever the per-id results."""
    run_edits.check_bulk(body)
    return run_edits.bulk(session, body, who.team_ids, settings)
