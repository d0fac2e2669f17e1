"""teams, users, API tokens; projects belong to teams; sweeps

Existing projects move to a team named "default" (created here), so a database from before
this revision keeps every run; the first admin (created at start-up) joins that team.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Names SQLite's unnamed constraints by convention, so batch mode can drop them.
NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s", "fk": "fk_%(table_name)s_%(column_0_name)s"}


def upgrade() -> None:
    op.create_table(
        "teams",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "memberships",
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("team_id", sa.Integer(), sa.ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    teams = sa.table("teams", sa.column("id", sa.Integer), sa.column("name", sa.String),
                     sa.column("created_at", sa.DateTime(timezone=True)))
    op.execute(teams.insert().values(name="default", created_at=sa.func.now()))

    pg = op.get_bind().dialect.name == "postgresql"
    with op.batch_alter_table("projects", naming_convention=NAMING) as batch:
        batch.add_column(sa.Column("team_id", sa.Integer(), nullable=True))
    op.execute(sa.text("UPDATE projects SET team_id = (SELECT id FROM teams WHERE name = 'default')"))
    with op.batch_alter_table("projects", naming_convention=NAMING) as batch:
        batch.alter_column("team_id", existing_type=sa.Integer(), nullable=False)
        batch.drop_constraint("projects_name_key" if pg else "uq_projects_name", type_="unique")
        batch.create_unique_constraint("uq_projects_team_name", ["team_id", "name"])
        batch.create_foreign_key("fk_projects_team_id", "teams", ["team_id"], ["id"])
        batch.create_index("ix_projects_team_id", ["team_id"])

    op.create_table(
        "sweeps",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("project_id", sa.Integer(), sa.ForeignKey("projects.id"), nullable=False, index=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("points", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
    )
    with op.batch_alter_table("runs", naming_convention=NAMING) as batch:
        batch.add_column(sa.Column("sweep_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("sweep_index", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_runs_sweep_id", "sweeps", ["sweep_id"], ["id"], ondelete="SET NULL")
        batch.create_index("ix_runs_sweep_id", ["sweep_id"])


def downgrade() -> None:
    with op.batch_alter_table("runs", naming_convention=NAMING) as batch:
        batch.drop_index("ix_runs_sweep_id")
        batch.drop_constraint("fk_runs_sweep_id", type_="foreignkey")
        batch.drop_column("sweep_index")
        batch.drop_column("sweep_id")
    op.drop_table("sweeps")
    pg = op.get_bind().dialect.name == "postgresql"
    with op.batch_alter_table("projects", naming_convention=NAMING) as batch:
        batch.drop_index("ix_projects_team_id")
        batch.drop_constraint("fk_projects_team_id", type_="foreignkey")
        batch.drop_constraint("uq_projects_team_name", type_="unique")
        batch.drop_column("team_id")
        batch.create_unique_constraint("projects_name_key" if pg else "uq_projects_name", ["name"])
    op.drop_table("api_tokens")
    op.drop_table("memberships")
    op.drop_table("users")
    op.drop_table("teams")
