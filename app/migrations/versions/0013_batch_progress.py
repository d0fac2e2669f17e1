"""Within-epoch progress points: ``batch_points``

The trainer reports, within each epoch, the mean training loss since its previous point (at most 50 points an
epoch and 2 000 a run, gxnor_core.train.batch_point_ends); the worker stores them here, with its progress and
epoch writes, so a long epoch is not a flat line on the run's loss chart.  One row per point, keyed by (run,
epoch, fraction) — ``WITHOUT ROWID`` on SQLite, so a run's points are read in key order from the table
itself; deleted with their run.  Downgrade drops the table.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batch_points",
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("epoch", sa.Integer(), primary_key=True),
        sa.Column("fraction", sa.Float(), primary_key=True),
        sa.Column("loss", sa.Float(), nullable=True),
        sa.Column("samples", sa.Integer(), nullable=False),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("batch_points")
