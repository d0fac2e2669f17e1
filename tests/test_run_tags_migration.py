"""Migration 0011 on a database with runs: every existing run is unarchived and untagged, the run list's
covering index (PostgreSQL ``ix_runs_list``, SQLite ``ix_runs_list_sqlite``) gains ``archived``, and
downgrade takes the tables, the column and the index change away again — on SQLite and PostgreSQL."""

from __future__ import annotations

from contextlib import nullcontext
from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import MetaData, create_engine, insert, inspect, text

from app.db import alembic_config
from tests.pg import fresh_database


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    with fresh_database("gxnor_tags") if request.param == "postgresql" else nullcontext() as url:
        yield url or f"sqlite:///{tmp_path / 'tags.db'}"



def _list_index(conn) -> str:
    """The list index's columns as the database describes them."""
    if conn.dialect.name == "postgresql":
        return conn.execute(text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_runs_list'")).scalar()
    return ",".join(r[2] for r in conn.execute(text("PRAGMA index_info('ix_runs_list_sqlite')")))


def test_migration_0011_adds_tags_notes_and_archived_beside_existing_runs(db_url):
    cfg = alembic_config(db_url)
    command.upgrade(cfg, "0010")
    engine = create_engine(db_url)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        md = MetaData()
        md.reflect(conn, only=["runs", "projects"])
        t = md.tables
        team = conn.execute(text("SELECT id FROM teams WHERE name = 'default'")).scalar()
        project = conn.execute(insert(t["projects"]).values(team_id=team, name="p", created_at=now)
                               .returning(t["projects"].c.id)).scalar()
        conn.execute(insert(t["runs"]), [dict(
            id=rid, project_id=project, name=f"run-{rid}", config={}, created_at=now, status=status,
            cancel_requested=False, attempt=1, max_attempts=3, progress_epoch=0, progress_fraction=0.0,
            total_epochs=1, epochs_done=0) for rid, status in ((1, "succeeded"), (2, "queued"))])
        assert "archived" not in _list_index(conn)

    command.upgrade(cfg, "0011")
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")  # as app.db sets it on every connection
        assert conn.execute(text("SELECT id, archived FROM runs ORDER BY id")).all() == [(1, False), (2, False)]
        assert "archived" in _list_index(conn) and "project_id" in _list_index(conn)
        assert conn.execute(text("SELECT count(*) FROM run_tags")).scalar() == 0
        conn.execute(text("INSERT INTO run_tags (run_id, tag) VALUES (1, 'paper'), (2, 'paper'), (2, 'b')"))
        conn.execute(text("INSERT INTO run_notes (run_id, notes) VALUES (1, 'x')"))
        with pytest.raises(Exception, match="(?i)unique|duplicate"), conn.begin_nested():  # a tag once per run
            conn.execute(text("INSERT INTO run_tags (run_id, tag) VALUES (1, 'paper')"))
        indexes = {i["name"]: i["column_names"] for i in inspect(conn).get_indexes("run_tags")}
        assert indexes["ix_run_tags_tag_run"] == ["tag", "run_id"]
        conn.execute(text("DELETE FROM runs WHERE id = 2"))  # its tags go with it
        assert conn.execute(text("SELECT run_id, tag FROM run_tags")).all() == [(1, "paper")]

    command.downgrade(cfg, "0010")
    with engine.connect() as conn:
        assert "archived" not in {c["name"] for c in inspect(conn).get_columns("runs")}
        assert not {"run_tags", "run_notes"} & set(inspect(conn).get_table_names())
        assert "archived" not in _list_index(conn) and "epochs_done" in _list_index(conn)
        assert conn.execute(text("SELECT id, name FROM runs")).all() == [(1, "run-1")]
    command.upgrade(cfg, "head")
    engine.dispose()
