"""SQLite: a covering index for the run list's sort keys

Since 0007 a run's row also carries its summary's JSON (~470 bytes), so SQLite's list, which read each
visible run's whole row to find its sort key, read about twice the pages: one page of the list sorted by
``created_at`` went 0.7 → 1.8 ms on 1 000 runs, and the whole API's read mix lost a quarter of its
throughput (docs/BENCHMARKS.md, session 5).  This index holds every column the list filters or sorts by that
lives on the run row (summary metrics are sorted through ``run_summaries``), so the sort reads index entries
only (1.1 ms).  PostgreSQL has its own covering index (``ix_runs_list``, 0004/0007).

Revision ID: 0009
Revises: 0008
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

COLUMNS = ["project_id", "created_at", "name", "status", "sweep_id", "epochs_done"]


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.create_index("ix_runs_list_sqlite", "runs", COLUMNS)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.drop_index("ix_runs_list_sqlite", table_name="runs")
