"""API schemas.  The experiment config is gxnor_core's one model, never a copy."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model
from pydantic_core import PydanticCustomError

from app import run_meta
from app.models import RUN_STATUSES
from gxnor_core import costs as cost_model
from gxnor_core import metrics as catalog
from gxnor_core.config import CONTROL_CHARS, CleanText, ExperimentConfig
from gxnor_core.sweeps import MAX_NAME, SweepSpec

RunStatus = Literal[RUN_STATUSES]


def _trimmed(text: str) -> str:
    if text != text.strip():
        raise PydanticCustomError("surrounding_space", "a tag cannot begin or end with a space")
    return text


def _note_text(text: str) -> str:
    """Notes are free text: newlines and tabs are fine, the other control characters are not (as in names)."""
    found = CONTROL_CHARS.search(text.replace("\n", "").replace("\r", "").replace("\t", ""))
    if found is not None:
        raise PydanticCustomError("control_character", f"control characters other than newline and tab are not "
                                                       f"allowed (U+{ord(found.group()):04X})")
    return text


NoteText = Annotated[str, AfterValidator(_note_text)]


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


# A run's summary: every run metric of the catalog (gxnor_core.metrics.RUN_METRICS), null until known.
Summary = create_model(
    "Summary",
    __doc__="The run's summary: one value per run metric of the catalog (GET /catalog → metrics.run), null until "
            "the run has recorded an epoch.  Last-epoch figures change with every epoch while the run trains.",
    **{m.name: (int | None if m.integer else float | None, Field(None, title=m.label, description=m.description))
       for m in catalog.RUN_METRICS},
)


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
    archived: bool = Field(False, description="Hidden from the run list unless it asks for `archived=true|any`.")
    tags: list[str] = Field(default_factory=list, description="The run's tags, sorted.")
    notes: str | None = Field(None, description="The run's notes (\"\": none); null in lists, which do not "
                                                "read them.")


class RunList(BaseModel):
    items: list[RunOut]
    total: int
    limit: int
    offset: int


# What a team changes on a run after it was made (PATCH /runs/{id}, POST /runs/bulk; app.run_edits).
Tag = Annotated[CleanText, Field(min_length=1, max_length=run_meta.MAX_TAG), AfterValidator(_trimmed)]
Tags = Annotated[list[Tag], Field(max_length=run_meta.MAX_TAGS)]


class RunPatch(BaseModel):
    """Any of the fields; those left out are left as they are.  The config keeps the name it was submitted
    with; ``name`` renames the run as lists and pages show it."""

    model_config = ConfigDict(extra="forbid")
    name: CleanText | None = Field(None, min_length=1, max_length=200)
    tags: Tags | None = Field(None, description=f"The run's tags, all of them (replaces its set): at most "
                                                f"{run_meta.MAX_TAGS}, each 1–{run_meta.MAX_TAG} characters.")
    notes: NoteText | None = Field(None, max_length=run_meta.MAX_NOTES,
                                   description="Free text (newlines and tabs allowed); \"\" removes the notes.")
    archived: bool | None = Field(None, description="Archive (only a finished run) or unarchive the run.")


BULK_ACTIONS = ("tag", "untag", "cancel", "archive", "unarchive", "delete")


class BulkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[Annotated[int, Field(ge=1, le=2_147_483_647)]] = Field(min_length=1, max_length=500,
                                                                     description="The runs, up to 500.")
    action: Literal[BULK_ACTIONS]
    tags: Tags = Field(default_factory=list, description="For `tag` and `untag` (and only those): the tags to "
                                                         "add or remove.")


class BulkResult(BaseModel):
    id: int
    ok: bool
    status: int = Field(description="What the single-run route would have answered: 200 (204 for delete), 404 "
                                     "(missing or another team's), 409 (not in a status the action allows), 422.")
    detail: str | None = Field(None, description="Why not, when not ok.")


class BulkOut(BaseModel):
    action: str
    done: int = Field(description="How many runs the action applied to.")
    results: list[BulkResult] = Field(description="One per id asked for, in the order asked.")


class MetricsOut(BaseModel):
    run_id: int
    total_epochs_recorded: int
    downsampled: bool
    epochs: list[dict[str, Any]]


class BatchPointOut(BaseModel):
    """A within-epoch loss point (docs/METRICS.md, "Batch points")."""

    epoch: int
    fraction: float = Field(description="The point ends this fraction of the epoch's batches, in (0, 1].")
    loss: float | None = Field(description="Mean training loss over the batches since the epoch's previous point "
                                           "(null when not finite).")
    samples: int = Field(description="Training samples those batches held (the mean's denominator).")


class BatchesOut(BaseModel):
    run_id: int
    points: list[BatchPointOut]


class LayersOut(BaseModel):
    run_id: int
    records: list[dict[str, Any]]


class SweepPoint(BaseModel):
    id: int = Field(description="The sweep.")
    point: int = Field(description="The point (the sweep's `group`): the same overrides under each seed.")
    overrides: dict[str, Any] = Field(description="The point's dotted config fields → values.")


class CompareRun(BaseModel):
    id: int
    name: str
    status: RunStatus
    summary: Summary
    config: dict[str, Any]
    sweep: SweepPoint | None = Field(description="The sweep point the run belongs to (null: not from a sweep).")


# The operation-type cost model (gxnor_core.costs; docs/METHOD.md §6): counts per sample, one field per count.
CostCounts = create_model(
    "CostCounts", __doc__="Operations, bytes and energy per sample, of one layer or summed over the layers.",
    **{k: (float | None if k in ("activation_bytes", "memory_pj", "energy_pj") else float, Field(description=t))
       for k, t in cost_model.COUNTS.items()},
)


class CostTotals(CostCounts):
    resting_fraction: float | None = Field(description="resting / macs: how often the scheme's gates rest.")
    energy_vs_full_precision: float | None = Field(description="energy_pj / the full-precision scheme's energy_pj.")


class SchemeLayerCosts(CostCounts):
    layer: str


class SchemeCosts(BaseModel):
    name: Literal[tuple(s.name for s in cost_model.SCHEMES)]
    label: str
    assumption: str = Field(description="What the scheme assumes: show it beside its numbers.")
    total: CostTotals
    layers: list[SchemeLayerCosts] = Field(description="Per layer, in the order of `layers`.")


class CostLayer(BaseModel):
    layer: str
    kind: str | None
    type: Literal["xnor", "real_input", "float_weights"] = Field(
        description="xnor: discrete weights and discrete input; real_input: the data or a full-precision "
                    "activation; float_weights: discrete input, full-precision weights.")
    macs: int = Field(description="Dense MACs per sample, padded taps included.")
    padded_macs: int | None = Field(description="Of which taps on a convolution's padding (zeros of the input).")
    input_values: int | None = Field(description="Values of the layer's input per sample (padding not counted).")
    num_weights: int
    weight_levels: int | None = Field(description="Weight states (null: full-precision weights).")
    input_levels: int | None = Field(description="Activation levels of the input (null: real-valued input).")
    weight_bits: int
    input_bits: int
    weight_sparsity: float | None
    activation_sparsity: float | None
    events: float = Field(description="MACs with both operands non-zero, mean per sample on the probe batch.")


class CostsOut(BaseModel):
    run_id: int
    epoch: int | None = Field(description="The epoch whose layer records are counted: `?epoch=`, else the last "
                                          "recorded one (null: none yet).")
    epochs_done: int
    best_epoch: int | None = Field(description="The epoch of the best validation error (ask `?epoch=` for it).")
    layers: list[CostLayer]
    schemes: list[SchemeCosts] = Field(description="This run as measured, then full precision, BWN, TWN, BNN.")
    energy_table: dict[str, Any] = Field(description="The energy per operation used: its source, process node "
                                                     "and picojoules (GXNOR_ENERGY_TABLE).")


class RunCostTotals(BaseModel):
    epoch: int | None
    totals: dict[str, CostTotals] = Field(description="Scheme name → totals (GET /runs/{id}/costs: assumptions).")


class CompareOut(BaseModel):
    runs: list[CompareRun]
    config_diff: dict[str, list[Any]] = Field(description="Dotted config keys whose values differ, one value per run.")
    metric: str
    epochs: list[int]
    series: dict[str, list[float | None]] = Field(description="Run id → metric per epoch, aligned with `epochs`.")
    wall_time: dict[str, list[float | None]] = Field(
        description="Run id → seconds of training from the run's start to the end of each epoch (the running sum "
                    "of `epoch_seconds`: queue waits and pauses left out), aligned with `epochs`.")
    layers: dict[str, dict[str, dict[str, float | None]]] = Field(
        description=f"Run id → layer → last-epoch {', '.join(catalog.VIEWS['compare_layers'])} (layer metrics)."
    )
    costs: dict[str, RunCostTotals | None] = Field(
        description="Run id → operation counts and energy per scheme at the run's last recorded epoch, totals over "
                    "the layers (null: no epoch yet); per layer and with each scheme's assumption: "
                    "GET /runs/{id}/costs.")
    missing: list[int] = Field(description="With `skip_missing=true`: the ids asked for that are not there (deleted, "
                                           "or not visible to you); empty otherwise.")


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
    metrics: dict[str, MetricStat] = Field(description="Every run metric of the catalog that is aggregated over "
                                                       "seeds (GET /catalog → metrics.run, over_seeds).")


class SweepDetail(SweepOut):
    runs: list[SweepRun]
    results: list[SweepResult] = Field(description="One row per config: mean ± sample std over its seeds.")
    pareto: list[int] = Field(description=f"Groups on the front of mean {catalog.PARETO['y']} vs mean "
                              f"{catalog.PARETO['x']} (both minimised), the full-precision baseline left out.")


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
