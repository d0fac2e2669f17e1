"""The engine and sessions, in one place.  SQLite gets WAL and a busy timeout."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Engine, create_engine, event, exc, text
from sqlalchemy.orm import Session, sessionmaker

IDLE_IN_TRANSACTION_MS = 10_000
PING_AFTER_IDLE_S = 1.0
POOL_TIMEOUT_S = 5.0
READ_POOL_TIMEOUT_S = 1.0
READ_RANDOM_PAGE_COST = 1.1


def _sqlite_engine(url: str, pool_size: int, max_overflow: int, pool_timeout: float) -> Engine:
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                           pool_size=pool_size, max_overflow=max_overflow, pool_timeout=pool_timeout)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record):
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    return engine


@lru_cache(maxsize=8)
def get_engine(url: str) -> Engine:
    """Sessions and writes, from worker threads (the API's sync routes, workers, the reaper).  A checkout
    that waits longer than POOL_TIMEOUT_S fails (the API answers 503) instead of queueing without end."""
    if url.startswith("sqlite"):
        return _sqlite_engine(url, 40, 10, POOL_TIMEOUT_S)  # as many as the request thread pool, and spare
    # Fail fast when the server is down (the API answers 503, workers retry) instead of hanging.
    # A process frozen (SIGSTOP, a swap storm) inside a transaction would hold its row locks for good: the
    # server ends such a session after IDLE_IN_TRANSACTION_MS, so the reaper can hand its run to another worker
    # (whose lease fencing already rejects the frozen one's later writes).
    return create_engine(url, pool_pre_ping=True, pool_size=20, max_overflow=20, pool_timeout=POOL_TIMEOUT_S,
                         connect_args=_pg_connect_args())


def _pg_connect_args() -> dict:
    return {"connect_timeout": 5, "options": f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_MS}"}


@lru_cache(maxsize=8)
def get_read_engine(url: str) -> Engine:
    """For the API's short reads.  On PostgreSQL every round trip costs both processes CPU, and a read through
    ``get_engine`` makes four for one query: a pre-ping, BEGIN, the query, ROLLBACK.  This engine is in
    autocommit (each statement its own snapshot: no BEGIN, nothing to roll back) and pings a pooled connection
    only when it has been idle for ``PING_AFTER_IDLE_S`` — a server restarted while the API was idle is still
    noticed before a request uses a dead connection; under load a dropped connection fails one request (503)
    and the pool replaces every connection older than the failure.

    The read routes use it inline, on the event loop, so it is theirs alone (SQLite gets a second engine on the
    same file): nothing else holds its connections, an inline read never waits for one, and if it ever had
    to, it gives up after READ_POOL_TIMEOUT_S (503) rather than stall every request of the process."""
    if not url.startswith("postgresql"):
        return _sqlite_engine(url, 4, 4, READ_POOL_TIMEOUT_S)
    # Planner settings for these connections only.  random_page_cost 1.1 (PostgreSQL's default 4 models spinning
    # disks): the API's reads touch a cached working set, and at 4 the planner reads the whole runs table rather
    # than look up a list page's 50 runs by key.  force_generic_plan: psycopg prepares a statement on its 5th
    # use; PostgreSQL would still plan the list statements afresh at every execution (~0.35 ms, as long as the
    # run itself) because it cannot cost LIMIT $n generically — these statements are key lookups and short
    # scans whose best plan does not depend on the values.
    args = _pg_connect_args()
    args["options"] += f" -c random_page_cost={READ_RANDOM_PAGE_COST} -c plan_cache_mode=force_generic_plan"
    engine = create_engine(url, isolation_level="AUTOCOMMIT", pool_size=10, max_overflow=30,
                           pool_timeout=READ_POOL_TIMEOUT_S,
                           pool_use_lifo=True, connect_args=args)

    @event.listens_for(engine, "checkin")
    def _stamp(_dbapi_conn, record):
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_conn, record, _proxy):
        since = record.info.get("idle_since")
        if since is not None and time.monotonic() - since > PING_AFTER_IDLE_S:
            try:
                dbapi_conn.execute(";")
            except Exception as err:  # the pool drops this connection and checks out another
                raise exc.DisconnectionError(str(err)) from err

    return engine


@lru_cache(maxsize=8)
def get_sessionmaker(url: str) -> sessionmaker[Session]:
    return sessionmaker(get_engine(url), expire_on_commit=False)


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """One transaction: commit on success, roll back on error."""
    session = get_sessionmaker(url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def sqlite_write_lock(session: Session) -> None:
    """On SQLite, take the database's write lock now (``BEGIN IMMEDIATE``), if this transaction has not begun
    yet; on PostgreSQL nothing.  A transaction that reads and then writes must: pysqlite begins one only at the
    first write, but a SAVEPOINT begins a deferred one, and if another connection commits between its first read
    and its first write, SQLite refuses the write at once ("database is locked", SQLITE_BUSY_SNAPSHOT) without
    waiting on the busy timeout — and so it does if another connection merely holds the write lock then (SQLite
    waits only to begin a write transaction, not to upgrade a reading one).  A bulk action of the runs page failed
    that way (503) while a worker published progress (docs/BENCHMARKS.md, session 16).  Taken first, the lock
    makes other writers wait on the busy timeout instead."""
    if session.get_bind().dialect.name != "sqlite":
        return
    conn = session.connection()
    if not conn.connection.dbapi_connection.in_transaction:  # no write yet in this transaction
        conn.exec_driver_sql("BEGIN IMMEDIATE")


MIGRATION_LOCK = 0x67786E6F72  # PostgreSQL advisory lock key ("gxnor")


def alembic_config(url: str):
    """The Alembic configuration of this project's migrations on the database at ``url``."""
    from pathlib import Path

    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def migrate(url: str) -> None:
    """``alembic upgrade head`` on the given database (part of every start-up).  On PostgreSQL an advisory
    lock serialises it: an API and its workers starting together must not run the same migration twice."""
    from alembic import command

    cfg = alembic_config(url)
    if not url.startswith("postgresql"):
        command.upgrade(cfg, "head")  # SQLite: the file lock serialises writers
        return
    with get_engine(url).connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK})
        conn.commit()
        try:
            command.upgrade(cfg, "head")
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK})
            conn.commit()
