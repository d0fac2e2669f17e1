"""What the sweep routes do: expand and validate a spec, queue its runs, report their progress and
aggregate their results (gxnor_core.sweeps does the expansion and the statistics)."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from app import lifecycle
from app.auth import Principal
from app.models import FINISHED, RUN_STATUSES, Project, Run, Sweep, Team, utcnow
from app.runs import check_queue_room, check_servable, create_run, project_named, resolve_team
from app.settings import Settings
from app.summaries import summary_of
from gxnor_core.config import refuse_control_chars
from gxnor_core.errors import ConfigError, SweepSpecError
from gxnor_core.sweeps import (
    SweepPoint,
    SweepSpec,
    aggregate,
    expand,
    front_groups,
    parse_spec,
    swept_fields,
)


def _servable(spec: SweepSpec, point: SweepPoint, settings: Settings) -> None:
    """The server's rules on each expanded config, blamed on the sweep key that set the bad value."""
    try:
        check_servable(point.config, settings)
    except ConfigError as exc:
        field = exc.field.removeprefix("config.")
        swept = [k for k in point.overrides if k == field or k.startswith(field + ".") or field.startswith(k + ".")]
        mode = "grid" if spec.grid is not None else (f"list.{point.group}" if spec.list is not None else "random")
        where = f"{mode}.{swept[0]}" if swept else f"base.{field}"
        value = f" (value {point.overrides[swept[0]]!r})" if swept else ""
        raise SweepSpecError(where, f"{exc.message}{value}") from None


def create_sweep(session: Session, spec: SweepSpec, team_name: str | None, who: Principal,
                 settings: Settings) -> tuple[Sweep, list[int]]:
    """Validate every run before storing anything; then the sweep and its runs in one transaction."""
    # Every string the spec stores (its base, a choice never drawn …): a 422 naming it, not a database error.
    refuse_control_chars(spec.model_dump(mode="json", exclude_none=True))
    spec = parse_spec(spec)  # with its preset merged in
    points = expand(spec, max_runs=settings.max_sweep_runs)
    for point in {p.group: p for p in points}.values():  # the seed changes nothing the server checks
        _servable(spec, point, settings)
    team = resolve_team(session, who, team_name)
    mode = "grid" if spec.grid is not None else ("list" if spec.list is not None else "budget")
    check_queue_room(session, settings, team.id, [p.config for p in points], field=mode)  # a sweep counts whole
    project = project_named(session, team.id, points[0].config.project)
    rows = [{"index": p.index, "group": p.group, "overrides": p.overrides, "seed": p.seed} for p in points]
    stored = spec.model_dump(mode="json", exclude_none=True)
    sweep = Sweep(project_id=project.id, name=spec.name, spec=stored, fields=swept_fields(rows), points=rows)
    session.add(sweep)
    session.flush()
    run_ids = [create_run(session, p.config, team.id, settings.max_attempts, sweep.id, p.index).id
               for p in points]
    return sweep, run_ids


def _scoped(teams: frozenset[int]):
    return (select(Sweep, Project.name, Team.name).join(Project, Project.id == Sweep.project_id)
            .join(Team, Team.id == Project.team_id).where(Project.team_id.in_(teams)))


def get_sweep(session: Session, sweep_id: int, teams: frozenset[int]) -> tuple[Sweep, str, str]:
    row = session.execute(_scoped(teams).where(Sweep.id == sweep_id)).first()
    if row is None:
        raise HTTPException(404, f"sweep {sweep_id} not found")
    return tuple(row)


def _status(counts: dict[str, int], cancelled: bool) -> str:
    total = sum(counts.values())
    if counts["queued"] == total:
        return "queued"
    if counts["queued"] or counts["running"]:
        return "running"
    return "cancelled" if cancelled else "finished"


def _out(sweep: Sweep, project: str, team: str, counts: dict[str, int], progress: float) -> dict[str, Any]:
    return {"id": sweep.id, "name": sweep.name, "project": project, "team": team,
            "status": _status(counts, sweep.cancelled_at is not None), "fields": sweep.fields, "spec": sweep.spec,
            "counts": counts, "total": sum(counts.values()), "progress": progress, "created_at": sweep.created_at,
            "cancelled_at": sweep.cancelled_at}


def _counts_and_progress(session: Session, sweep_ids: list[int]) -> dict[int, tuple[dict[str, int], float]]:
    done = Run.epochs_done + case((Run.progress_epoch > Run.epochs_done, Run.progress_fraction), else_=0.0)
    stmt = (select(Run.sweep_id, Run.status, func.count(), func.sum(done), func.sum(Run.total_epochs))
            .where(Run.sweep_id.in_(sweep_ids)).group_by(Run.sweep_id, Run.status))
    out: dict[int, list] = {i: [dict.fromkeys(RUN_STATUSES, 0), 0.0, 0] for i in sweep_ids}
    for sweep_id, status, n, epochs_done, epochs_total in session.execute(stmt):
        entry = out[sweep_id]
        entry[0][status] = n
        # A finished run counts as complete, however far it got.
        entry[1] += float(epochs_total if status in FINISHED else (epochs_done or 0.0))
        entry[2] += int(epochs_total or 0)
    return {i: (c, (d / t if t else 0.0)) for i, (c, d, t) in out.items()}


def list_sweeps(session: Session, teams: frozenset[int], limit: int, offset: int) -> tuple[list[dict], int]:
    total = session.scalar(select(func.count()).select_from(_scoped(teams).subquery()))
    rows = session.execute(_scoped(teams).order_by(Sweep.created_at.desc(), Sweep.id.desc())
                           .limit(limit).offset(offset)).all()
    stats = _counts_and_progress(session, [s.id for s, _, _ in rows])
    return [_out(s, p, t, *stats[s.id]) for s, p, t in rows], int(total or 0)


def sweep_out(session: Session, sweep_id: int, teams: frozenset[int]) -> dict[str, Any]:
    """The sweep with its status counts and progress (SweepOut), without its runs and results."""
    sweep, project, team = get_sweep(session, sweep_id, teams)
    return _out(sweep, project, team, *_counts_and_progress(session, [sweep.id])[sweep.id])


def sweep_detail(session: Session, sweep_id: int, teams: frozenset[int]) -> dict[str, Any]:
    """The sweep, each run (with its point), one aggregate row per config and the Pareto front."""
    sweep, project, team = get_sweep(session, sweep_id, teams)
    counts, progress = _counts_and_progress(session, [sweep.id])[sweep.id]
    points = {p["index"]: p for p in sweep.points}
    cols = (Run.id, Run.name, Run.status, Run.sweep_index, Run.progress_epoch, Run.progress_fraction,
            Run.epochs_done, Run.total_epochs, Run.summary)
    runs, results = [], {}
    for r in session.execute(select(*cols).where(Run.sweep_id == sweep.id).order_by(Run.sweep_index)):
        point = points.get(r.sweep_index, {"group": None, "overrides": {}, "seed": None})
        summary = summary_of(r.summary)
        runs.append({"id": r.id, "name": r.name, "status": r.status, "index": r.sweep_index,
                     "group": point["group"], "seed": point["seed"], "overrides": point["overrides"],
                     "progress": {"epoch": r.progress_epoch, "fraction": r.progress_fraction,
                                  "epochs_done": r.epochs_done, "total_epochs": r.total_epochs},
                     "summary": summary})
        if r.status == "succeeded":
            results[r.sweep_index] = summary
    rows = aggregate(sweep.points, results)
    return {**_out(sweep, project, team, counts, progress), "runs": runs, "results": rows,
            "pareto": front_groups(rows)}


def cancel_sweep(session: Session, sweep_id: int, teams: frozenset[int]) -> None:
    """Cancel every run of the sweep that has not finished; 409 when none is left."""
    sweep, _, _ = get_sweep(session, sweep_id, teams)
    open_ids = list(session.scalars(select(Run.id).where(Run.sweep_id == sweep.id, Run.status.not_in(FINISHED))))
    if not open_ids:
        raise HTTPException(409, f"sweep {sweep_id} has no unfinished run to cancel")
    for run_id in open_ids:
        lifecycle.cancel(session, run_id)  # refused (None) for a run that finished meanwhile: nothing to do
    sweep.cancelled_at = utcnow()
    session.flush()
