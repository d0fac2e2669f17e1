"""A run's epoch metrics and layer records as files: CSV or JSON Lines (``GET /runs/{id}/metrics.csv``, …).

The rows are read in pages of ``PAGE_ROWS``, each page one short read on a connection that goes straight back
to the pool, and sent as they are encoded: a long run (thousands of epochs × layers) is never held whole in
memory, and a slow client that takes minutes to read it holds no database connection meanwhile (docs/DESIGN.md,
"Live pages hold no database connection").  Pages are keyed on (epoch, id), so rows a still-training run adds
meanwhile are appended, never repeated or skipped.

A CSV's columns are fixed before its first row, the same for every run: the identity fields, then the catalog's
metric names (gxnor_core.metrics: ``EPOCH_METRICS`` or ``LAYER_METRICS``) in catalog order, then a layer
record's lists.  Every cell is JSON text (numbers, ``true``/``false``, lists) except the ``TEXT_COLUMNS``; an
empty cell is null.  A JSON Lines file has one object per line, exactly the objects of ``GET /runs/{id}/metrics``
(without ``points``) or ``GET /runs/{id}/layers``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from typing import Any, Literal

import orjson
from fastapi import HTTPException
from sqlalchemy import Text, and_, bindparam, cast, or_, select

from app.db import get_engine
from app.models import EpochMetric, LayerRecord, Project, Run
from gxnor_core.metrics import EPOCH_METRICS, LAYER_METRICS

Table = Literal["metrics", "layers"]
Format = Literal["csv", "jsonl"]
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}
PAGE_ROWS = 500

# The columns of each table's CSV, in order.  tests/test_artifacts.py checks that they cover every field the
# trainer records, so a new field fails a test instead of going missing from the files.
COLUMNS: dict[str, tuple[str, ...]] = {
    "metrics": ("epoch", *(m.name for m in EPOCH_METRICS)),
    "layers": ("epoch", "layer", "kind", "input_is_real", *(m.name for m in LAYER_METRICS),
               "weight_states", "activation_levels", "transition_matrix"),
}
TEXT_COLUMNS = frozenset({"layer", "kind"})  # written as they are; every other cell is JSON text


_TEAM_AND_NAME = select(Project.team_id, Run.name).join(Run, Run.project_id == Project.id) \
    .where(Run.id == bindparam("id"))

# One page: the rows after (epoch, id) = (:epoch, :row), in that order.
_PAGES = {
    "metrics": select(EpochMetric.epoch, EpochMetric.id, cast(EpochMetric.metrics, Text))
    .where(EpochMetric.run_id == bindparam("id"), or_(
        EpochMetric.epoch > bindparam("epoch"), and_(EpochMetric.epoch == bindparam("epoch"),
                                                     EpochMetric.id > bindparam("row"))))
    .order_by(EpochMetric.epoch, EpochMetric.id).limit(bindparam("n")),
    "layers": select(LayerRecord.epoch, LayerRecord.id, cast(LayerRecord.record, Text))
    .where(LayerRecord.run_id == bindparam("id"), or_(
        LayerRecord.epoch > bindparam("epoch"), and_(LayerRecord.epoch == bindparam("epoch"),
                                                     LayerRecord.id > bindparam("row"))))
    .order_by(LayerRecord.epoch, LayerRecord.id).limit(bindparam("n")),
}


def visible_run_name(url: str, run_id: int, teams: frozenset[int]) -> str:
    """The run's name; 404 unless it exists and is visible (one short read)."""
    with get_engine(url).connect() as conn:
        found = conn.execute(_TEAM_AND_NAME, {"id": run_id}).first()
    if found is None or found[0] not in teams:
        raise HTTPException(404, f"run {run_id} not found")
    return found[1]


def filename(run_id: int, name: str, table: str, fmt: str) -> str:
    """``run-12-quick-metrics.csv``: the run's id and name (reduced to characters safe in any file system)."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:60]
    return f"run-{run_id}{'-' + slug if slug else ''}-{table}.{fmt}"


def _pages(url: str, run_id: int, table: str) -> Iterator[list[str]]:
    """The table's stored JSON objects, a page at a time; each page's connection is returned before it is sent."""
    epoch, row = 0, 0
    while True:
        with get_engine(url).connect() as conn:
            rows = conn.execute(_PAGES[table], {"id": run_id, "epoch": epoch, "row": row, "n": PAGE_ROWS}).all()
        if rows:
            yield [text for _, _, text in rows]
        if len(rows) < PAGE_ROWS:
            return
        epoch, row = rows[-1][0], rows[-1][1]


def _cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    return str(value) if column in TEXT_COLUMNS else orjson.dumps(value).decode()


def stream(url: str, run_id: int, table: Table, fmt: Format) -> Iterator[bytes]:
    """The file, in chunks of a page each (the CSV's header first)."""
    if fmt == "csv":
        columns = COLUMNS[table]
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(columns)
        yield buf.getvalue().encode()
    for page in _pages(url, run_id, table):
        if fmt == "jsonl":  # re-encoded: one object per line, whatever spacing the database keeps
            yield b"".join(orjson.dumps(orjson.loads(text)) + b"\n" for text in page)
            continue
        buf.seek(0)
        buf.truncate()
        for text in page:
            obj = orjson.loads(text)
            writer.writerow([_cell(c, obj.get(c)) for c in columns])
        yield buf.getvalue().encode()

