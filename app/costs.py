"""A run's operation-type costs (gxnor_core.costs; docs/METHOD.md §6) from its stored layer records: what
``GET /runs/{id}/costs`` and the ``costs`` of ``GET /compare`` answer.

The epoch is the run's last recorded one unless asked — the epoch of the summary's hardware figures
(``xnor_gate_event_rate``, …) and of the latest checkpoint.  The network's shape (values of each layer's input,
padded taps) comes from the run's config; if the stored config no longer describes the recorded network (a
later schema), bytes and energy are null and the operation counts stand.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import HTTPException
from sqlalchemy import Connection, Text, and_, bindparam, cast, select

from app.models import LayerRecord, Project, Run
from gxnor_core.config import validate_config
from gxnor_core.costs import COUNTS, SCHEMES, EnergyTable, Shape, run_costs, shapes

_RUN = (select(Project.team_id, Run.epochs_done, cast(Run.config, Text), cast(Run.summary, Text))
        .join(Project, Project.id == Run.project_id).where(Run.id == bindparam("id")))
_RECORDS = (select(cast(LayerRecord.record, Text)).where(LayerRecord.run_id == bindparam("id"),
                                                         LayerRecord.epoch == bindparam("epoch"))
            .order_by(LayerRecord.id))
_LAST_RECORDS = (select(LayerRecord.run_id, cast(LayerRecord.record, Text))
                 .join(Run, and_(Run.id == LayerRecord.run_id, LayerRecord.epoch == Run.epochs_done))
                 .where(Run.id.in_(bindparam("ids", expanding=True))).order_by(LayerRecord.id))


def _shapes(config: dict, records: list[dict]) -> dict[str, Shape] | None:
    """The network's geometry from its config, or None when it does not match the recorded layers."""
    try:
        found = shapes(validate_config(config))
    except Exception:  # noqa: BLE001 - a config a later schema refuses: counts without bytes
        return None
    if any(r["layer"] not in found or found[r["layer"]].macs != r["macs"] for r in records):
        return None
    return found


def costs_of_run(conn: Connection, run_id: int, teams: frozenset[int], epoch: int | None,
                 table: EnergyTable) -> dict[str, Any]:
    """The costs of one visible run at ``epoch`` (default: its last recorded epoch); 404 when the run is not
    visible or ``epoch`` is not recorded.  A run with no epoch yet: ``epoch`` null, no layers, no schemes."""
    row = conn.execute(_RUN, {"id": run_id}).first()
    if row is None or row[0] not in teams:
        raise HTTPException(404, f"run {run_id} not found")
    _, done, config, summary = row
    best = orjson.loads(summary).get("best_epoch") if summary else None
    at = epoch if epoch is not None else (done or None)
    records = [] if at is None else [orjson.loads(r) for (r,) in conn.execute(_RECORDS, {"id": run_id, "epoch": at})]
    if epoch is not None and not records:
        raise HTTPException(404, f"run {run_id} has no layer records for epoch {epoch}")
    out = {"run_id": run_id, "epoch": at if records else None, "epochs_done": done, "best_epoch": best}
    if not records:
        return {**out, "layers": [], "schemes": [], "energy_table": table.model_dump()}
    costed = _costed(records, orjson.loads(config), table)
    if costed is None:
        raise HTTPException(409, f"run {run_id}'s layer records lack the counts the cost model needs")
    return {**out, **costed}


def _costed(records: list[dict], config: dict, table: EnergyTable) -> dict[str, Any] | None:
    """``run_costs`` of stored records, or None when they lack a field it needs (records written by an older
    probe, or by hand): such a run has no costs rather than failing the whole answer."""
    try:
        return run_costs(records, _shapes(config, records), table)
    except (KeyError, TypeError, ValueError):
        return None


def totals_of_runs(conn: Connection, runs: list[dict], table: EnergyTable) -> dict[str, Any]:
    """Run id (as text) → {epoch, totals: scheme → totals} at each run's last recorded epoch (null for a run with
    none), for ``runs`` already checked visible (each with ``id`` and its decoded ``config``)."""
    ids = [r["id"] for r in runs]
    records: dict[int, list[dict]] = {i: [] for i in ids}
    for run_id, record in conn.execute(_LAST_RECORDS, {"ids": ids}):
        records[run_id].append(orjson.loads(record))
    out: dict[str, Any] = {}
    for run in runs:
        recs = records[run["id"]]
        if not recs:
            out[str(run["id"])] = None
            continue
        costs = _costed(recs, run["config"], table)
        out[str(run["id"])] = None if costs is None else {
            "epoch": recs[0].get("epoch"), "totals": {s["name"]: s["total"] for s in costs["schemes"]}}
    return out


def cost_catalog(table: EnergyTable) -> dict[str, Any]:
    """What ``/catalog`` says of the cost model, so that a view labels its figures without declaring them: the
    schemes in order (name, label, assumption), what each count is, and this server's energy table."""
    return {"schemes": [{"name": s.name, "label": s.label, "assumption": s.assumption} for s in SCHEMES],
            "counts": COUNTS, "energy_table": table.model_dump()}
