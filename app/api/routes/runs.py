import asyncio
import json
from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from fastapi.responses import FileResponse, StreamingResponse
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from app import runs as svc
from app.api.deps import SessionDep, SettingsDep, read_session
from app.auth import Auth, AuthOrQuery, still_allowed
from app.db import session_scope
from app.models import FINISHED, RUN_STATUSES, EpochMetric
from app.schemas import (
    CONFLICT,
    ERRORS,
    SUBMIT,
    CompareOut,
    LayersOut,
    MetricsOut,
    RunCreate,
    RunList,
    RunOut,
)
from worker.celery_app import TASK_NAME

router = APIRouter(prefix="/api/v1", tags=["runs"], responses=ERRORS)
# Every route here needs a token (``Auth``/``AuthOrQuery`` as a parameter): runs of other teams are 404.

MAX_ID = 2_147_483_647
RunId = Annotated[int, Path(ge=1, le=MAX_ID, description="Run id.")]
Points = Annotated[int | None, Query(ge=4, le=100_000, description="Point budget: at most this many epochs.")]


class FastJSON(Response):
    """JSON via orjson; stored JSON passes through as raw fragments (see app.runs)."""

    media_type = "application/json"

    def render(self, content) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NAIVE_UTC)  # stored times are UTC


@router.post("/runs", status_code=201, response_model=RunOut, responses=SUBMIT)
def create_run(body: RunCreate, request: Request, session: SessionDep, settings: SettingsDep, who: Auth):
    """Validate and queue a run (in ``team``, or the caller's only team)."""
    svc.check_servable(body.config, settings)
    team = svc.resolve_team(session, who, body.team)
    svc.check_queue_room(session, settings, team.id)
    run_id = svc.create_run(session, body.config, team.id, settings.max_attempts).id
    session.commit()
    request.app.state.celery.send_task(TASK_NAME, args=[run_id], queue=settings.queue)
    return FastJSON(svc.fetch_run(session, run_id, who.team_ids), status_code=201)


@router.get("/runs", response_model=RunList)
async def list_runs(
    request: Request,
    who: Auth,
    status: Literal[RUN_STATUSES] | None = None,
    project: Annotated[str | None, Query(max_length=100)] = None,
    team: Annotated[str | None, Query(max_length=100)] = None,
    sweep: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Only this sweep's runs.")] = None,
    q: Annotated[str | None, Query(max_length=200, description="Name contains (case-insensitive).")] = None,
    sort: Literal[svc.SORTABLE] = "created_at",
    order: Literal["asc", "desc"] = "desc",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
):
    with read_session(request) as session:
        rows, total = svc.list_runs(session, teams=who.team_ids, status=status, project=project, team=team,
                                    sweep=sweep, q=q, sort=sort, order=order, limit=limit, offset=offset)
    return FastJSON({"items": rows, "total": total, "limit": limit, "offset": offset})


@router.get("/runs/{run_id}", response_model=RunOut)
async def get_run(run_id: RunId, request: Request, who: Auth):
    with read_session(request) as session:
        return FastJSON(svc.fetch_run(session, run_id, who.team_ids))


@router.get("/runs/{run_id}/metrics", response_model=MetricsOut)
async def get_metrics(run_id: RunId, request: Request, who: Auth, points: Points = None,
                      metric: Annotated[str, Query(max_length=50)] = "train_loss"):
    """Run-level metrics, one object per epoch; ``points`` keeps the extremes of ``metric`` and the last epoch."""
    with read_session(request) as session:
        raw = svc.epoch_metrics_raw(session, run_id, who.team_ids)
    if points and len(raw) > points:
        epochs = svc.downsample([orjson.loads(r) for r in raw], points, metric)
    else:
        epochs = [orjson.Fragment(r) for r in raw]
    return FastJSON({"run_id": run_id, "total_epochs_recorded": len(raw), "downsampled": len(epochs) < len(raw),
                     "epochs": epochs})


@router.get("/runs/{run_id}/layers", response_model=LayersOut)
async def get_layers(run_id: RunId, request: Request, who: Auth,
                     epoch: Annotated[int | None, Query(ge=1, le=10_000)] = None,
               layer: Annotated[str | None, Query(max_length=50)] = None,
               points: Points = None):
    """Layer records; ``epoch`` for one epoch, ``layer`` for one layer, ``points`` to thin the epochs evenly
    (the last epoch is always kept)."""
    with read_session(request) as session:
        rows = svc.layer_records_raw(session, run_id, who.team_ids, epoch, layer)
    if points:
        keep = svc.thin_epochs(sorted({e for e, _ in rows}), points)
        rows = [(e, r) for e, r in rows if e in keep]
    return FastJSON({"run_id": run_id, "records": [orjson.Fragment(r) for _, r in rows]})


@router.post("/runs/{run_id}/cancel", response_model=RunOut, responses=CONFLICT)
def cancel_run(run_id: RunId, session: SessionDep, who: Auth):
    """Stop a queued or running run, keeping what it recorded; 409 if it already finished."""
    svc.cancel_run(session, svc.get_run(session, run_id, who.team_ids))
    return FastJSON(svc.fetch_run(session, run_id, who.team_ids))


@router.delete("/runs/{run_id}", status_code=204, responses=CONFLICT)
def delete_run(run_id: RunId, session: SessionDep, settings: SettingsDep, who: Auth) -> Response:
    """Remove a finished run and its artifacts; 409 while it is queued or running."""
    svc.delete_run(session, svc.get_run(session, run_id, who.team_ids), settings)
    return Response(status_code=204)


@router.get("/runs/{run_id}/checkpoint", response_class=FileResponse)
def download_checkpoint(run_id: RunId, session: SessionDep, settings: SettingsDep, who: AuthOrQuery) -> FileResponse:
    """The latest checkpoint (load with ``gxnor_core.load_model``); takes ``?token=`` for a plain link."""
    run = svc.get_run(session, run_id, who.team_ids)
    path = svc.checkpoint_file(session, run, settings)
    return FileResponse(path, media_type="application/octet-stream", filename=f"run-{run_id}-{path.name}")


@router.get("/runs/{run_id}/events")
async def run_events(run_id: RunId, request: Request, session: SessionDep, settings: SettingsDep,
                     who: AuthOrQuery,
                     after: Annotated[int, Query(ge=0, le=1_000_000, description="Last epoch the client has.")] = 0):
    """Server-Sent Events: ``progress`` while training, ``epoch`` for each new epoch, ``status`` at the end.
    Takes ``?token=`` (EventSource cannot send headers)."""
    team_id = svc.require_run(session, run_id, who.team_ids)
    last_event = request.headers.get("last-event-id")
    start = int(last_event) if last_event and last_event.isascii() and last_event.isdigit() and len(last_event) < 10 \
        else after
    poll = min(settings.progress_interval_s, 1.0)

    def snapshot(since: int):
        with session_scope(settings.db_url) as s:
            try:
                run = svc.fetch_run(s, run_id, who.team_ids)
            except HTTPException:
                return None, []
            new = list(s.scalars(select(EpochMetric.metrics).where(EpochMetric.run_id == run_id,
                                                                   EpochMetric.epoch > since)
                                 .order_by(EpochMetric.epoch)))
            return run, new

    async def stream():
        seen, last_progress = start, None
        while True:
            if not await run_in_threadpool(still_allowed, request, team_id):  # token revoked, or left the team
                yield _sse("status", {"status": "unauthorized"})
                return
            run, new = await run_in_threadpool(snapshot, seen)
            if run is None:
                yield _sse("status", {"status": "deleted"})
                return
            for m in new:
                seen = m["epoch"]
                yield _sse("epoch", m, event_id=seen)
            progress = {"status": run["status"], **run["progress"]}
            if progress != last_progress:
                last_progress = progress
                yield _sse("progress", progress)
            if run["status"] in FINISHED:
                yield _sse("status", {"status": run["status"], "error": run["error"]})
                return
            if await request.is_disconnected():
                return
            await asyncio.sleep(poll)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _sse(event: str, data: dict, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data)}\n\n"


@router.get("/compare", response_model=CompareOut, tags=["compare"])
async def compare(request: Request, who: Auth,
                  ids: Annotated[str, Query(pattern=r"^\d{1,12}(,\d{1,12}){0,19}$", description="Up to 20 ids: a,b,c")],
                  metric: Annotated[str, Query(max_length=50)] = "val_error",
                  points: Points = None):
    """Several runs' config diff, one metric aligned by epoch, and per-layer hardware figures."""
    run_ids = list(dict.fromkeys(int(i) for i in ids.split(",")))
    too_big = [i for i in run_ids if i > MAX_ID]
    if too_big:
        raise HTTPException(404, f"run {too_big[0]} not found")
    with read_session(request) as session:
        runs = svc.compared_runs(session, run_ids, who.team_ids)
        series = svc.metric_series(session, run_ids, metric)
        layers = svc.last_epoch_layers(session, run_ids, ("gate_event_rate", "activation_sparsity",
                                                          "weight_sparsity"))
    epochs = sorted(set().union(*[set(v) for v in series.values()]))
    if points:
        keep = svc.thin_epochs(epochs, points)
        epochs = [e for e in epochs if e in keep]
    return FastJSON({
        "runs": runs,
        "config_diff": svc.config_diff([r["config"] for r in runs]),
        "metric": metric, "epochs": epochs,
        "series": {str(i): [series[i].get(e) for e in epochs] for i in run_ids},
        "layers": {str(i): layers[i] for i in run_ids},
    })
