"""What the run routes do, as plain functions over a session."""

from __future__ import annotations

import math
import shutil
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson
from fastapi import HTTPException
from sqlalchemy import ColumnElement, Text, and_, bindparam, cast, false, func, literal_column, or_, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import budget, estimator, lifecycle, prepared, run_meta
from app.auth import Principal
from app.models import FINISHED, Artifact, EpochMetric, LayerRecord, Project, Run, Sweep, Team
from app.settings import Settings
from app.summaries import NO_SUMMARY, summary_of
from app.summaries import sort_key as summary_sort_key
from gxnor_core.config import ConfigError, ExperimentConfig
from gxnor_core.data import DATASETS, check_fits_dataset, dataset_present
from gxnor_core.errors import FieldError
from gxnor_core.metrics import sortable
from gxnor_core.models import model_size


def check_servable(config: ExperimentConfig, settings: Settings) -> None:
    """Server-side rules on top of the config's own bounds (422 naming the field)."""
    if config.dataset.root is not None:
        raise ConfigError("config.dataset.root", "the server takes dataset names only, never a path")
    if config.dataset.download:
        raise ConfigError("config.dataset.download", "the server does not download datasets on request")
    if config.train.epochs > settings.max_epochs:
        raise ConfigError("config.train.epochs", f"this server allows at most {settings.max_epochs} epochs")
    if settings.allowed_datasets is not None and config.dataset.name not in settings.allowed_datasets:
        raise ConfigError("config.dataset.name", f"this server serves {', '.join(settings.allowed_datasets)}")
    if not dataset_present(config.dataset.name, settings.datasets_root):
        # Said without the server's absolute path (as a failed run's reason is): `gxnor datasets` shows it.
        ds = DATASETS[config.dataset.name]
        raise ConfigError("config.dataset.name", f"{ds.name} is not on this server: an admin puts its files "
                          f"({', '.join(ds.files)}; each plain or .gz) in {ds.dirs[0]}/ under the server's "
                          "datasets directory (GXNOR_DATASETS_DIR, the same path for the API and every worker) "
                          f"and checks them with `gxnor datasets {ds.name}`")
    try:
        check_fits_dataset(config)  # a batch larger than the training split
        weights, macs = model_size(config)
    except ConfigError as exc:
        raise ConfigError(f"config.{exc.field}", exc.message) from None
    if weights > settings.max_weights:
        raise ConfigError("config.model", f"the network has {weights:,} weights; this server allows "
                          f"{settings.max_weights:,}")
    if macs > settings.max_macs:
        raise ConfigError("config.model", f"the network needs {macs:,} MACs per sample; this server allows "
                          f"{settings.max_macs:,}")


def resolve_team(session: Session, principal: Principal, name: str | None) -> Team:
    """The team a new run or sweep goes to: the named one (if the caller belongs to it), else the caller's
    only team."""
    mine = list(session.scalars(select(Team).where(Team.id.in_(principal.team_ids)).order_by(Team.name)))
    if name is not None:
        for team in mine:
            if team.name == name:
                return team
        raise FieldError("team", f"you are not a member of a team named {name!r}")
    if len(mine) == 1:
        return mine[0]
    if not mine:
        raise FieldError("team", "you belong to no team; an admin can add you to one")
    raise FieldError("team", f"you belong to {len(mine)} teams ({', '.join(t.name for t in mine)}); say which")


def check_queue_room(session: Session, settings: Settings, team_id: int, configs: Sequence[ExperimentConfig],
                     field: str = "config") -> None:
    """429 when the team's queued runs plus these ``configs`` would pass the server's cap, or their estimated
    seconds the team's queued-work budget (``GXNOR_TEAM_MAX_QUEUED_SECONDS``, app.budget); 422 when the configs
    alone do (waiting would not help).  Takes the team's queue lock first, held until the caller commits: the
    count and the caller's inserts are then one atomic step, so parallel submissions cannot all pass the
    same count."""
    adding = len(configs)
    if adding > settings.max_queued_runs:
        raise FieldError(field, f"this adds {adding} runs; this server queues at "
                          f"most {settings.max_queued_runs} per team")
    budget_s = settings.team_max_queued_seconds
    adding_s = estimator.total_seconds(session, configs) if budget_s else 0.0
    if adding_s > budget_s > 0:
        raise FieldError(field, budget.too_costly(adding, adding_s, budget_s))
    lock_team_queue(session, team_id)
    if budget_s:
        queued, queued_s = budget.queued_work(session, team_id)
    else:
        queued = session.scalar(select(func.count()).select_from(Run).join(Project, Project.id == Run.project_id)
                                .where(Run.status == "queued", Project.team_id == team_id))
    if queued + adding > settings.max_queued_runs:
        raise HTTPException(429, f"your team has {queued} runs queued; this server queues at most "
                                 f"{settings.max_queued_runs} per team — try again when some have started"
                                 + (f" (this request adds {adding})" if adding > 1 else ""),
                            headers={"Retry-After": "60"})
    if budget_s:
        budget.check_queued_seconds(session, team_id, queued_s, adding_s, budget_s)


def lock_team_queue(session: Session, team_id: int) -> None:
    """Serialise the check-then-insert of runs per team, until the session's transaction ends (the team lock
    that claims under a running limit take too: app.budget.lock_team)."""
    budget.lock_team(session, team_id)


def default_team_id(session: Session) -> int:
    """The team every database has (made by migration 0003): where runs go in scripts and tests."""
    return session.scalar(select(Team.id).where(Team.name == "default"))


def project_named(session: Session, team_id: int, name: str) -> Project:
    """The team's project of that name, made if new (two requests making it at once: both get the one)."""
    query = select(Project).where(Project.team_id == team_id, Project.name == name)
    project = session.scalars(query).first()
    if project is None:
        try:
            with session.begin_nested():
                project = Project(team_id=team_id, name=name)
                session.add(project)
        except IntegrityError:
            project = session.scalars(query).one()
    return project


def create_run(session: Session, config: ExperimentConfig, team_id: int, max_attempts: int = 3,
               sweep_id: int | None = None, sweep_index: int | None = None) -> Run:
    """A queued run in the team's project that the config names (made if new)."""
    project = project_named(session, team_id, config.project)
    return lifecycle.create(session, project, config, max_attempts, sweep_id, sweep_index)


def get_run(session: Session, run_id: int, teams: frozenset[int]) -> Run:
    """The run, or 404 — also when it belongs to another team (its existence is not revealed)."""
    run = session.get(Run, run_id)
    if run is None or run.project.team_id not in teams:
        raise HTTPException(404, f"run {run_id} not found")
    return run


# The API's hot reads are statements built once, with bind parameters: building a select per request (and
# SQLAlchemy's cache key over its columns) cost more than PostgreSQL's whole round trip (measured: a run
# read 0.74 → 0.25 ms, the visibility check 0.34 → 0.15 ms).
_TEAM_OF_RUN = select(Project.team_id).join(Run, Run.project_id == Project.id).where(Run.id == bindparam("id"))


def require_run(session: Session, run_id: int, teams: frozenset[int]) -> int:
    """The run's team id; 404 unless the run exists and is visible (one indexed read)."""
    found = prepared.scalar(session, _TEAM_OF_RUN, {"id": run_id})
    if found is None or found not in teams:
        raise HTTPException(404, f"run {run_id} not found")
    return found


# Reads for the API return plain dicts in the shape of app.schemas.RunOut, with the stored
# JSON columns passed through as raw text (orjson.Fragment): no decode and re-encode per request.  The summary
# too (app.summaries): the worker stores every run metric of the catalog, so the stored object is the
# response's; a run with no epoch yet (NULL) gets every metric as null.
_RUN_COLUMNS = (
    Run.id, Run.name, Project.name.label("project"), Team.name.label("team"), Run.sweep_id, Run.status,
    Run.cancel_requested, Run.archived, Run.progress_epoch, Run.progress_fraction, Run.epochs_done, Run.total_epochs,
    cast(Run.summary, Text).label("summary"),
    cast(Run.config, Text).label("config"), cast(Run.info, Text).label("info"), Run.error, Run.attempt,
    Run.worker, Run.created_at, Run.started_at, Run.finished_at, run_meta.TAGS_COLUMN,
)


def _raw(text: str | None):
    return None if text is None else orjson.Fragment(text)


_HEAD = ("id", "name", "project", "team", "sweep_id", "status", "cancel_requested", "archived")
_N_HEAD = len(_HEAD)


def _run_dict(row) -> dict:
    """A row of ``_RUN_COLUMNS`` as a RunOut-shaped dict (by position: attribute access per field is slow)."""
    r = row if isinstance(row, tuple) else tuple(row)
    out = dict(zip(_HEAD, r[:_N_HEAD], strict=True))
    epoch, fraction, done, total = r[_N_HEAD:_N_HEAD + 4]
    out["progress"] = {"epoch": epoch, "fraction": fraction, "epochs_done": done, "total_epochs": total}
    summary, config, info, error, attempt, worker, created, started, finished, tags = r[_N_HEAD + 4:]
    out["summary"] = NO_SUMMARY if summary is None else orjson.Fragment(summary)
    out.update(config=_raw(config), info=_raw(info), error=error, error_detail=None, attempt=attempt,
               worker=worker, created_at=created, started_at=started, finished_at=finished,
               tags=run_meta.split_tags(tags), notes=None)
    return out


def _select_runs():
    return select(*_RUN_COLUMNS).join(Project, Project.id == Run.project_id).join(Team, Team.id == Project.team_id)


_IDS = bindparam("ids", expanding=True)
_TEAMS = bindparam("teams", expanding=True)
# One run: also its notes and its traceback (``error_detail``, the last column; only admins are shown it).
_ONE = _select_runs().add_columns(run_meta.NOTES_COLUMN, Run.error_detail).where(
    Run.id == bindparam("id"), Project.team_id.in_(_TEAMS))


def fetch_run(session: Session, run_id: int, teams: frozenset[int], admin: bool = False) -> dict:
    """One visible run as a RunOut-shaped dict (404 otherwise); ``error_detail`` (a failed run's traceback,
    with the server's paths) only for an ``admin``, else null.  Lists never carry it."""
    row = prepared.first(session, _ONE, {"id": run_id, "teams": list(teams)})
    if row is None:
        raise HTTPException(404, f"run {run_id} not found")
    r = tuple(row)
    out = _run_dict(r[:-2])
    out["notes"] = r[-2] or ""
    if admin:
        out["error_detail"] = r[-1]
    return out


@lru_cache(maxsize=512)
def _list_statements(status: bool, project: bool, team: bool, sweep: bool, q: bool, sort: str, order: str,
                     counted: bool, tag: bool = False, archived: str = "false"):
    """(page, count) for one shape of list request, built once (the values are bind parameters); when
    ``counted`` the page carries the total as its last column, and the count is only for a page past the end."""
    visible = [Project.team_id.in_(_TEAMS)]
    if status:
        visible.append(Run.status == bindparam("status"))
    if project:
        visible.append(Project.name == bindparam("project"))
    if team:
        visible.append(Project.team_id.in_(select(Team.id).where(Team.name == bindparam("team"))))
    if sweep:
        visible.append(Run.sweep_id == bindparam("sweep"))
    if q:  # the name, or the notes (app.run_meta)
        visible.append(or_(Run.name.ilike(bindparam("pattern"), escape="\\"),
                           Run.id.in_(run_meta.notes_matching(bindparam("pattern")))))
    if tag:
        visible.append(Run.id.in_(run_meta.runs_tagged(bindparam("tag"))))
    if archived != "any":  # a column of both list indexes (migration 0011)
        visible.append(Run.archived == (true() if archived == "true" else false()))
    ids = select(Run.id).join(Project, Project.id == Run.project_id).where(*visible)
    count = select(func.count()).select_from(ids.subquery())
    total = [func.count().over().label("total")] if counted else []
    in_summary = sort not in RUN_COLUMN_SORTS
    # A run metric: from the stored summary (app.summaries; counted ⇔ PostgreSQL); NULL (no epoch yet, or no such
    # value, or a run outside any sweep) sorts last either way.
    key, join = summary_sort_key(sort, counted) if in_summary else (_column_sort_key(sort), None)
    keyed = select(Run.id, key.label("key")).join(Project, Project.id == Run.project_id)
    if join is not None:
        keyed = keyed.outerjoin(*join)
    keyed = keyed.where(*visible)
    if in_summary and counted:
        # PostgreSQL: extract the key in the index scan, under the window count (OFFSET 0 keeps the subquery
        # whole).  Flattened, the planner carries every row's summary through the window's tuplestore and
        # extracts above it (docs/DESIGN.md, "Run summaries").
        keyed = keyed.offset(literal_column("0"))
    keyed = keyed.subquery()
    # The page's ids are sorted on narrow rows, then only those rows are read whole (a "late row lookup"):
    # sorting whole rows costs PostgreSQL 3.9 ms of CPU per page and SQLite twice the time; ids first, 1.1 ms.
    ordered = ((keyed.c.key.desc() if order == "desc" else keyed.c.key.asc()).nulls_last(), keyed.c.id.desc())
    page = (select(keyed.c.id, keyed.c.key, *total).order_by(*ordered).limit(bindparam("limit"))
            .offset(bindparam("offset")).subquery())
    rows = _select_runs().join(page, page.c.id == Run.id).order_by(
        (page.c.key.desc() if order == "desc" else page.c.key.asc()).nulls_last(), Run.id.desc())
    return (rows.add_columns(page.c.total) if counted else rows), count


def list_runs(session: Session, *, teams: frozenset[int], status: str | None, project: str | None,
              team: str | None = None, sweep: int | None = None, q: str | None, sort: str, order: str, limit: int,
              offset: int, tag: str | None = None, archived: str = "false") -> tuple[list[dict], int]:
    """One page of the visible runs, and how many there are.  PostgreSQL counts them in the same statement
    (a window over the ids it sorts anyway: 1.6 → 1.4 ms a page); SQLite is faster with a count of its own
    (0.7 ms against 1.0).  ``archived``: "false" (the default) hides archived runs, "true" shows only them,
    "any" both.  The page's tags are a column of the page statement (app.run_meta.TAGS_COLUMN)."""
    params = {"teams": list(teams), "status": status, "project": project, "team": team, "sweep": sweep,
              "limit": limit, "offset": offset, "tag": tag}
    if q:
        params["pattern"] = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    counted = session.dialect.name == "postgresql"
    page, count = _list_statements(bool(status), bool(project), bool(team), sweep is not None, bool(q), sort, order,
                                   counted, tag is not None, archived)
    rows = prepared.rows(session, page, params)
    if counted and rows:
        items, total = [_run_dict(r[:-1]) for r in rows], rows[0][-1]
    else:  # SQLite; or a page past the end, or nothing visible (no row carried the total): a count of its own
        items, total = [_run_dict(r) for r in rows], int(prepared.scalar(session, count, params) or 0)
    return items, total


# A run's epochs or layer records, with the run's team in the same statement (an outer join: a visible run
# with nothing recorded yet is one row of NULLs), so the visibility check costs no round trip of its own.
_EPOCH_METRICS = (select(Project.team_id, cast(EpochMetric.metrics, Text)).select_from(Run)
                  .join(Project, Project.id == Run.project_id)
                  .outerjoin(EpochMetric, EpochMetric.run_id == Run.id)
                  .where(Run.id == bindparam("id")).order_by(EpochMetric.epoch))


def _visible_rows(rows: list, run_id: int, teams: frozenset[int]) -> list:
    if not rows or rows[0][0] not in teams:
        raise HTTPException(404, f"run {run_id} not found")
    return rows


def epoch_metrics_raw(session: Session, run_id: int, teams: frozenset[int]) -> list[str]:
    """Each epoch's stored metrics JSON, in epoch order, undecoded (404 unless the run is visible)."""
    rows = _visible_rows(prepared.rows(session, _EPOCH_METRICS, {"id": run_id}), run_id, teams)
    return [m for _, m in rows if m is not None]


@lru_cache(maxsize=4)
def _layer_statement(by_epoch: bool, by_layer: bool):
    on = [LayerRecord.run_id == Run.id]
    if by_epoch:
        on.append(LayerRecord.epoch == bindparam("epoch"))
    if by_layer:
        on.append(LayerRecord.layer == bindparam("layer"))
    return (select(Project.team_id, LayerRecord.epoch, cast(LayerRecord.record, Text)).select_from(Run)
            .join(Project, Project.id == Run.project_id).outerjoin(LayerRecord, and_(*on))
            .where(Run.id == bindparam("id")).order_by(LayerRecord.epoch, LayerRecord.id))


def layer_records_raw(session: Session, run_id: int, teams: frozenset[int], epoch: int | None,
                      layer: str | None) -> list[tuple[int, str]]:
    """(epoch, record JSON) of the run's layer records, undecoded (404 unless the run is visible)."""
    stmt = _layer_statement(epoch is not None, layer is not None)
    rows = _visible_rows(prepared.rows(session, stmt, {"id": run_id, "epoch": epoch, "layer": layer}), run_id, teams)
    return [(e, r) for _, e, r in rows if r is not None]


_COMPARED = select(Run.id, Run.name, Run.status, cast(Run.config, Text).label("config"), cast(Run.summary, Text),
                   Run.sweep_id, Run.sweep_index).join(Project, Project.id == Run.project_id) \
    .where(Run.id.in_(_IDS), Project.team_id.in_(_TEAMS))
_SWEEP_POINTS = select(Sweep.id, Sweep.points).where(Sweep.id.in_(_IDS))


def compared_runs(session: Session, run_ids: list[int], teams: frozenset[int],
                  skip_missing: bool = False) -> list[dict]:
    """The runs of a comparison, in the order asked: 404 naming the first missing or invisible one, or with
    ``skip_missing`` the others (a saved comparison whose run was deleted still opens)."""
    found, in_sweep = {}, {}
    for run_id, name, status, config, summary, sweep_id, sweep_index in prepared.rows(
            session, _COMPARED, {"ids": run_ids, "teams": list(teams)}):
        found[run_id] = {"id": run_id, "name": name, "status": status, "config": orjson.loads(config),
                         "summary": summary_of(summary), "sweep": None}
        if sweep_id is not None:
            in_sweep[run_id] = (sweep_id, sweep_index)
    missing = [i for i in run_ids if i not in found]
    if missing and not skip_missing:
        raise HTTPException(404, f"run {missing[0]} not found")
    # A sweep's point (its group: the same overrides under every seed) is what compare groups seeds by.  The
    # sweep is the run's own, so in the run's team: no second team check.
    sweeps = {sid: {p["index"]: p for p in points} for sid, points in prepared.rows(
        session, _SWEEP_POINTS, {"ids": sorted({s for s, _ in in_sweep.values()})})} if in_sweep else {}
    for run_id, (sweep_id, index) in in_sweep.items():
        point = sweeps.get(sweep_id, {}).get(index)
        if point is not None:
            found[run_id]["sweep"] = {"id": sweep_id, "point": point["group"], "overrides": point["overrides"]}
    return [found[i] for i in run_ids if i in found]


@lru_cache(maxsize=64)
def _metric_statement(metrics: tuple[str, ...]):
    return select(EpochMetric.run_id, EpochMetric.epoch, *(EpochMetric.metrics[m].as_float() for m in metrics)) \
        .where(EpochMetric.run_id.in_(_IDS))


def metric_series(session: Session, run_ids: list[int], *metrics: str) -> list[dict[int, dict[int, float | None]]]:
    """Per metric: run → epoch → its value, extracted in SQL (all of them in one statement)."""
    out: list[dict[int, dict[int, float | None]]] = [{i: {} for i in run_ids} for _ in metrics]
    for run_id, epoch, *values in prepared.rows(session, _metric_statement(metrics), {"ids": run_ids}):
        for series, v in zip(out, values, strict=True):
            series[run_id][epoch] = v
    return out


def wall_times(epoch_seconds: dict[int, dict[int, float | None]]) -> dict[int, dict[int, float | None]]:
    """run → epoch → seconds of training from the run's start to the end of that epoch: the running sum of its
    ``epoch_seconds`` (each epoch's training, evaluation and probe; ``metric_series``).  Epoch records carry no
    clock time, and a sum leaves out the queue wait and the pause of a run resumed on another worker, so curves
    of runs that waited differently still line up.  Null from the first epoch without a time on."""
    out: dict[int, dict[int, float | None]] = {}
    for run_id, seconds in epoch_seconds.items():
        total: float | None = 0.0
        out[run_id] = {}
        for epoch in sorted(seconds):
            total = None if total is None or seconds[epoch] is None else total + seconds[epoch]
            out[run_id][epoch] = total
    return out


@lru_cache(maxsize=8)
def _last_layers_statement(fields: tuple[str, ...]):
    cols = [LayerRecord.record[f].as_float().label(f) for f in fields]
    return (select(LayerRecord.run_id, LayerRecord.layer, *cols)
            .join(Run, and_(Run.id == LayerRecord.run_id, LayerRecord.epoch == Run.epochs_done))
            .where(Run.id.in_(_IDS)).order_by(LayerRecord.id))


def last_epoch_layers(session: Session, run_ids: list[int], fields: tuple[str, ...]) -> dict[int, dict[str, dict]]:
    """run → layer → fields of its last recorded epoch's layer record, extracted in SQL."""
    out: dict[int, dict[str, dict]] = {i: {} for i in run_ids}
    for run_id, layer, *values in prepared.rows(session, _last_layers_statement(fields), {"ids": run_ids}):
        out[run_id][layer] = dict(zip(fields, values, strict=True))
    return out


def thin_epochs(epochs: list[int], points: int) -> set[int]:
    """At most ``points`` epochs, evenly spread, always with the last."""
    if len(epochs) <= points:
        return set(epochs)
    step = len(epochs) / (points - 1)
    return {epochs[int(i * step)] for i in range(points - 1)} | {epochs[-1]}


def cancel_run(session: Session, run: Run) -> Run:
    """A queued run is cancelled at once, a running one asked to stop (app.lifecycle.cancel); 409 when it has
    already finished."""
    if lifecycle.cancel(session, run.id) is None:
        status = session.scalar(select(Run.status).where(Run.id == run.id))
        raise HTTPException(409, f"run {run.id} is already {status}")
    session.refresh(run)
    return run


def delete_run(session: Session, run: Run, settings: Settings) -> None:
    if run.status not in FINISHED:
        raise HTTPException(409, f"run {run.id} is {run.status}; cancel it before deleting")
    session.delete(run)
    session.flush()
    shutil.rmtree(settings.artifacts / "runs" / str(run.id), ignore_errors=True)


def downsample(rows: list[dict], budget: int, key: str) -> list[dict]:
    """At most ``budget`` rows: the first, the last, and per bucket the min and max of ``key``."""
    n = len(rows)
    if n <= budget:
        return rows
    keep = {0, n - 1}
    buckets = max(1, (budget - 2) // 2)
    for b in range(buckets):
        lo, hi = b * n // buckets, (b + 1) * n // buckets
        seg = [i for i in range(lo, hi) if _num(rows[i].get(key)) is not None]
        if seg:
            keep.add(min(seg, key=lambda i: rows[i][key]))
            keep.add(max(seg, key=lambda i: rows[i][key]))
        else:
            keep.add(lo)
    return [rows[i] for i in sorted(keep)]


def _num(v: Any) -> float | None:
    return v if isinstance(v, int | float) and not (isinstance(v, float) and math.isnan(v)) else None


def flatten(config: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in config.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def config_diff(configs: list[dict]) -> dict[str, list[Any]]:
    flat = [flatten(c) for c in configs]
    keys = sorted(set().union(*flat))
    return {k: [f.get(k) for f in flat] for k in keys if len({repr(f.get(k)) for f in flat}) > 1}


CHECKPOINT_KINDS = {"latest": "checkpoint", "best": "best"}
"""``which`` checkpoint of a run → its artifact kind: the latest epoch's (training state, to resume from) or the
best-validation epoch's model (worker.runner keeps both)."""


def checkpoint_file(session: Session, run: Run, settings: Settings, which: str = "latest") -> Path:
    art = session.scalars(select(Artifact).where(Artifact.run_id == run.id, Artifact.kind == CHECKPOINT_KINDS[which])
                          .order_by(Artifact.epoch.desc()).limit(1)).first()
    if art is None:
        if which == "best" and run.epochs_done:  # recorded before the worker kept the best model
            raise HTTPException(404, f"run {run.id} has no best-validation checkpoint; ask for which=latest")
        raise HTTPException(404, f"run {run.id} has no checkpoint yet")
    root = settings.artifacts.resolve()
    path = (root / art.path).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise HTTPException(404, f"checkpoint of run {run.id} is missing")
    return path


# Sort keys of the run list: columns of the run (``project`` and ``sweep``: the fields it also filters by), then
# every sortable run metric of the catalog.
RUN_COLUMN_SORTS = ("created_at", "name", "status", "epochs_done", "project", "sweep")
SORTABLE = (*RUN_COLUMN_SORTS, *sortable())


def _column_sort_key(sort: str) -> ColumnElement:
    """The SQL value of a ``RUN_COLUMN_SORTS`` key (the list's statements join the project already)."""
    return Project.name if sort == "project" else Run.sweep_id if sort == "sweep" else getattr(Run, sort)
