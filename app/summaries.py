"""How run summaries are stored, read and sorted (docs/DESIGN.md, "Run summaries").

A run's summary — every run metric of the catalog (gxnor_core.metrics.RUN_METRICS), as
``gxnor_core.metrics.summarize`` builds it after each epoch — is stored twice, in the epoch's one
transaction: as one JSON object (``runs.summary``: what the API reads, passed through undecoded) and as
one row per value (``run_summaries``).  Neither has a column per metric, so a new metric needs no
migration.  The run list sorts by a metric with the cheaper of the two on each database:

- PostgreSQL: ``(runs.summary ->> name)::float``, extracted in the covering index's scan (``ix_runs_list``
  includes ``summary``), below the window count;
- SQLite: a primary-key lookup of (run, name) in ``run_summaries`` — ``json_extract`` parses the whole
  object for every run, 3× the time of the whole sort.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import ColumnElement, and_, delete, insert, literal
from sqlalchemy.orm import Session, aliased

from app.models import Run, RunSummary
from gxnor_core.metrics import RUN_METRICS, empty_summary

# The summary of a run with no epoch yet, as the API sends it: every run metric, null.
NO_SUMMARY = orjson.Fragment(orjson.dumps(empty_summary()))


def store(session: Session, run_id: int, summary: dict[str, Any]) -> None:
    """Replace the run's ``run_summaries`` rows by ``summary``'s sortable values (None: no row), in the caller's
    transaction — the same one that writes ``runs.summary``, after its fenced update."""
    session.execute(delete(RunSummary).where(RunSummary.run_id == run_id))
    rows = rows_of(run_id, summary)
    if rows:
        session.execute(insert(RunSummary), rows)


def rows_of(run_id: int, summary: dict[str, Any]) -> list[dict[str, Any]]:
    """``run_summaries`` rows of one summary."""
    return [{"run_id": run_id, "name": m.name, "value": float(summary[m.name])} for m in RUN_METRICS
            if m.sortable and isinstance(summary.get(m.name), int | float) and not isinstance(summary[m.name], bool)]


def summary_of(stored: dict | str | None) -> dict[str, Any]:
    """A stored summary (decoded, or JSON text) as a dict with every run metric of the catalog: null when missing
    (a run with no epoch, or a metric added to the catalog after the run was summarised)."""
    if isinstance(stored, str):
        stored = orjson.loads(stored)
    return {**empty_summary(), **(stored or {})}


def sort_key(name: str, postgresql: bool) -> tuple[ColumnElement, Any]:
    """(the SQL value a run list sorts by for run metric ``name``, the outer join it needs or None)."""
    if postgresql:
        return Run.summary[name].as_float(), None
    row = aliased(RunSummary, name="sort_key")
    return row.value, (row, and_(row.run_id == Run.id, row.name == literal(name)))
