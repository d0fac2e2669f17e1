"""A fresh PostgreSQL database for tests that run the app in-process on both databases."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

import pytest
from sqlalchemy import create_engine, text

from tests.services import PG_ADMIN_URL, require_postgres


def new_database_url(prefix: str = "gxnor_t") -> str:
    """The URL of a database not made yet, with a unique name, on the test server (GXNOR_TEST_PG)."""
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{prefix}_{uuid.uuid4().hex[:10]}"


@contextmanager
def fresh_database(prefix: str = "gxnor_t", url: str | None = None) -> Iterator[str]:
    """Make a new, empty database (at ``url``, or under a new name), yield its URL, drop it afterwards.
    Without a PostgreSQL server the test is skipped (failed under CI) with one line saying what to start."""
    require_postgres()
    url = url or new_database_url(prefix)
    name = url.rsplit("/", 1)[1]
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001
        admin.dispose()
        pytest.fail(f"PostgreSQL is needed at {PG_ADMIN_URL} (.ci/run starts it): {exc}")
    try:
        yield url
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def admin_app(kind: str, data_dir, admin: str, prefix: str, **settings):
    """The app in-process on ``kind`` ("sqlite": a file under ``data_dir``; "postgresql": a fresh database named
    from ``prefix``), its client calling as the admin: yields (client, settings).  ``settings``: more Settings
    fields."""
    from fastapi.testclient import TestClient

    from app.main import create_app
    from app.settings import Settings

    with fresh_database(prefix) if kind == "postgresql" else nullcontext() as url:
        s = Settings(data_dir=data_dir, database_url=url, admin_token=admin, **settings)
        with TestClient(create_app(s), headers={"Authorization": f"Bearer {admin}"}) as client:
            yield client, s


@contextmanager
def app_with_two_teams(kind: str, data_dir, admin: str, prefix: str, **settings):
    """``admin_app`` plus a user bob in team blue: yields (client, settings, bob's headers)."""
    with admin_app(kind, data_dir, admin, prefix, **settings) as (client, s):
        assert client.post("/api/v1/teams", json={"name": "blue"}).status_code == 201
        bob = client.post("/api/v1/users", json={"name": "bob", "teams": ["blue"]}).json()["token"]["token"]
        yield client, s, {"Authorization": f"Bearer {bob}"}
