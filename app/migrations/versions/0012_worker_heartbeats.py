"""Workers' heartbeats in SQL: one row per live worker process (app.workers)

Every worker process writes its row when it starts, every ``GXNOR_WORKER_HEARTBEAT_S`` seconds from a
background thread, and when it takes or finishes a run; it deletes the row on a clean shutdown.  Kept in SQL
(not asked of the broker) so the workers page works with the embedded filesystem queue too.

- ``id``: ``hostname:pid``, the name the worker also writes into ``runs.worker`` when it claims a run;
- ``device``: what it trains on (``cpu`` or ``cuda:<device name>``), ``concurrency``: runs at once;
- ``heartbeat_s``: its own heartbeat period, so whether it is alive is judged by the worker's setting
  (``last_seen`` within three periods), not by the reader's;
- ``current_run_id``: the run it trains, or null — deliberately no foreign key: a heartbeat must never fail
  because the run was deleted in the meantime (the readers join it);
- ``ix_workers_last_seen``: for pruning rows dead for hours.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("hostname", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("device", sa.String(200), nullable=False),
        sa.Column("concurrency", sa.Integer(), nullable=False),
        sa.Column("heartbeat_s", sa.Float(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("current_run_id", sa.Integer(), nullable=True),
    )
    op.create_index("ix_workers_last_seen", "workers", ["last_seen"])


def downgrade() -> None:
    op.drop_index("ix_workers_last_seen", table_name="workers")
    op.drop_table("workers")
