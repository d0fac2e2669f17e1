"""Sweeps: a base config expanded over a grid, a list or a random search, times seeds — validated whole,
queued as runs any number of workers pick up, and aggregated per config."""

import logging
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from app import sweeps as sweep_svc
from app.api.deps import SessionDep, SettingsDep
from app.api.routes.runs import MAX_ID, FastJSON
from app.auth import Auth
from app.schemas import CONFLICT, ERRORS, SUBMIT, SweepCreate, SweepCreated, SweepDetail, SweepList, SweepOut
from gxnor_core.sweeps import SweepSpec, swept_fields, to_csv
from worker.celery_app import TASK_NAME

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1", tags=["sweeps"], responses=ERRORS)
SweepId = Annotated[int, Path(ge=1, le=MAX_ID, description="Sweep id.")]


@router.post("/sweeps", status_code=201, response_model=SweepCreated, responses=SUBMIT)
def create_sweep(body: SweepCreate, request: Request, session: SessionDep, settings: SettingsDep, who: Auth):
    """Expand and validate every run (one bad value: 422 naming the sweep key and the value, nothing
    queued), check the size and queue caps, then queue all the runs."""
    spec = SweepSpec.model_validate(body.model_dump(exclude={"team"}, exclude_unset=True))
    sweep, run_ids = sweep_svc.create_sweep(session, spec, body.team, who, settings)
    session.commit()
    try:
        for run_id in run_ids:
            request.app.state.celery.send_task(TASK_NAME, args=[run_id], queue=settings.queue)
    except Exception:  # noqa: BLE001 - stored and queued in SQL: the reaper re-sends what the broker lacks
        log.exception("sweep %s: sending its runs to the broker failed; the reaper will re-send them", sweep.id)
    return FastJSON({**sweep_svc.sweep_out(session, sweep.id, who.team_ids), "run_ids": run_ids}, status_code=201)


@router.get("/sweeps", response_model=SweepList)
def list_sweeps(session: SessionDep, who: Auth, limit: Annotated[int, Query(ge=1, le=500)] = 50,
                offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0):
    """Your teams' sweeps, newest first, with status counts and progress."""
    items, total = sweep_svc.list_sweeps(session, who.team_ids, limit, offset)
    return FastJSON({"items": items, "total": total, "limit": limit, "offset": offset})


@router.get("/sweeps/{sweep_id}", response_model=SweepDetail)
def get_sweep(sweep_id: SweepId, session: SessionDep, who: Auth):
    """The sweep's runs, status counts, one aggregate row per config and the Pareto front."""
    return FastJSON(sweep_svc.sweep_detail(session, sweep_id, who.team_ids))


@router.get("/sweeps/{sweep_id}/results.csv", response_class=Response,
            responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "The table"}})
def sweep_csv(sweep_id: SweepId, session: SessionDep, who: Auth):
    """The aggregate table as CSV: swept fields, n, n_done, each metric's mean and std."""
    detail = sweep_svc.sweep_detail(session, sweep_id, who.team_ids)
    return Response(to_csv(detail["results"], swept_fields(detail["results"])), media_type="text/csv",
                             headers={"Content-Disposition": f'attachment; filename="sweep-{sweep_id}.csv"'})


@router.post("/sweeps/{sweep_id}/cancel", response_model=SweepOut, responses=CONFLICT)
def cancel_sweep(sweep_id: SweepId, session: SessionDep, who: Auth):
    """Cancel the sweep's unfinished runs (what they recorded is kept); 409 when all have finished."""
    sweep_svc.cancel_sweep(session, sweep_id, who.team_ids)
    return FastJSON(sweep_svc.sweep_out(session, sweep_id, who.team_ids))
