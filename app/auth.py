"""Who is asking: bearer tokens → a principal (user and teams); the first admin; token issue and revocation.

Tokens are ``gx_`` + 32 random bytes (URL-safe base64).  Only their SHA-256 is stored — a token has
256 bits of entropy, so a fast hash is safe — and a short prefix to recognise it in lists.  A token
is shown once, when it is made.

Lookups are cached for ``settings.auth_cache_s`` (default 2 s) per process: a revocation through this
process's API takes effect at once, one through another process within that time.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.db import session_scope
from app.models import ApiToken, Membership, Team, User, utcnow
from app.settings import Settings

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


def issue_token(session: Session, user_id: int, name: str, token: str | None = None) -> tuple[ApiToken, str]:
    """A new token for the user; returns the row and the token itself (the only time it exists in clear)."""
    token = token or new_token()
    row = ApiToken(user_id=user_id, name=name, token_hash=hash_token(token), prefix=token[:10])
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


class _Cache:
    """token hash → (principal, expiry); small and per process."""

    def __init__(self):
        self._lock = threading.Lock()
        self._data: dict[str, tuple[Principal, float]] = {}

    def get(self, key: str) -> Principal | None:
        hit = self._data.get(key)
        if hit and hit[1] > time.monotonic():
            return hit[0]
        return None

    def put(self, key: str, principal: Principal, ttl: float) -> None:
        with self._lock:
            if len(self._data) > 10_000:
                self._data.clear()
            self._data[key] = (principal, time.monotonic() + ttl)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


CACHE = _Cache()


def lookup(settings: Settings, token: str) -> Principal | None:
    key = hash_token(token)
    hit = CACHE.get(key)
    if hit is not None:
        return hit
    with session_scope(settings.db_url) as session:
        row = session.execute(select(ApiToken, User).join(User, User.id == ApiToken.user_id)
                              .where(ApiToken.token_hash == key, ApiToken.revoked_at.is_(None))).first()
        if row is None:
            return None
        tok, user = row
        principal = principal_for(session, user, tok.id)
        # Record use at most once a minute per token (not a write per request).
        now = utcnow()
        if tok.last_used_at is None or (now - _aware(tok.last_used_at)).total_seconds() > 60:
            session.execute(update(ApiToken).where(ApiToken.id == tok.id).values(last_used_at=now))
    CACHE.put(key, principal, settings.auth_cache_s)
    return principal


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(401, message, headers={"WWW-Authenticate": "Bearer"})


LOOPBACK = {"127.0.0.1", "::1", "localhost", "testclient"}  # (the last: Starlette's TestClient)


def _authenticate(request: Request, token: str | None) -> Principal:
    settings: Settings = request.app.state.settings
    if not settings.auth:
        # The CLI refuses to listen beyond loopback with auth off; this holds however the app is served.
        if request.client is not None and request.client.host not in LOOPBACK:
            raise HTTPException(403, "auth is switched off on this server: it answers loopback clients only")
        return Principal(0, "anonymous", True, frozenset(_all_teams(settings)))
    if not token:
        raise _unauthorized("missing token: send 'Authorization: Bearer TOKEN'")
    principal = lookup(settings, token)
    if principal is None:
        raise _unauthorized("invalid or revoked token")
    request.state.token = token  # long-lived responses (SSE) check it again as they go
    return principal


def still_allowed(request: Request, team_id_of: int | None) -> bool:
    """For a long-lived response: is the token that opened it still valid, and still in that team?"""
    settings: Settings = request.app.state.settings
    token = getattr(request.state, "token", None)
    if not settings.auth or token is None:
        return True
    principal = lookup(settings, token)
    return principal is not None and (team_id_of is None or principal.sees(team_id_of))


def _all_teams(settings: Settings) -> list[int]:
    with session_scope(settings.db_url) as session:
        return list(session.scalars(select(Team.id)))


_BEARER = HTTPBearer(auto_error=False, description="An API token: `Authorization: Bearer TOKEN`.")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]


async def current_principal(request: Request, credentials: Credentials) -> Principal:
    """The caller, from ``Authorization: Bearer TOKEN``; 401 otherwise."""
    return _authenticate(request, credentials.credentials if credentials else None)


async def current_principal_or_query(
    request: Request, credentials: Credentials,
    token: Annotated[str | None, Query(max_length=200, description="The API token, for clients that cannot "
                                       "send headers (EventSource, a download link).")] = None,
) -> Principal:
    """Also accepts ``?token=`` — for the two routes a browser opens without headers (SSE, downloads)."""
    return _authenticate(request, credentials.credentials if credentials else token)


def require_admin(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    if not principal.is_admin:
        raise HTTPException(403, "only an admin may do this")
    return principal


Auth = Annotated[Principal, Depends(current_principal)]
AuthOrQuery = Annotated[Principal, Depends(current_principal_or_query)]
Admin = Annotated[Principal, Depends(require_admin)]
