"""Tags, notes and an archive flag for runs, kept off the run list's hot path

A team labels, annotates and hides runs after they were made (``PATCH /runs/{id}``, ``POST /runs/bulk``).
The run list's speed rests on its covering indexes (docs/BENCHMARKS.md), so nothing long goes on the run row:

- ``run_tags`` (run_id, tag): a run's tags as rows; the primary key reads one run's tags, the index on
  (tag, run_id) answers ``?tag=``;
- ``run_notes`` (run_id, notes): free text, one row per run that has notes (read by ``GET /runs/{id}`` and
  by the list's ``q=`` search, never by the list's sort);
- ``runs.archived``: a boolean (false for every existing run), which the list filters on — so it joins both
  list indexes: ``ix_runs_list`` (PostgreSQL, INCLUDE) and ``ix_runs_list_sqlite`` are rebuilt with it, and
  the list still sorts and counts from index entries alone.

Downgrade drops the tables and the column and restores the indexes of 0009.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

LIST_INCLUDE_0007 = ["id", "name", "status", "created_at", "sweep_id", "epochs_done", "summary"]
SQLITE_COLUMNS_0009 = ["project_id", "created_at", "name", "status", "sweep_id", "epochs_done"]


def _indexes(archived: bool) -> None:
    """(Re)create the list's covering index of this database, with or without ``archived``."""
    extra = ["archived"] if archived else []
    if op.get_bind().dialect.name == "postgresql":
        op.create_index("ix_runs_list", "runs", ["project_id"], postgresql_include=LIST_INCLUDE_0007 + extra)
    else:
        op.create_index("ix_runs_list_sqlite", "runs", SQLITE_COLUMNS_0009 + extra)


def _drop_indexes() -> None:
    name = "ix_runs_list" if op.get_bind().dialect.name == "postgresql" else "ix_runs_list_sqlite"
    op.drop_index(name, table_name="runs")


def upgrade() -> None:
    _drop_indexes()
    op.add_column("runs", sa.Column("archived", sa.Boolean(), nullable=False, server_default=sa.false()))
    _indexes(archived=True)
    op.create_table(
        "run_tags",
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("tag", sa.String(64), primary_key=True),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_run_tags_tag_run", "run_tags", ["tag", "run_id"])
    op.create_table(
        "run_notes",
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("notes", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("run_notes")
    op.drop_index("ix_run_tags_tag_run", table_name="run_tags")
    op.drop_table("run_tags")
    _drop_indexes()
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("archived")
    _indexes(archived=False)
