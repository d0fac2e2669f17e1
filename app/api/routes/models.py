"""A finished run's exported model (docs/EXPORT.md, "Serving"): the ``.gxn`` file (directly or through a
short-lived link), its profile on this server (size, latency, executed gate events) and scoring with the
integer engine.  The work runs in app.exported's thread pool, off the event loop; visibility as every run
route: another team's run is 404."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from app import downloads, exported
from app import runs as svc
from app.api.deps import SessionDep, SettingsDep
from app.api.routes.runs import FastJSON, RunId
from app.auth import Auth
from app.db import session_scope
from app.schemas import CONFLICT, ERRORS, ErrorOut

router = APIRouter(prefix="/api/v1", tags=["models"], responses=ERRORS)

Which = Annotated[Literal["best", "latest"], Query(description=(
    "best: the best-validation epoch's model (default, the one model selection chose); latest: the last "
    "recorded epoch's checkpoint."))]
REFUSED = {**CONFLICT,
           422: {"model": ErrorOut, "description": "The run's network cannot be exported (names the config field)"},
           503: {"model": ErrorOut, "description": "Every scoring slot is busy (GXNOR_SCORE_CONCURRENCY), or the "
                 "database is unavailable; retry after Retry-After"}}


class LatencyOut(BaseModel):
    batch: int
    ms_per_batch: float
    ms_per_sample: float
    repeats: int


class ProbeEventsOut(BaseModel):
    split: Literal["val", "test"]
    samples: int
    per_sample: dict[str, float] = Field(description="Gate events per sample, per XNOR layer.")


class ModelLayerOut(BaseModel):
    name: str
    role: Literal["real_input", "xnor", "output"]
    kind: Literal["conv", "fc"]
    weights: int


class ProfileOut(BaseModel):
    run_id: int
    which: Literal["best", "latest"]
    epoch: int | None
    best_epoch: int | None
    format_version: int
    size_bytes: int = Field(description="The .gxn file's size.")
    fp32_bytes: int = Field(description="The same network's weights and BatchNorm state in float32.")
    input_shape: list[int]
    classes: int
    layers: list[ModelLayerOut]
    latency: list[LatencyOut] = Field(description="Engine latency on random inputs at batch 1 and 64 (median).")
    events: ProbeEventsOut = Field(description="Gate events the engine executed on the run's probe batch.")
    measured_at: str


class ScoreOut(BaseModel):
    run_id: int
    which: Literal["best", "latest"]
    n: int
    predictions: list[int]
    logits: list[list[float]]
    events: list[dict[str, int]] = Field(description="Gate events each sample executed, per XNOR layer.")
    events_total: dict[str, int]
    kernels: dict[str, str]
    latency_ms: float = Field(description="The engine's time for the whole batch (parsing excluded).")
    latency_ms_per_sample: float


async def _source(request: Request, run_id: int, who, which: str) -> exported.Source:
    settings = request.app.state.settings

    def find() -> exported.Source:
        with session_scope(settings.db_url) as session:
            return exported.locate(session, svc.get_run(session, run_id, who.team_ids), settings, which)

    return await run_in_threadpool(find)


async def _gxn(request: Request, source: exported.Source) -> Response:
    models: exported.ModelService = request.app.state.models
    loaded = await models.submit(models.load, source)
    name = f"run-{source.run_id}-{source.path.stem}.gxn"
    return Response(loaded.data, media_type="application/octet-stream",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/runs/{run_id}/model", response_class=Response, responses=REFUSED)
async def download_model(run_id: RunId, request: Request, who: Auth, which: Which = "best") -> Response:
    """The run's model as a ``.gxn`` file (docs/EXPORT.md), exported from its best-validation model or with
    ``which=latest`` its latest checkpoint.  409 while the run is queued or running; 422 naming the config
    field when the network cannot be exported.  For a browser, ``POST /runs/{id}/model/link``."""
    return await _gxn(request, await _source(request, run_id, who, which))


@router.post("/runs/{run_id}/model/link", status_code=201, response_model=downloads.LinkOut, responses=REFUSED)
def model_link(run_id: RunId, session: SessionDep, settings: SettingsDep, who: Auth, which: Which = "best") -> dict:
    """A short-lived link (``GXNOR_DOWNLOAD_LINK_S``) that downloads the run's ``.gxn`` model without a token, as
    ``POST /runs/{id}/checkpoint/link`` does for checkpoints; checked (409/422/404) now rather than by the link."""
    run = svc.get_run(session, run_id, who.team_ids)
    exported.locate(session, run, settings, which)
    key, expires = downloads.create_link(session, run.id, f"model-{which}", who.user_id or None,
                                         settings.download_link_s)
    return {"url": f"/api/v1/downloads/model/{key}", "expires_at": expires}


@router.get("/downloads/model/{key}", response_class=Response, tags=["downloads"], responses={
    404: {"model": ErrorOut, "description": "Unknown or expired link"}})
async def download_model_link(key: Annotated[str, Path(min_length=40, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")],
                              request: Request) -> Response:
    """Redeem a link from ``POST /runs/{id}/model/link`` (the key is the credential: no token)."""
    settings = request.app.state.settings

    def find() -> exported.Source:
        with session_scope(settings.db_url) as session:
            run, kind = downloads.redeem(session, key, tuple(downloads.MODEL_KINDS))
            return exported.locate(session, run, settings, downloads.MODEL_KINDS[kind])

    return await _gxn(request, await run_in_threadpool(find))


@router.get("/runs/{run_id}/model/profile", response_model=ProfileOut, responses=REFUSED)
async def model_profile(run_id: RunId, request: Request, who: Auth, which: Which = "best"):
    """The exported model on this server: its size against float32, the engine's latency per sample at batch 1
    and 64 (random inputs of the model's shape), and the gate events it executes per sample on the run's probe
    batch — compare with ``GET /runs/{id}/costs?epoch=`` its ``epoch``.  Measured once per loaded model."""
    source = await _source(request, run_id, who, which)
    models: exported.ModelService = request.app.state.models
    return FastJSON(await models.submit(models.profile, source))


@router.post("/runs/{run_id}/score", response_model=ScoreOut, responses={
    **REFUSED, 413: {"model": ErrorOut, "description": "More samples than GXNOR_SCORE_MAX_BATCH, or a body larger "
                     "than GXNOR_MAX_BODY_BYTES"}},
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/json": {"schema": {"type": "object", "required": ["inputs"], "additionalProperties": False,
                                        "properties": {"inputs": {"type": "array", "description": (
                                            "N samples, each C×H×W nested arrays (or a flat list of features)"),
                                            "items": {}}}}},
        "application/x-npy": {"schema": {"type": "string", "format": "binary",
                                         "description": "A .npy array, N×C×H×W or N×features (no pickles)"}}}}})
async def score(run_id: RunId, request: Request, who: Auth, which: Which = "best"):
    """Score a batch with the run's exported model on the integer engine: predictions, logits, gate events per
    sample and the engine's latency.  Inputs are preprocessed as training saw them (docs/METHOD.md §5).  413
    beyond ``GXNOR_SCORE_MAX_BATCH`` samples; 422 naming ``inputs`` for a wrong shape; 409 for an unfinished
    run; 503 with Retry-After while every scoring slot is busy."""
    body = await request.body()
    source = await _source(request, run_id, who, which)
    models: exported.ModelService = request.app.state.models
    return FastJSON(await models.submit(models.score, source, body, request.headers.get("content-type", "")))
