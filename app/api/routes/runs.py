from functools import partial
from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from fastapi.responses import FileResponse

from app import costs as cost_svc
from app import downloads, idempotency, lifecycle
from app import runs as svc
from app.api.deps import SessionDep, SettingsDep, read_session
from app.auth import Auth, AuthOrQuery, still_allowed
from app.db import session_scope
from app.models import RUN_STATUSES
from app.schemas import (
    CONFLICT,
    ERRORS,
    SUBMIT,
    CompareOut,
    CostsOut,
    ErrorOut,
    LayersOut,
    MetricsOut,
    RunCreate,
    RunList,
    RunOut,
)
from app.streams import EventStream
from gxnor_core.config import CleanText
from gxnor_core.metrics import VIEWS

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
def create_run(body: RunCreate, request: Request, session: SessionDep, settings: SettingsDep, who: Auth,
               key: idempotency.KeyHeader = None):
    """Validate and queue a run (in ``team``, or the caller's only team).  Stored first, then sent to the
    broker: if the broker is down the answer is still 201 and the reaper sends the run later.  With an
    ``Idempotency-Key`` a retry gets this answer again instead of a second run."""
    once = idempotency.IdempotentCreate(session, who.user_id, key, "POST /api/v1/runs",
                                        body.model_dump(mode="json"), settings.idempotency_key_s)
    if (replayed := once.replay()) is not None:
        return replayed
    svc.check_servable(body.config, settings)
    team = svc.resolve_team(session, who, body.team)
    svc.check_queue_room(session, settings, team.id, [body.config])
    run_id = svc.create_run(session, body.config, team.id, settings.max_attempts).id
    answer = FastJSON(svc.fetch_run(session, run_id, who.team_ids), status_code=201)
    if (replayed := once.commit(answer)) is not None:  # a parallel request with this key came first
        return replayed
    lifecycle.enqueue(request.app.state.celery, settings, [run_id])
    return answer


@router.get("/runs", response_model=RunList)
async def list_runs(
    request: Request,
    who: Auth,
    status: Literal[RUN_STATUSES] | None = None,
    project: Annotated[CleanText | None, Query(max_length=100)] = None,
    team: Annotated[CleanText | None, Query(max_length=100)] = None,
    sweep: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Only this sweep's runs.")] = None,
    q: Annotated[CleanText | None, Query(max_length=200, description=(
        "Name or notes contain (case-insensitive)."))] = None,
    tag: Annotated[CleanText | None, Query(min_length=1, max_length=64, description="Only runs with this tag.")] = None,
    archived: Annotated[Literal["false", "true", "any"], Query(description=(
        "false: hide archived runs (the default); true: only archived runs; any: both."))] = "false",
    sort: Literal[svc.SORTABLE] = "created_at",
    order: Literal["asc", "desc"] = "desc",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
):
    with read_session(request) as session:
        rows, total = svc.list_runs(session, teams=who.team_ids, status=status, project=project, team=team,
                                    sweep=sweep, q=q, sort=sort, order=order, limit=limit, offset=offset,
                                    tag=tag, archived=archived)
    return FastJSON({"items": rows, "total": total, "limit": limit, "offset": offset})


@router.get("/runs/{run_id}", response_model=RunOut)
async def get_run(run_id: RunId, request: Request, who: Auth):
    with read_session(request) as session:
        return FastJSON(svc.fetch_run(session, run_id, who.team_ids, admin=who.is_admin))


@router.get("/runs/{run_id}/metrics", response_model=MetricsOut)
async def get_metrics(run_id: RunId, request: Request, who: Auth, points: Points = None,
                      metric: Annotated[CleanText, Query(max_length=50)] = "train_loss"):
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
               layer: Annotated[CleanText | None, Query(max_length=50)] = None,
               points: Points = None):
    """Layer records; ``epoch`` for one epoch, ``layer`` for one layer, ``points`` to thin the epochs evenly
    (the last epoch is always kept)."""
    with read_session(request) as session:
        rows = svc.layer_records_raw(session, run_id, who.team_ids, epoch, layer)
    if points:
        keep = svc.thin_epochs(sorted({e for e, _ in rows}), points)
        rows = [(e, r) for e, r in rows if e in keep]
    return FastJSON({"run_id": run_id, "records": [orjson.Fragment(r) for _, r in rows]})


@router.get("/runs/{run_id}/costs", response_model=CostsOut)
async def get_costs(run_id: RunId, request: Request, who: Auth,
                    epoch: Annotated[int | None, Query(ge=1, le=10_000, description=(
                        "The epoch to count (default: the last recorded one, as the summary's figures)."))] = None):
    """Operation-type costs per sample (gxnor_core.costs; docs/METHOD.md §6): per layer and in total, this run as
    measured and the same network as full precision, BWN, TWN and BNN would run it, each with its assumption,
    and an energy estimate from the server's energy table.  404 for an epoch the run has not recorded."""
    table = request.app.state.settings.energy_table
    with read_session(request) as conn:
        return FastJSON(cost_svc.costs_of_run(conn, run_id, who.team_ids, epoch, table))


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


Which = Annotated[Literal["latest", "best"], Query(description=(
    "latest: the last recorded epoch's checkpoint (with the training state to resume from); best: the "
    "best-validation epoch's model (weights and BatchNorm state), the one to export."))]


@router.get("/runs/{run_id}/checkpoint", response_class=FileResponse)
def download_checkpoint(run_id: RunId, settings: SettingsDep, who: Auth, which: Which = "latest") -> FileResponse:
    """A checkpoint (load with ``gxnor_core.load_model``): the latest, or with ``which=best`` the best-validation
    model.  Needs the bearer header: for a browser link, ask ``POST /runs/{id}/checkpoint/link`` for a
    short-lived one instead of putting a token in a URL."""
    with session_scope(settings.db_url) as session:  # closed before the file is sent: no connection held
        path = svc.checkpoint_file(session, svc.get_run(session, run_id, who.team_ids), settings, which)
    return FileResponse(path, media_type="application/octet-stream", filename=downloads.filename(run_id, path))


@router.post("/runs/{run_id}/checkpoint/link", status_code=201, response_model=downloads.LinkOut)
def checkpoint_link(run_id: RunId, session: SessionDep, settings: SettingsDep, who: Auth,
                    which: Which = "latest") -> dict:
    """A short-lived link (``GXNOR_DOWNLOAD_LINK_S``, 5 minutes) that downloads this run's latest checkpoint (or
    with ``which=best`` its best-validation model) without a token — for browsers; it serves that one file
    only, and only while you may see the run."""
    run = svc.get_run(session, run_id, who.team_ids)
    svc.checkpoint_file(session, run, settings, which)  # 404 now rather than from the link
    key, expires = downloads.create_link(session, run.id, svc.CHECKPOINT_KINDS[which], who.user_id or None,
                                         settings.download_link_s)
    return {"url": f"/api/v1/downloads/{key}", "expires_at": expires}


@router.get("/downloads/{key}", response_class=FileResponse, tags=["downloads"], responses={
    404: {"model": ErrorOut, "description": "Unknown or expired link"}})
def download(key: Annotated[str, Path(min_length=40, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")],
             settings: SettingsDep) -> FileResponse:
    """Redeem a link from ``POST /runs/{id}/checkpoint/link`` (the key is the credential: no token)."""
    with session_scope(settings.db_url) as session:
        run, kind = downloads.redeem(session, key)
        path = svc.checkpoint_file(session, run, settings, "best" if kind == "best" else "latest")
    return FileResponse(path, media_type="application/octet-stream", filename=downloads.filename(run.id, path))


@router.get("/runs/{run_id}/events", responses={429: {"model": ErrorOut, "description": "Too many live streams"}})
async def run_events(run_id: RunId, request: Request, who: AuthOrQuery,
                     after: Annotated[int, Query(ge=0, le=1_000_000, description="Last epoch the client has.")] = 0):
    """Server-Sent Events: ``progress`` while training, ``epoch`` for each new epoch, ``status`` at the end.
    Takes ``?token=`` (EventSource cannot send headers).  Holds no database connection while it waits (one
    shared poller per run: app.streams); 429 beyond the per-user or per-process stream limit."""
    with read_session(request) as conn:
        team_id = svc.require_run(conn, run_id, who.team_ids)
    last_event = request.headers.get("last-event-id")
    start = int(last_event) if last_event and last_event.isascii() and last_event.isdigit() and len(last_event) < 10 \
        else after
    hub = request.app.state.hub
    hub.acquire(who.user_id)
    return EventStream(hub, partial(hub.stream, run_id=run_id, after=start,
                                    allowed=partial(still_allowed, request, team_id)),
                       release=partial(hub.release, who.user_id),
                       headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.get("/compare", response_model=CompareOut, tags=["compare"])
async def compare(request: Request, who: Auth,
                  ids: Annotated[str, Query(pattern=r"^\d{1,12}(,\d{1,12}){0,19}$", description="Up to 20 ids: a,b,c")],
                  metric: Annotated[CleanText, Query(max_length=50)] = "val_error",
                  points: Points = None,
                  costs: Annotated[bool, Query(description="Include each run's operation counts and energy per "
                                               "scheme (an evaluation of the cost model per run).")] = False,
                  skip_missing: Annotated[bool, Query(description="Compare the runs that exist and list the others "
                                                      "in `missing`, instead of a 404.")] = False):
    """Several runs' config diff, one metric aligned by epoch (with each run's seconds of training at each
    epoch, for a wall-time axis), each run's sweep point, per-layer hardware figures, and with
    ``costs=true`` each run's operation counts and energy per scheme (totals of GET /runs/{id}/costs at its
    last recorded epoch; otherwise ``costs`` is empty)."""
    asked = list(dict.fromkeys(int(i) for i in ids.split(",")))
    too_big = [i for i in asked if i > MAX_ID]
    if too_big and not skip_missing:
        raise HTTPException(404, f"run {too_big[0]} not found")
    with read_session(request) as session:
        runs = svc.compared_runs(session, [i for i in asked if i <= MAX_ID], who.team_ids, skip_missing)
        run_ids = [r["id"] for r in runs]
        series, seconds = svc.metric_series(session, run_ids, metric, "epoch_seconds")
        walls = svc.wall_times(seconds)
        layers = svc.last_epoch_layers(session, run_ids, VIEWS["compare_layers"])
        totals = cost_svc.totals_of_runs(session, runs, request.app.state.settings.energy_table) if costs else {}
    epochs = sorted(set().union(*[set(v) for v in series.values()]))
    if points:
        keep = svc.thin_epochs(epochs, points)
        epochs = [e for e in epochs if e in keep]
    return FastJSON({
        "runs": runs,
        "config_diff": svc.config_diff([r["config"] for r in runs]),
        "metric": metric, "epochs": epochs,
        "series": {str(i): [series[i].get(e) for e in epochs] for i in run_ids},
        "wall_time": {str(i): [walls[i].get(e) for e in epochs] for i in run_ids},
        "layers": {str(i): layers[i] for i in run_ids},
        "costs": totals,
        "missing": [i for i in asked if i not in run_ids],
    })
