"""A run's summary as one JSON object and as rows, instead of one column per metric

``runs.summary`` (JSONB on PostgreSQL, JSON text on SQLite) holds every run metric of the catalog
(``gxnor_core.metrics.RUN_METRICS``) by name, and ``run_summaries`` (run_id, name, value) the same
values as rows — so a new metric is a new key and new rows, no column and no migration.  The nine
summary columns they replace are moved into both (``epochs_done`` stays a column: it is progress).  A
run with no epoch recorded keeps NULL and no rows.  On PostgreSQL the covering index of the run list
(``ix_runs_list``, migration 0004) is rebuilt to include ``summary`` in place of the old columns: the
list still sorts and counts from index entries alone.  Why both forms: docs/DESIGN.md, "Run
summaries".  Downgrade moves the values back into their columns.

Values are moved by Python, not SQL: PostgreSQL's float8 → numeric cast and SQLite's json_object
keep 15 significant digits; ``json`` keeps every digit of a float.

Revision ID: 0007
Revises: 0006
"""

import json
import math

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# The summary columns as of revision 0006 (frozen here): name → type.
COLUMNS = {
    "best_val_error": sa.Float, "test_error": sa.Float, "best_test_error": sa.Float, "best_epoch": sa.Integer,
    "train_loss": sa.Float, "gate_event_rate": sa.Float, "activation_sparsity": sa.Float,
    "weight_sparsity": sa.Float, "transition_rate": sa.Float,
}
LIST_INCLUDE_0004 = ["id", "name", "status", "created_at", "sweep_id", "best_val_error", "test_error",
                     "best_test_error", "best_epoch", "epochs_done", "train_loss", "gate_event_rate",
                     "activation_sparsity", "weight_sparsity", "transition_rate"]
LIST_INCLUDE = ["id", "name", "status", "created_at", "sweep_id", "epochs_done", "summary"]
BATCH = 1000


def _postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _finite(v):
    return None if isinstance(v, float) and not math.isfinite(v) else v


def upgrade() -> None:
    pg = _postgresql()
    summary_type = JSONB(none_as_null=True) if pg else sa.JSON(none_as_null=True)
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("summary", summary_type, nullable=True))
    rows_table = op.create_table(
        "run_summaries",
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Float(), nullable=False),
        sqlite_with_rowid=False,
    )
    bind = op.get_bind()
    runs = sa.table("runs", sa.column("id", sa.Integer), sa.column("epochs_done", sa.Integer),
                    sa.column("summary", summary_type), *(sa.column(k, t) for k, t in COLUMNS.items()))
    has_any = sa.or_(runs.c.epochs_done > 0, *(runs.c[k].isnot(None) for k in COLUMNS))
    rows = bind.execute(sa.select(runs.c.id, *(runs.c[k] for k in COLUMNS)).where(has_any).order_by(runs.c.id)).all()
    update = sa.update(runs).where(runs.c.id == sa.bindparam("rid")).values(summary=sa.bindparam("s"))
    for start in range(0, len(rows), BATCH):
        chunk = [(r[0], {k: _finite(v) for k, v in zip(COLUMNS, r[1:])}) for r in rows[start:start + BATCH]]
        bind.execute(update, [{"rid": rid, "s": s} for rid, s in chunk])
        values = [{"run_id": rid, "name": k, "value": float(v)} for rid, s in chunk for k, v in s.items()
                  if v is not None]
        if values:
            bind.execute(sa.insert(rows_table), values)
    if pg:
        op.drop_index("ix_runs_list", table_name="runs")
    with op.batch_alter_table("runs") as batch:
        for k in COLUMNS:
            batch.drop_column(k)
    if pg:
        op.create_index("ix_runs_list", "runs", ["project_id"], postgresql_include=LIST_INCLUDE)


def downgrade() -> None:
    pg = _postgresql()
    summary_type = JSONB(none_as_null=True) if pg else sa.JSON(none_as_null=True)
    with op.batch_alter_table("runs") as batch:
        for k, t in COLUMNS.items():
            batch.add_column(sa.Column(k, t(), nullable=True))
    bind = op.get_bind()
    runs = sa.table("runs", sa.column("id", sa.Integer), sa.column("summary", summary_type),
                    *(sa.column(k, t) for k, t in COLUMNS.items()))
    rows = bind.execute(sa.select(runs.c.id, runs.c.summary).where(runs.c.summary.isnot(None))
                        .order_by(runs.c.id)).all()
    update = sa.update(runs).where(runs.c.id == sa.bindparam("rid")).values(
        **{k: sa.bindparam(f"v_{k}") for k in COLUMNS})
    for start in range(0, len(rows), BATCH):
        params = []
        for rid, summary in rows[start:start + BATCH]:
            s = json.loads(summary) if isinstance(summary, str) else (summary or {})
            params.append({"rid": rid, **{f"v_{k}": s.get(k) for k in COLUMNS}})
        bind.execute(update, params)
    op.drop_table("run_summaries")
    if pg:
        op.drop_index("ix_runs_list", table_name="runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("summary")
    if pg:
        op.create_index("ix_runs_list", "runs", ["project_id"], postgresql_include=LIST_INCLUDE_0004)
