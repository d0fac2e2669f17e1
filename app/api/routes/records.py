"""A run's epoch metrics and layer records as downloads, CSV or JSON Lines (app.records): with the bearer
header for scripts, or through a short-lived link for browsers (app.downloads).  Team-scoped like every run
route: another team's run is a 404."""

from typing import Annotated, Literal, get_args

from fastapi import APIRouter, Path, Query
from fastapi.responses import StreamingResponse

from app import downloads, records
from app import runs as svc
from app.api.deps import SessionDep, SettingsDep
from app.api.routes.runs import RunId
from app.auth import Auth
from app.db import session_scope
from app.schemas import ERRORS, ErrorOut
from app.settings import Settings

router = APIRouter(prefix="/api/v1", tags=["records"], responses=ERRORS)

FILE = {200: {"content": {"text/csv": {"schema": {"type": "string"}},
                          "application/x-ndjson": {"schema": {"type": "string"}}},
              "description": "The file, streamed"}}
FormatPath = Annotated[records.Format, Path(description="csv: a header row, then one row per record; jsonl: one "
                                                         "JSON object per line.")]
LINK_KINDS = tuple(f"{t}.{f}" for t in get_args(records.Table) for f in get_args(records.Format))  # metrics.csv, …


def _file(settings: Settings, run_id: int, name: str, table: records.Table, fmt: records.Format) -> StreamingResponse:
    return StreamingResponse(records.stream(settings.db_url, run_id, table, fmt), media_type=records.MEDIA_TYPES[fmt],
                             headers={"Content-Disposition":
                                      f'attachment; filename="{records.filename(run_id, name, table, fmt)}"',
                                      "Cache-Control": "no-store"})


@router.get("/runs/{run_id}/metrics.{format}", response_class=StreamingResponse, responses=FILE)
def export_metrics(run_id: RunId, format: FormatPath, settings: SettingsDep, who: Auth) -> StreamingResponse:
    """Every epoch's metrics: the objects of ``GET /runs/{id}/metrics``, never downsampled.  The CSV's columns are
    ``epoch`` and the catalog's epoch metrics (``GET /catalog`` → ``metrics.epoch``) in its order; every cell is
    JSON text (a number), an empty cell is null."""
    name = records.visible_run_name(settings.db_url, run_id, who.team_ids)
    return _file(settings, run_id, name, "metrics", format)


@router.get("/runs/{run_id}/layers.{format}", response_class=StreamingResponse, responses=FILE)
def export_layers(run_id: RunId, format: FormatPath, settings: SettingsDep, who: Auth) -> StreamingResponse:
    """Every layer record of every epoch: the objects of ``GET /runs/{id}/layers``.  The CSV's columns are
    ``epoch``, ``layer``, ``kind``, ``input_is_real``, the catalog's layer metrics (``GET /catalog`` →
    ``metrics.layer``) in its order, then ``weight_states``, ``activation_levels`` and ``transition_matrix``
    (lists, as JSON); every cell but ``layer`` and ``kind`` is JSON text, an empty cell is null."""
    name = records.visible_run_name(settings.db_url, run_id, who.team_ids)
    return _file(settings, run_id, name, "layers", format)


@router.post("/runs/{run_id}/records/link", status_code=201, response_model=downloads.LinkOut)
def records_link(run_id: RunId, session: SessionDep, settings: SettingsDep, who: Auth,
                 file: Annotated[Literal[LINK_KINDS], Query(description="Which file.")] = "metrics.csv") -> dict:
    """A short-lived link (``GXNOR_DOWNLOAD_LINK_S``) that downloads one of these files without a token — for
    browsers; it serves that file of that run only, and only while you may see the run."""
    svc.require_run(session, run_id, who.team_ids)  # 404 now rather than from the link
    key, expires = downloads.create_link(session, run_id, file, who.user_id or None, settings.download_link_s)
    return {"url": f"/api/v1/downloads/records/{key}", "expires_at": expires}


@router.get("/downloads/records/{key}", response_class=StreamingResponse, tags=["downloads"], responses={
    **FILE, 404: {"model": ErrorOut, "description": "Unknown or expired link"}})
def download_records_link(key: Annotated[str, Path(min_length=40, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")],
                          settings: SettingsDep) -> StreamingResponse:
    """Redeem a link from ``POST /runs/{id}/records/link`` (the key is the credential: no token)."""
    with session_scope(settings.db_url) as session:  # closed before the file streams: no connection held
        run, kind = downloads.redeem(session, key, LINK_KINDS)
        run_id, name = run.id, run.name
    table, fmt = kind.split(".")
    return _file(settings, run_id, name, table, fmt)
