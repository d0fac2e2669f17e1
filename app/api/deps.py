"""Typed dependencies: the settings and one database session (one transaction) per request."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from app.db import get_read_engine, session_scope
from app.settings import Settings


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


def get_session(settings: SettingsDep) -> Iterator[Session]:
    with session_scope(settings.db_url) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session, scope="function")]
"""``scope="function"``: the transaction commits when the route returns, *before* the answer is sent (FastAPI's
default for a dependency with ``yield`` ends it after the response: a client could get its 201 before the write
was committed — and read the old state at once, or keep a 201 for a commit that then failed)."""


def read_session(request: Request) -> Connection:
    """A plain connection for ``async def`` read routes, used inline: short indexed reads run on the
    event loop instead of hopping to the thread pool twice (dependency + route), which costs more than
    the reads themselves, and skip the ORM session they do not need.  Autocommit on PostgreSQL: see
    ``app.db.get_read_engine``."""
    return get_read_engine(request.app.state.settings.db_url).connect()
