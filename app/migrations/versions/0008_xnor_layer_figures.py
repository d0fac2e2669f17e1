"""XNOR-layer figures for the runs recorded before them, recounted from their layer records

The catalog (gxnor_core/metrics.py) gained three figures over the XNOR layers — weight layers with discrete
weights and discrete input — ``xnor_gate_event_rate`` (Σ events / Σ macs), ``xnor_activation_sparsity``
(Σ activation_sparsity × macs / Σ macs) and ``xnor_events_per_sample`` (Σ events), each null for a network
without such a layer; and the whole-network ``gate_event_rate`` became null for such a network (a
full-precision baseline's "events" are non-zero multiplies, not gate events).  New runs get them from
``train()``; this migration gives every stored run the same values, recounted from its stored layer records:
in each recorded epoch's metrics (``epoch_metrics.metrics``) and in its summary (``runs.summary`` and its
``run_summaries`` rows), which holds the last recorded epoch's figures.  docs/METRICS.md, docs/DESIGN.md
("Run summaries").

The rule is frozen here (not imported from the catalog), so that this revision means the same later.
Downgrade removes the three figures and gives ``gate_event_rate`` back to networks without XNOR layers.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

NEW = ("xnor_gate_event_rate", "xnor_activation_sparsity", "xnor_events_per_sample")
CHUNK = 50  # runs whose layer records are read at once


def _xnor(record: dict) -> bool:
    return record.get("weight_states") is not None and not record.get("input_is_real")


def figures(records: list[dict]) -> dict:
    """The XNOR-layer figures of one epoch's layer records, and ``gate_event_rate`` when they make it null."""
    xnor = [r for r in records if _xnor(r)]
    if not xnor:
        return {**dict.fromkeys(NEW), "gate_event_rate": None}
    macs = sum(r.get("macs") or 0 for r in xnor)
    events = sum(r.get("events") or 0 for r in xnor)
    zeros = sum((r.get("activation_sparsity") or 0) * (r.get("macs") or 0) for r in xnor)
    return {"xnor_gate_event_rate": events / macs if macs else None,
            "xnor_activation_sparsity": zeros / macs if macs else None,
            "xnor_events_per_sample": float(events)}


def whole_network_rate(records: list[dict]) -> float:
    """``gate_event_rate`` as revision 0007's catalog counted it: Σ events / Σ macs over every layer, 0 if none."""
    macs = sum(r.get("macs") or 0 for r in records)
    return sum(r.get("events") or 0 for r in records) / macs if macs else 0.0


def _tables():
    summary_type = JSONB(none_as_null=True) if op.get_bind().dialect.name == "postgresql" \
        else sa.JSON(none_as_null=True)
    runs = sa.table("runs", sa.column("id", sa.Integer), sa.column("summary", summary_type))
    epochs = sa.table("epoch_metrics", sa.column("id", sa.Integer), sa.column("run_id", sa.Integer),
                      sa.column("epoch", sa.Integer), sa.column("metrics", sa.JSON))
    layers = sa.table("layer_records", sa.column("id", sa.Integer), sa.column("run_id", sa.Integer),
                      sa.column("epoch", sa.Integer), sa.column("record", sa.JSON))
    rows = sa.table("run_summaries", sa.column("run_id", sa.Integer), sa.column("name", sa.String),
                    sa.column("value", sa.Float))
    return runs, epochs, layers, rows


def _rewrite(change) -> None:
    """For every run with layer records: ``change(metrics, records)`` → the keys to set in each recorded epoch's
    metrics, and in the summary (from the last recorded epoch); None values drop their summary rows."""
    bind = op.get_bind()
    runs, epochs, layers, rows = _tables()
    run_ids = [r for (r,) in bind.execute(sa.select(layers.c.run_id).distinct().order_by(layers.c.run_id))]
    set_metrics = sa.update(epochs).where(epochs.c.id == sa.bindparam("eid")).values(metrics=sa.bindparam("m"))
    set_summary = sa.update(runs).where(runs.c.id == sa.bindparam("rid")).values(summary=sa.bindparam("s"))
    for start in range(0, len(run_ids), CHUNK):
        chunk = run_ids[start:start + CHUNK]
        recorded: dict[int, dict[int, list[dict]]] = {}
        for run_id, epoch, record in bind.execute(sa.select(layers.c.run_id, layers.c.epoch, layers.c.record)
                                                  .where(layers.c.run_id.in_(chunk))
                                                  .order_by(layers.c.run_id, layers.c.epoch, layers.c.id)):
            recorded.setdefault(run_id, {}).setdefault(epoch, []).append(record)
        updates = []
        for eid, run_id, epoch, metrics in bind.execute(sa.select(epochs.c.id, epochs.c.run_id, epochs.c.epoch,
                                                                  epochs.c.metrics)
                                                        .where(epochs.c.run_id.in_(chunk))):
            records = recorded.get(run_id, {}).get(epoch)
            if records and isinstance(metrics, dict):
                updates.append({"eid": eid, "m": {**metrics, **change(metrics, records)}})
        if updates:
            bind.execute(set_metrics, updates)
        summaries, values, stale = [], [], []
        for run_id, summary in bind.execute(sa.select(runs.c.id, runs.c.summary).where(
                runs.c.id.in_(chunk), runs.c.summary.isnot(None))):
            if not isinstance(summary, dict) or run_id not in recorded:
                continue
            last = recorded[run_id][max(recorded[run_id])]
            new = change(summary, last)
            summaries.append({"rid": run_id, "s": {**summary, **new}})
            stale += [{"r": run_id, "n": k} for k in new]
            values += [{"run_id": run_id, "name": k, "value": float(v)} for k, v in new.items() if v is not None]
        if summaries:
            bind.execute(set_summary, summaries)
        if stale:
            bind.execute(sa.delete(rows).where(rows.c.run_id == sa.bindparam("r"), rows.c.name == sa.bindparam("n")),
                         stale)
        if values:
            bind.execute(sa.insert(rows), values)


def upgrade() -> None:
    _rewrite(lambda _stored, records: figures(records))


def downgrade() -> None:
    def back(stored: dict, records: list[dict]) -> dict:
        out = {}
        if stored.get("gate_event_rate") is None and not any(_xnor(r) for r in records):
            out["gate_event_rate"] = whole_network_rate(records)
        return out

    _rewrite(back)
    bind = op.get_bind()
    runs, epochs, _, rows = _tables()
    # the three figures leave every epoch's metrics and every summary (the JSON keys) and run_summaries (rows)
    for table, column in ((epochs, epochs.c.metrics), (runs, runs.c.summary)):
        found = bind.execute(sa.select(table.c.id, column).where(column.isnot(None))).all()
        changed = [{"k": i, "v": {k: v for k, v in value.items() if k not in NEW}} for i, value in found
                   if isinstance(value, dict) and set(NEW) & set(value)]
        if changed:
            stmt = sa.update(table).where(table.c.id == sa.bindparam("k")).values({column.name: sa.bindparam("v")})
            bind.execute(stmt, changed)
    bind.execute(sa.delete(rows).where(rows.c.name.in_(NEW)))
