"""The API's hot read statements, compiled once per database and run on the driver's cursor.

Why.  Each inline read (docs/DESIGN.md, "Reads on the event loop") costs the database tens of microseconds,
and SQLAlchemy's execution path around it several times that: per execution it hashes the statement's cache
key (a deep tuple, rehashed each time: ~20 µs for each of the nine dict lookups on the way), re-renders the
expanding ``IN`` of the caller's teams into the SQL string with a regex, and builds an execution context and
result metadata for the 20-odd columns.  Measured on one run read (SQLite, the statement of
``app.runs.fetch_run``): 340–480 µs through ``Connection.execute``, 250 µs through ``exec_driver_sql``, 36 µs on
the driver's cursor.

So a ``Prepared`` statement is compiled by SQLAlchemy once per dialect and per length of each expanding
parameter (a caller's teams: almost always 1 or 2), with those parameters rendered as plain placeholders, and
then executed on the connection's DBAPI cursor.  What SQLAlchemy would have done around it is kept:

- result values go through the same type processors (SQLite's text datetimes become ``datetime``, its 0/1
  booleans ``bool``), so rows are what ``Connection.execute`` returns, as plain tuples;
- bound values go through the types' bind processors;
- a driver error is raised as SQLAlchemy's ``DBAPIError`` subclass (the API's handlers turn an outage into a
  503), and a lost connection is invalidated so the pool replaces it — what ``Connection`` does itself.

Use: ``prepared.rows(conn, statement, params)`` (``first``, ``scalar``) in place of ``conn.execute(statement,
params).all()`` — for SELECTs on the read connections (``app.api.deps.read_session``) whose statement object
is built once (a module constant, or cached per shape); writes keep the ORM.  On SQLite each call is its own
read snapshot, as every statement already is on PostgreSQL's autocommit read connections.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import exc
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select


@dataclass
class _Compiled:
    sql: str
    order: tuple[str, ...] | None  # positional drivers (SQLite): the parameters' order; None: by name
    constants: dict[str, Any]  # the statement's own parameter values (processed), by name
    binds: dict[str, Any]  # the caller's parameters' names → bind processor (only those that have one)
    results: tuple[Any, ...] | None = None  # per result column: its processor or None (from the first execution:
    any_result_processor: bool = False  # a processor may depend on the driver's type code of the column)


def rows(conn: Connection | Session, statement: Select, params: dict[str, Any]) -> list[tuple]:
    """``conn.execute(statement, params).all()``, as plain tuples (see the module docstring)."""
    return _prepared(statement).run(_connection(conn), params, many=True)


def first(conn: Connection | Session, statement: Select, params: dict[str, Any]) -> tuple | None:
    """``conn.execute(statement, params).first()``, as a plain tuple."""
    return _prepared(statement).run(_connection(conn), params, many=False)


def scalar(conn: Connection | Session, statement: Select, params: dict[str, Any]) -> Any:
    """``conn.execute(statement, params).scalar()``."""
    row = first(conn, statement, params)
    return None if row is None else row[0]


def _connection(conn: Connection | Session) -> Connection:
    """A read connection as it is; an ORM session's connection, in its transaction, after a flush (as
    ``Session.execute`` autoflushes: a run the request just added is visible)."""
    if isinstance(conn, Session):
        conn.flush()
        return conn.connection()
    return conn


@lru_cache(maxsize=256)  # the statements are module constants or built once per shape (lru_cache'd themselves)
def _prepared(statement: Select) -> Prepared:
    return Prepared(statement)


class Prepared:
    """``statement`` (a SELECT whose parameters are ``bindparam``s), executed with plain DBAPI calls.  A
    parameter given a list is an expanding one (``bindparam(name, expanding=True)``)."""

    def __init__(self, statement: Select):
        self.statement = statement
        self._compiled: dict[tuple, _Compiled] = {}

    def run(self, conn: Connection, params: dict[str, Any], many: bool):
        dialect = conn.dialect
        expanding = tuple(sorted(name for name, value in params.items() if isinstance(value, list | tuple)))
        key = (dialect.name, *((name, len(params[name])) for name in expanding))
        compiled = self._compiled.get(key) or self._compile(dialect, params, key)
        flat = {**compiled.constants, **params}
        for name in expanding:
            for i, value in enumerate(flat.pop(name), 1):
                flat[f"{name}_{i}"] = value
        for name, process in compiled.binds.items():
            flat[name] = process(flat[name])
        args = flat if compiled.order is None else tuple(flat[name] for name in compiled.order)
        dbapi_conn = conn.connection.driver_connection
        cursor = None
        try:
            cursor = dbapi_conn.cursor()
            cursor.execute(compiled.sql, args)
            fetched = cursor.fetchall() if many else cursor.fetchone()
            if compiled.results is None:
                self._result_processors(compiled, dialect, cursor.description)
            cursor.close()
        except dialect.loaded_dbapi.Error as error:
            lost = dialect.is_disconnect(error, dbapi_conn, cursor)
            if lost:
                conn.invalidate(error)
            raise exc.DBAPIError.instance(compiled.sql, args, error, dialect.loaded_dbapi.Error,
                                          connection_invalidated=lost, dialect=dialect) from error
        if not compiled.any_result_processor:
            return fetched if many else (None if fetched is None else tuple(fetched))
        if not many:
            return None if fetched is None else _processed(fetched, compiled.results)
        return [_processed(row, compiled.results) for row in fetched]

    def _compile(self, dialect: Dialect, params: dict[str, Any], key: tuple) -> _Compiled:
        # render_postcompile writes each expanding parameter as NAME_1 … NAME_n placeholders for the lengths of
        # these values; every other parameter stays a placeholder (the values only let it compile).
        compiled = self.statement.params(**params).compile(dialect=dialect,
                                                           compile_kwargs={"render_postcompile": True})
        binds, constants = {}, {}
        for bind, name in compiled.bind_names.items():
            process = dialect.type_descriptor(bind.type).bind_processor(dialect)
            if bind.key in params:  # the caller's
                if process is not None:
                    binds.update({n: process for n in _expanded(name, params[bind.key])})
            else:  # a value of the statement itself (a literal SQLAlchemy made a parameter, e.g. a JSON path)
                value = bind.effective_value
                constants[name] = process(value) if process is not None and value is not None else value
        entry = _Compiled(sql=str(compiled), order=tuple(compiled.positiontup) if compiled.positional else None,
                          constants=constants, binds=binds)
        self._compiled[key] = entry
        return entry

    def _result_processors(self, compiled: _Compiled, dialect: Dialect, description) -> None:
        compiled.results = tuple(dialect.type_descriptor(column.type).result_processor(dialect, d[1])
                                 for column, d in zip(self.statement.selected_columns, description, strict=True))
        compiled.any_result_processor = any(p is not None for p in compiled.results)


def _expanded(name: str, value: Any) -> list[str]:
    return [f"{name}_{i}" for i in range(1, len(value) + 1)] if isinstance(value, list | tuple) else [name]


def _processed(row, processors) -> tuple:
    return tuple(value if process is None or value is None else process(value)
                 for value, process in zip(row, processors, strict=True))
