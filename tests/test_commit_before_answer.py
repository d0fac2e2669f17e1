"""A write is committed before its answer leaves the server: a client that got 201 and asks again at once sees
what it wrote (a session dependency ended after the response would commit later, or fail after the 201)."""

from __future__ import annotations

import time
from contextlib import nullcontext

import httpx
import pytest
from sqlalchemy import Engine, create_engine, event, text

from app.settings import Settings
from tests.pg import fresh_database
from tests.test_cli import api_server

ADMIN = "gx_commit-test-admin"


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_the_answer_to_a_write_comes_after_its_commit(kind, tmp_path):
    with fresh_database("gxnor_commit") if kind == "postgresql" else nullcontext() as url:
        settings = Settings(data_dir=tmp_path / "data", database_url=url, admin_token=ADMIN)
        slow_commits = []

        def slow_commit(conn):  # every commit in this process takes 0.4 s: the window a late commit leaves open
            slow_commits.append(1)
            time.sleep(0.4)

        event.listen(Engine, "commit", slow_commit)
        try:
            with api_server(settings) as base, httpx.Client(base_url=base, timeout=30,
                                                            headers={"Authorization": f"Bearer {ADMIN}"}) as api:
                reader = create_engine(settings.db_url)
                for name in ("blue", "green"):
                    made = api.post("/api/v1/teams", json={"name": name})
                    assert made.status_code == 201, made.text
                    with reader.connect() as c:  # straight after the answer, on a connection of our own
                        assert c.execute(text("SELECT count(*) FROM teams WHERE name = :n"), {"n": name}).scalar() == 1
                    user = api.post("/api/v1/users", json={"name": f"u-{name}", "teams": [name]})
                    assert user.status_code == 201, user.text
                reader.dispose()
        finally:
            event.remove(Engine, "commit", slow_commit)
        assert slow_commits  # the hook was on the server's engine
