"""Token expiry, short-lived download links, a run's traceback kept apart from its one-line error

- ``api_tokens.expires_at``: optional; an expired token is refused like a revoked one.
- ``download_links``: single-purpose links to one run's file (only a hash of the link is stored).
- ``runs.error_detail``: the full traceback of a failed run, shown to admins only; ``runs.error``
  keeps the one-line reason every team member sees.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("error_detail", sa.Text(), nullable=True))
    op.create_table(
        "download_links",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=True),
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_download_links_run_id", "download_links", ["run_id"])
    op.create_index("ix_download_links_expires_at", "download_links", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_download_links_expires_at", table_name="download_links")
    op.drop_index("ix_download_links_run_id", table_name="download_links")
    op.drop_table("download_links")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("error_detail")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("expires_at")
