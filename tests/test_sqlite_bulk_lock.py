"""A bulk action on SQLite while another connection keeps committing — as a worker publishing progress does.

The bulk action reads, then writes in savepoints; a SAVEPOINT begins a deferred SQLite transaction, and a write
after a read whose snapshot another connection has since moved past is refused at once ("database is locked"),
without the busy timeout's wait: the runs page's bulk cancel failed with a 503 that way in a loaded CI run.  It
now takes the write lock first (app.db.sqlite_write_lock), so it waits for the other writer instead."""

import threading
import time

from sqlalchemy import select, update

from app.db import migrate, session_scope
from app.models import Run
from app.run_edits import bulk
from app.runs import create_run, default_team_id
from app.schemas import BulkIn
from app.settings import Settings
from gxnor_core import validate_config


def test_bulk_actions_wait_for_a_busy_writer_instead_of_failing(tmp_path):
    settings = Settings(data_dir=tmp_path / "data")
    settings.ensure_dirs()
    migrate(settings.db_url)
    config = validate_config({"model": {"hidden": [16]}})
    with session_scope(settings.db_url) as s:
        team = default_team_id(s)
        target, busy = (create_run(s, config, team).id for _ in range(2))
    stop = threading.Event()
    commits = []

    def publish_progress():  # another connection committing small writes back to back
        while not stop.is_set():
            with session_scope(settings.db_url) as s:
                s.execute(update(Run).where(Run.id == busy).values(progress_fraction=time.time() % 1))
            commits.append(1)

    writer = threading.Thread(target=publish_progress, daemon=True)
    writer.start()
    try:
        for i in range(60):
            with session_scope(settings.db_url) as s:
                action = "tag" if i % 2 == 0 else "untag"
                out = bulk(s, BulkIn(ids=[target], action=action, tags=["t"]), frozenset({team}), settings)
            assert out["done"] == 1, out
            time.sleep(0.002)  # let the writer commit between actions too
    finally:
        stop.set()
        writer.join()
    assert len(commits) >= 30  # the other connection really committed throughout
    with session_scope(settings.db_url) as s:
        assert s.scalar(select(Run.status).where(Run.id == target)) == "queued"
