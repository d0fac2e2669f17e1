"""API schemas.  The experiment config is gxnor_core's one model, never a copy."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.models import RUN_STATUSES, SUMMARY_COLUMNS
from gxnor_core.config import CleanText, ExperimentConfig
from gxnor_core.sweeps import MAX_NAME, SweepSpec

RunStatus = Literal[RUN_STATUSES]
SortKey = Literal[("created_at", "name", "status") + SUMMARY_COLUMNS]


class RunCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    config: ExperimentConfig = Field(default_factory=ExperimentConfig)
    team: CleanText | None = Field(None, min_length=1, max_length=100,
                                   description="The team the run's project belongs to (default: your only team).")


class Progress(BaseModel):
    epoch: int = Field(description="The epoch being trained (1-based), or the last one finished.")
    fraction: float = Field(description="Fraction of that epoch done.")
    epochs_done: int
    total_epochs: int


class Summary(BaseModel):
    best_epoch: int | None = None
    best_val_error: float | None = None
    test_error: float | None = Field(None, description="Test error at the epoch of best validation error.")
    best_test_error: float | None = Field(None, description="Best test error of any epoch (for reference only).")
    train_loss: float | None = None
    gate_event_rate: float | None = None
    activation_sparsity: float | None = None
    weight_sparsity: float | None = None
    transition_rate: float | None = None


class RunOut(BaseModel):
    id: int
    name: str
    project: str
    team: str
    sweep_id: int | None = None
    status: RunStatus
    cancel_requested: bool
    progress: Progress
    summary: Summary
    config: dict[str, Any]
    info: dict[str, Any] | None
    error: str | None
    error_detail: str | None = Field(None, description="A failed run's traceback: shown to admins only.")
    attempt: int
    worker: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class RunList(BaseModel):
    items: list[RunOut]
    total: int
    limit: int
    offset: int


class MetricsOut(BaseModel):
    run_id: int
    total_epochs_recorded: int
    downsampled: bool
    epochs: list[dict[str, Any]]


class LayersOut(BaseModel):
    run_id: int
    records: list[dict[str, Any]]


class CompareRun(BaseModel):
    id: int
    name: str
    status: RunStatus
    summary: Summary
    config: dict[str, Any]


class CompareOut(BaseModel):
    runs: list[CompareRun]
    config_diff: dict[str, list[Any]] = Field(description="Dotted config keys whose values differ, one value per run.")
    metric: str
    epochs: list[int]
    series: dict[str, list[float | None]] = Field(description="Run id → metric per epoch, aligned with `epochs`.")
    layers: dict[str, dict[str, dict[str, float | None]]] = Field(
        description="Run id → layer → last-epoch gate_event_rate, activation_sparsity, weight_sparsity."
    )


class SweepCreate(SweepSpec):
    """A sweep spec (gxnor_core.sweeps.SweepSpec) and the team it runs in.  No control characters in the
    name here (the rest of the spec: app.sweeps.create_sweep)."""

    name: CleanText = Field(min_length=1, max_length=MAX_NAME)
    team: CleanText | None = Field(None, min_length=1, max_length=100,
                                   description="The team the sweep's runs belong to (default: your only team).")


SweepStatus = Literal["queued", "running", "finished", "cancelled"]


class SweepOut(BaseModel):
    id: int
    name: str
    project: str
    team: str
    status: SweepStatus
    fields: list[str] = Field(description="The dotted config fields the sweep varies.")
    spec: dict[str, Any]
    counts: dict[str, int] = Field(description="Runs per status.")
    total: int
    progress: float = Field(description="Fraction of all the sweep's epochs done (finished runs count whole).")
    created_at: datetime
    cancelled_at: datetime | None


class SweepList(BaseModel):
    items: list[SweepOut]
    total: int
    limit: int
    offset: int


class SweepCreated(SweepOut):
    run_ids: list[int]


class SweepRun(BaseModel):
    id: int
    name: str
    status: RunStatus
    index: int | None
    group: int | None
    seed: int | None
    overrides: dict[str, Any]
    progress: Progress
    summary: Summary


class MetricStat(BaseModel):
    mean: float | None
    std: float | None
    n: int


class SweepResult(BaseModel):
    group: int
    overrides: dict[str, Any]
    seeds: list[int]
    n: int
    n_done: int = Field(description="Runs of this config that succeeded (the statistics are over these).")
    metrics: dict[str, MetricStat]


class SweepDetail(SweepOut):
    runs: list[SweepRun]
    results: list[SweepResult] = Field(description="One row per config: mean ± sample std over its seeds.")
    pareto: list[int] = Field(description="Groups on the front of test error vs gate-event rate (both minimised).")


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: bool
    broker: bool


class ErrorOut(BaseModel):
    detail: str


ERRORS = {
    401: {"model": ErrorOut, "description": "No token, or an invalid, revoked or expired one"},
    404: {"model": ErrorOut, "description": "Unknown run id"},
    503: {"model": ErrorOut, "description": "The database is unavailable; retry later"},
}
CONFLICT = {409: {"model": ErrorOut, "description": "Not allowed in the run's current status"}}
SUBMIT = {
    400: {"model": ErrorOut, "description": "The body is not JSON"},
    413: {"model": ErrorOut, "description": "The body is larger than the server accepts"},
    429: {"model": ErrorOut, "description": "The server's queue is full; retry later"},
}
