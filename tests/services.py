"""The servers some tests need (PostgreSQL, Redis) and one line saying what to start when one is missing.

Outside CI such a test is *skipped* with that line (``pytest -ra`` lists it); under CI (the ``CI``
environment variable set, as it is when ``.ci/run`` runs in CI) it *fails* with the same line and no
traceback, so a CI run whose services did not start can never pass by skipping.  Each server is probed
once per test session (3 s connect timeout), so a missing one costs seconds, not a timeout per test.
"""

from __future__ import annotations

import os
import shutil
from functools import cache

import pytest

PG_ADMIN_URL = os.environ.get("GXNOR_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("GXNOR_TEST_REDIS", "redis://127.0.0.1:6379/0")

START_POSTGRES = ("start it (`pg_ctlcluster $(ls /etc/postgresql) main start`, as .ci/run does) "
                  "or point GXNOR_TEST_PG at one")
START_REDIS = ("start it (`redis-server --daemonize yes --port 6379 --save ''`, as .ci/run does) "
               "or point GXNOR_TEST_REDIS at one")


def missing(line: str) -> None:
    """Skip the test with ``line`` — or fail it with ``line`` under CI."""
    if os.environ.get("CI"):
        pytest.fail(line, pytrace=False)
    pytest.skip(line)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@cache
def _postgres_problem() -> str | None:
    from sqlalchemy import create_engine

    engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not there"
        return _first_line(exc)
    finally:
        engine.dispose()


@cache
def _redis_problem() -> str | None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
        return None
    except Exception as exc:  # noqa: BLE001
        return _first_line(exc)


def require_postgres() -> None:
    """Skip (or, under CI, fail) the calling test in one line unless the test PostgreSQL server answers."""
    problem = _postgres_problem()
    if problem is not None:
        missing(f"needs PostgreSQL at {PG_ADMIN_URL.rsplit('@', 1)[-1]} ({problem}): {START_POSTGRES}")


def require_redis() -> None:
    """Skip (or, under CI, fail) the calling test in one line unless the test Redis server answers."""
    problem = _redis_problem()
    if problem is not None:
        missing(f"needs Redis at {REDIS_URL} ({problem}): {START_REDIS}")


def require_redis_server_binary() -> None:
    """For tests that start a Redis of their own: the ``redis-server`` program must be installed."""
    if shutil.which("redis-server") is None:
        missing("needs the redis-server program to start a Redis of its own: apt-get install redis-server")
