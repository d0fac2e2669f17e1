"""SQL schema: teams own projects; projects own runs and sweeps; runs own epoch metrics, layer records
and artifacts.  Users belong to teams and authenticate with API tokens (stored as SHA-256 hashes).

Every data query is scoped through ``projects.team_id``: a token sees only its user's teams.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

RUN_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
FINISHED = ("succeeded", "failed", "cancelled")

# A run's summary: one JSON object, every run metric of gxnor_core.metrics by name (written with each epoch;
# NULL until the first), and the same values as rows of run_summaries (RunSummary).  A new metric is a new key
# and new rows: no column, no migration.  JSONB on PostgreSQL, where the run list sorts by a key of it
# (app.summaries; docs/DESIGN.md, "Run summaries").
SummaryJSON = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Team(Base):
    __tablename__ = "teams"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Membership(Base):
    __tablename__ = "memberships"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True)


class ApiToken(Base):
    """A bearer token: only its SHA-256 is stored; ``prefix`` (its first characters) identifies it in lists."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # None: never expires


class DownloadLink(Base):
    """A short-lived, single-purpose link to one run's file: only its SHA-256 is stored (like a token), it
    names the run, the file kind and the user who asked for it, and it stops working at ``expires_at``."""

    __tablename__ = "download_links"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class Project(Base):
    __tablename__ = "projects"
    __table_args__ = (UniqueConstraint("team_id", "name", name="uq_projects_team_name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    runs: Mapped[list[Run]] = relationship(back_populates="project")


class Sweep(Base):
    """A base config expanded into runs (``points``: per run index its group, overrides and seed)."""

    __tablename__ = "sweeps"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    spec: Mapped[dict] = mapped_column(JSON)
    fields: Mapped[list] = mapped_column(JSON)
    points: Mapped[list] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_status_lease", "status", "lease_expires_at"),
        # PostgreSQL only (migrations 0004, 0007): the run list sorts and counts from this index alone.
        Index("ix_runs_list", "project_id", postgresql_include=[
            "id", "name", "status", "created_at", "sweep_id", "epochs_done", "summary", "archived"]),
        # SQLite only (migrations 0009, 0011): the list's sort keys from the index, not from the ~1 KB rows.
        Index("ix_runs_list_sqlite", "project_id", "created_at", "name", "status", "sweep_id", "epochs_done",
              "archived"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    config: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)  # one line, shown to the team
    error_detail: Mapped[str | None] = mapped_column(Text)  # the traceback: admins only
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    # The lease: the worker that claimed the run holds it until lease_expires_at (unix seconds) and
    # renews it while training; ``attempt`` is the fencing token every write of that worker carries.
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3, server_default="3")
    worker: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[float | None] = mapped_column(Float)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Progress: epochs finished and fraction of the current epoch (updated every few seconds).
    progress_epoch: Mapped[int] = mapped_column(Integer, default=0)
    progress_fraction: Mapped[float] = mapped_column(Float, default=0.0)
    total_epochs: Mapped[int] = mapped_column(Integer)
    info: Mapped[dict | None] = mapped_column(JSON)
    sweep_id: Mapped[int | None] = mapped_column(ForeignKey("sweeps.id", ondelete="SET NULL"), index=True)
    sweep_index: Mapped[int | None] = mapped_column(Integer)
    epochs_done: Mapped[int] = mapped_column(Integer, default=0)
    summary: Mapped[dict | None] = mapped_column(SummaryJSON)  # see SummaryJSON
    # Hidden from the run list unless asked for (migration 0011); in both list indexes, as the list filters on it.
    archived: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    project: Mapped[Project] = relationship(back_populates="runs", lazy="joined")
    epochs: Mapped[list[EpochMetric]] = relationship(
        back_populates="run", cascade="all, delete-orphan", passive_deletes=True
    )


class EpochMetric(Base):
    __tablename__ = "epoch_metrics"
    __table_args__ = (UniqueConstraint("run_id", "epoch", name="uq_epoch_metrics_run_epoch"),)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    epoch: Mapped[int] = mapped_column(Integer)
    metrics: Mapped[dict] = mapped_column(JSON)
    run: Mapped[Run] = relationship(back_populates="epochs")


class RunSummary(Base):
    """One value of a run's summary as a row (migration 0007): a generic table, so a new run metric needs no
    column.  SQLite sorts the run list through it (one primary-key lookup per run; extracting from the JSON
    text costs 3× the whole sort), PostgreSQL by ``runs.summary`` itself.  Written with ``runs.summary`` in each
    epoch's transaction (app.summaries.store); a metric without a value has no row."""

    __tablename__ = "run_summaries"
    __table_args__ = {"sqlite_with_rowid": False}
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[float] = mapped_column(Float)


class RunTag(Base):
    """One tag of a run (migration 0011): rows, not a column, so the run row stays narrow for the list; the
    primary key reads a page's tags, ``ix_run_tags_tag_run`` answers ``GET /runs?tag=``."""

    __tablename__ = "run_tags"
    __table_args__ = (Index("ix_run_tags_tag_run", "tag", "run_id"), {"sqlite_with_rowid": False})
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(64), primary_key=True)


class RunNote(Base):
    """A run's notes (migration 0011), free text a team writes after the fact: in a table of its own, so the
    list never reads it (only ``GET /runs/{id}`` and the list's ``q=`` search do).  No row: no notes."""

    __tablename__ = "run_notes"
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    notes: Mapped[str] = mapped_column(Text)


class LayerRecord(Base):
    __tablename__ = "layer_records"
    __table_args__ = (
        UniqueConstraint("run_id", "epoch", "layer", name="uq_layer_records_run_epoch_layer"),
        Index("ix_layer_records_run_layer", "run_id", "layer"),
    )
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    epoch: Mapped[int] = mapped_column(Integer)
    layer: Mapped[str] = mapped_column(String(50))
    record: Mapped[dict] = mapped_column(JSON)


class BatchPoint(Base):
    """A within-epoch training-loss point (migration 0013; docs/METRICS.md, "Batch points"): the mean loss over
    the batches since the epoch's previous point, which end at ``fraction`` of epoch ``epoch``.  At most
    ``gxnor_core.train.BATCH_POINTS_PER_EPOCH`` per epoch and ``BATCH_POINTS_PER_RUN`` per run; written with
    the worker's progress and epoch transactions (worker.runner).  ``loss`` is NULL when it was not finite."""

    __tablename__ = "batch_points"
    __table_args__ = ({"sqlite_with_rowid": False},)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    epoch: Mapped[int] = mapped_column(Integer, primary_key=True)
    fraction: Mapped[float] = mapped_column(Float, primary_key=True)
    loss: Mapped[float | None] = mapped_column(Float)
    samples: Mapped[int] = mapped_column(Integer)


class Artifact(Base):
    __tablename__ = "artifacts"
    __table_args__ = (UniqueConstraint("run_id", "kind", "epoch", name="uq_artifacts_run_kind_epoch"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    epoch: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(String(500))  # relative to the artifact directory
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class IdempotencyKey(Base):
    """The first answer to a run or sweep creation sent with an ``Idempotency-Key`` header, replayed to a
    retry with the same key (app.idempotency).  One row per (principal, key): the unique constraint is what
    lets two parallel requests with one key create one run.  ``principal_id`` is the user's id (0 with auth
    off), deliberately no foreign key; rows expire at ``expires_at``."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("principal_id", "key", name="uq_idempotency_keys_principal_key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    principal_id: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))  # SHA-256 of the route and the request body
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[str] = mapped_column(Text)  # the response body, as sent
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class Worker(Base):
    """A worker process's heartbeat (migration 0012; app.workers): written by the worker at start, every
    ``heartbeat_s`` seconds and when it takes or finishes a run, deleted on a clean shutdown.  Alive while
    ``last_seen`` is within three of its own heartbeat periods.  ``current_run_id`` has no foreign key on
    purpose: a beat must not fail because its run was deleted meanwhile."""

    __tablename__ = "workers"
    id: Mapped[str] = mapped_column(String(255), primary_key=True)  # hostname:pid, as in runs.worker
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    device: Mapped[str] = mapped_column(String(200))  # cpu, or cuda:<device name>
    concurrency: Mapped[int] = mapped_column(Integer)
    heartbeat_s: Mapped[float] = mapped_column(Float)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    current_run_id: Mapped[int | None] = mapped_column(Integer)
