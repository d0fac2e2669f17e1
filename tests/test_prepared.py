"""app.prepared.Prepared returns what SQLAlchemy's ``Connection.execute`` returns (types processed: SQLite's
text datetimes and 0/1 booleans), for the API's hot read statements with one and several teams, on SQLite and
PostgreSQL; a driver error is SQLAlchemy's DBAPIError, and a lost PostgreSQL connection is invalidated."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from sqlalchemy import bindparam, create_engine, exc, select, text

from app import prepared
from app.db import get_read_engine
from app.models import Run
from app.runs import _ONE, _list_statements
from bench.api_load import seed
from tests.pg import fresh_database

NOW = datetime(2026, 11, 26, 12, 0, 0, 250_000, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'prepared.db'}"
        seed(url, 12, 3, random.Random(3), NOW)
        yield url
    else:
        with fresh_database("gxnor_prep") as url:
            seed(url, 12, 3, random.Random(3), NOW)
            yield url


def _cases():
    page, count = _list_statements(False, True, False, False, True, "created_at", "desc", False)
    counted, _ = _list_statements(False, False, False, False, False, "val_error", "asc", True)
    return [
        (_ONE, {"id": 3}),
        (page, {"project": "mnist", "pattern": "%s%", "limit": 5, "offset": 1}),
        (count, {"project": "mnist", "pattern": "%s%", "limit": 5, "offset": 1}),
        (counted, {"limit": 7, "offset": 0}),
    ]


@pytest.mark.parametrize("teams", [[1], [1, 99], [99]])
def test_rows_equal_sqlalchemys(url, teams):
    engine = get_read_engine(url)
    try:
        with engine.connect() as conn:
            for statement, params in _cases():
                full = {**params, "teams": teams}
                expected = [tuple(r) for r in conn.execute(statement, full)]
                assert prepared.rows(conn, statement, full) == expected
                assert prepared.first(conn, statement, full) == (expected[0] if expected else None)
                if teams == [1]:
                    assert expected, "the case reads nothing: it would prove nothing"
        if teams == [1]:
            row = prepared.first(engine.connect(), _ONE, {"id": 3, "teams": [1]})
            created = row[list(_ONE.selected_columns.keys()).index("created_at")]
            assert isinstance(created, datetime)  # SQLite's text processed as SQLAlchemy does
    finally:
        engine.dispose()


def test_booleans_and_bound_values_are_processed(url):
    engine = get_read_engine(url)
    try:
        with engine.connect() as conn:
            statement = select(Run.id, Run.archived, Run.cancel_requested).where(
                Run.archived == bindparam("archived")).order_by(Run.id)
            got = prepared.rows(conn, statement, {"archived": False})
            assert got and all(a is False and type(c) is bool for _, a, c in got)
            assert got == [tuple(r) for r in conn.execute(statement, {"archived": False})]
    finally:
        engine.dispose()


def test_a_driver_error_is_sqlalchemys():
    engine = create_engine("sqlite://")
    with engine.connect() as conn, pytest.raises(exc.OperationalError):
        prepared.rows(conn, select(text("x")).select_from(text("no_such_table")), {})


def test_a_lost_postgresql_connection_is_invalidated(url):
    if not url.startswith("postgresql"):
        pytest.skip("a disconnect is PostgreSQL's case")
    engine = get_read_engine(url)
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
            with admin.connect() as a:
                a.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
            with pytest.raises(exc.DBAPIError) as raised:
                prepared.rows(conn, _ONE, {"id": 1, "teams": [1]})
            assert raised.value.connection_invalidated
        with engine.connect() as conn:  # the pool gave a new connection
            assert prepared.first(conn, _ONE, {"id": 1, "teams": [1]}) is not None
    finally:
        admin.dispose()
        engine.dispose()
