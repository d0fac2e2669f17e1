"""Who is asking: bearer tokens → a principal (user and teams); the first admin; token issue and revocation.

Tokens are ``gx_`` + 32 random bytes (URL-safe base64).  Only their SHA-256 is stored — a token has
256 bits of entropy, so a fast hash is safe — and a short prefix to recognise it in lists.  A token
is shown once, when it is made.

Lookups are cached for ``settings.auth_cache_s`` (default 2 s) per process: a revocation through this
process's API takes effect at once, one through another process within that time.  A token may carry an
expiry (``expires_at``): past it, it is refused like a revoked one, and no cached lookup outlives it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from app.db import get_engine, get_read_engine, session_scope
from app.models import ApiToken, Membership, Team, User, utcnow
from app.settings import Settings

log = logging.getLogger("gxnor.auth")
TOKEN_PREFIX = "gx_"
DEFAULT_TEAM = "default"
ADMIN_USER = "admin"


@dataclass(frozen=True)
class Principal:
    user_id: int
    user_name: str
    is_admin: bool
    team_ids: frozenset[int]
    token_id: int | None = None

    def sees(self, team_id: int) -> bool:
        return team_id in self.team_ids


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def issue_token(session: Session, user_id: int, name: str, token: str | None = None,
                expires_in_days: int | None = None) -> tuple[ApiToken, str]:
    """A new token for the user; returns the row and the token itself (the only time it exists in clear).
    With ``expires_in_days`` it stops working that many days from now; without, it works until revoked."""
    token = token or new_token()
    expires_at = _now() + timedelta(days=expires_in_days) if expires_in_days is not None else None
    row = ApiToken(user_id=user_id, name=name, token_hash=hash_token(token), prefix=token[:10],
                   expires_at=expires_at)
    session.add(row)
    session.flush()
    return row, token


def ensure_admin(session: Session, admin_token: str | None) -> str | None:
    """On first start (no users yet): the ``default`` team, a user ``admin`` in it and a token for it —
    ``admin_token`` when given (GXNOR_ADMIN_TOKEN), else a new one, which is returned to be shown once."""
    if session.scalar(select(func.count()).select_from(User)):
        return None
    team = session.scalars(select(Team).where(Team.name == DEFAULT_TEAM)).first()
    if team is None:
        team = Team(name=DEFAULT_TEAM)
        session.add(team)
    admin = User(name=ADMIN_USER, is_admin=True)
    session.add(admin)
    session.flush()
    session.add(Membership(user_id=admin.id, team_id=team.id))
    _, token = issue_token(session, admin.id, "first start", admin_token)
    return None if admin_token else token


def principal_for(session: Session, user: User, token_id: int | None = None) -> Principal:
    teams = frozenset(session.scalars(select(Membership.team_id).where(Membership.user_id == user.id)))
    return Principal(user.id, user.name, user.is_admin, teams, token_id)


# The wall clock a token's ``expires_at`` is compared with (a module attribute, so tests can move time on).
_wall_clock = time.time


def _now() -> datetime:
    return datetime.fromtimestamp(_wall_clock(), UTC)


class _Cache:
    """token hash → (principal, cache deadline (monotonic), the token's own expiry (unix time, or None));
    small and per process.  An entry never outlives its token's expiry."""

    def __init__(self):
        self._lock = threading.Lock()
        self._data: dict[str, tuple[Principal, float, float | None]] = {}

    def get(self, key: str) -> Principal | None:
        hit = self._data.get(key)
        if hit and hit[1] > time.monotonic() and (hit[2] is None or hit[2] > _wall_clock()):
            return hit[0]
        return None

    def put(self, key: str, principal: Principal, ttl: float, expires_at: datetime | None = None) -> None:
        with self._lock:
            if len(self._data) > 10_000:
                self._data.clear()
            self._data[key] = (principal, time.monotonic() + ttl,
                               None if expires_at is None else _aware(expires_at).timestamp())

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


CACHE = _Cache()


_TOKEN_ROW = (select(ApiToken.id, ApiToken.expires_at, ApiToken.last_used_at, User.id, User.name, User.is_admin)
              .join(User, User.id == ApiToken.user_id)
              .where(ApiToken.token_hash == bindparam("key"), ApiToken.revoked_at.is_(None)))
_TEAMS_OF = select(Membership.team_id).where(Membership.user_id == bindparam("user"))


def _read_principal(conn, key: str, ttl: float) -> tuple[Principal | None, int | None]:
    """(the principal of a live token, the token's id if its ``last_used_at`` is due) — reads only; caches."""
    row = conn.execute(_TOKEN_ROW, {"key": key}).first()
    if row is None:
        return None, None
    token_id, expires_at, last_used, user_id, name, is_admin = row
    if expires_at is not None and _aware(expires_at) <= _now():
        return None, None  # expired: refused like a revoked token
    teams = frozenset(conn.scalars(_TEAMS_OF, {"user": user_id}))
    principal = Principal(user_id, name, is_admin, teams, token_id)
    CACHE.put(key, principal, ttl, expires_at)
    # Record use at most once a minute per token (not a write per request).
    due = last_used is None or (utcnow() - _aware(last_used)).total_seconds() > 60
    return principal, token_id if due else None


def _touch(db_url: str, token_id: int) -> None:
    with session_scope(db_url) as session:
        session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=utcnow()))


def _cached_or_read(engine, settings: Settings, token: str) -> tuple[Principal | None, int | None]:
    key = hash_token(token)
    hit = CACHE.get(key)
    if hit is not None:
        return hit, None
    with engine.connect() as conn:
        return _read_principal(conn, key, settings.auth_cache_s)


def lookup(settings: Settings, token: str) -> Principal | None:
    """The token's principal (cached for ``auth_cache_s``), or None: unknown, revoked or expired."""
    principal, touch = _cached_or_read(get_engine(settings.db_url), settings, token)
    if touch is not None:
        _touch(settings.db_url, touch)
    return principal


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(401, message, headers={"WWW-Authenticate": "Bearer"})


LOOPBACK = {"127.0.0.1", "::1", "localhost", "testclient"}  # (the last: Starlette's TestClient)


async def _principal(settings: Settings, token: str) -> Principal | None:
    """``lookup`` for the event loop.  A cache hit answers at once; a miss reads inline on the API's read
    connections (which nothing else holds: no waiting for a pool) — inline, so the cache is filled before any
    other request runs and 50 requests arriving together make one lookup, not 50 — and the once-a-minute
    ``last_used_at`` write goes to a worker thread, not awaited (a locked SQLite file never stalls a request)."""
    principal, touch = _cached_or_read(get_read_engine(settings.db_url), settings, token)
    if touch is not None:
        task = asyncio.get_running_loop().run_in_executor(None, _touch, settings.db_url, touch)
        task.add_done_callback(_log_failure)
    return principal


def _log_failure(future) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.warning("could not record a token's last use: %s", future.exception())


async def _authenticate(request: Request, token: str | None) -> Principal:
    settings: Settings = request.app.state.settings
    if not settings.auth:
        # The CLI refuses to listen beyond loopback with auth off; this holds however the app is served.
        if request.client is not None and request.client.host not in LOOPBACK:
            raise HTTPException(403, "auth is switched off on this server: it answers loopback clients only")
        with get_read_engine(settings.db_url).connect() as conn:
            teams = frozenset(conn.scalars(_ALL_TEAMS))
        return Principal(0, "anonymous", True, teams)
    if not token:
        raise _unauthorized("missing token: send 'Authorization: Bearer TOKEN'")
    principal = await _principal(settings, token)
    if principal is None:
        raise _unauthorized("invalid, revoked or expired token")
    request.state.token = token  # long-lived responses (SSE) check it again as they go
    return principal


async def still_allowed(request: Request, team_id_of: int | None) -> bool:
    """For a long-lived response: is the token that opened it still valid, and still in that team?"""
    settings: Settings = request.app.state.settings
    token = getattr(request.state, "token", None)
    if not settings.auth or token is None:
        return True
    principal = await _principal(settings, token)
    return principal is not None and (team_id_of is None or principal.sees(team_id_of))


_ALL_TEAMS = select(Team.id)


_BEARER = HTTPBearer(auto_error=False, description="An API token: `Authorization: Bearer TOKEN`.")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]


async def current_principal(request: Request, credentials: Credentials) -> Principal:
    """The caller, from ``Authorization: Bearer TOKEN``; 401 otherwise."""
    return await _authenticate(request, credentials.credentials if credentials else None)


async def current_principal_or_query(
    request: Request, credentials: Credentials,
    token: Annotated[str | None, Query(max_length=200, description="The API token, for clients that cannot "
                                       "send headers (EventSource).")] = None,
) -> Principal:
    """Also accepts ``?token=`` — for the one route a browser opens without headers (SSE: EventSource)."""
    return await _authenticate(request, credentials.credentials if credentials else token)


def require_admin(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    if not principal.is_admin:
        raise HTTPException(403, "only an admin may do this")
    return principal


Auth = Annotated[Principal, Depends(current_principal)]
AuthOrQuery = Annotated[Principal, Depends(current_principal_or_query)]
Admin = Annotated[Principal, Depends(require_admin)]
