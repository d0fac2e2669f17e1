"""Sweeps: a base config expanded over a grid, a list or a random search, times seeds — validated whole,
queued as runs any number of workers pick up, and aggregated per config."""

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from app import idempotency, lifecycle
from app import sweeps as sweep_svc
from app.api.deps import SessionDep, SettingsDep
from app.api.routes.runs import MAX_ID, FastJSON
from app.auth import Auth
from app.schemas import CONFLICT, ERRORS, SUBMIT, SweepCreate, SweepCreated, SweepDetail, SweepList, SweepOut
from gxnor_core.sweeps import SweepSpec, swept_fields, to_csv

router = APIRouter(prefix="/api/v1", tags=["sweeps"], responses=ERRORS)
SweepId = Annotated[int, Path(ge=1, le=MAX_ID, description="Sweep id.")]


@router.post("/sweeps", status_code=201, response_model=SweepCreated, responses=SUBMIT)
def create_sweep(body: SweepCreate, request: Request, session: SessionDep, settings: SettingsDep, who: Auth,
                 key: idempotency.KeyHeader = None):
    """Expand and validate every run (one bad value: 422 naming the sweep key and the value, nothing
    queued), check the size and queue caps, then queue all the runs (a broker that is down: still 201, the
    reaper sends them later).  With an ``Idempotency-Key`` a retry gets this answer again, not a second sweep."""
    once = idempotency.IdempotentCreate(session, who.user_id, key, "POST /api/v1/sweeps",
                                        body.model_dump(mode="json", exclude_unset=True), settings.idempotency_key_s)
    if (replayed := once.replay()) is not None:
        return replayed
    spec = SweepSpec.model_validate(body.model_dump(exclude={"team"}, exclude_unset=True))
    sweep, run_ids = sweep_svc.create_sweep(session, spec, body.team, who, settings)
    answer = FastJSON({**sweep_svc.sweep_out(session, sweep.id, who.team_ids), "run_ids": run_ids}, status_code=201)
    if (replayed := once.commit(answer)) is not None:  # a parallel request with this key came first
        return replayed
    lifecycle.enqueue(request.app.state.celery, settings, run_ids)
    return answer


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
