"""Users, teams and API tokens.  Anyone signed in sees themselves and manages their own tokens;
admins create users and teams and set memberships."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.api.deps import SessionDep
from app.auth import CACHE, Admin, Auth, issue_token
from app.models import ApiToken, Membership, Team, User, utcnow
from app.schemas import ErrorOut
from gxnor_core.config import CleanText
from gxnor_core.errors import FieldError

router = APIRouter(prefix="/api/v1", tags=["access"], responses={
    400: {"model": ErrorOut, "description": "The body is not JSON"},
    401: {"model": ErrorOut, "description": "No token, or an invalid, revoked or expired one"},
    404: {"model": ErrorOut, "description": "No such user or token (or not yours)"},
    409: {"model": ErrorOut, "description": "The name is taken, or the request does not apply"},
    413: {"model": ErrorOut, "description": "The body is larger than the server accepts"},
    403: {"model": ErrorOut, "description": "Only an admin may do this"},
})

Name = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$")]
ObjectId = Annotated[int, Path(ge=1, le=2_147_483_647)]
# Stored times are UTC; SQLite hands them back naive.
UTCTime = Annotated[datetime, AfterValidator(lambda d: d if d.tzinfo else d.replace(tzinfo=UTC))]


class TeamOut(BaseModel):
    id: int
    name: str


class UserOut(BaseModel):
    id: int
    name: str
    is_admin: bool
    teams: list[TeamOut]


class MeOut(BaseModel):
    user: UserOut
    teams: list[TeamOut]


class TokenOut(BaseModel):
    id: int
    name: str
    user: str
    prefix: str = Field(description="The token's first characters, to recognise it.")
    created_at: UTCTime
    last_used_at: UTCTime | None
    revoked_at: UTCTime | None
    expires_at: UTCTime | None = Field(None, description="When it stops working (null: never).")


class NewToken(TokenOut):
    token: str = Field(description="The token itself — shown only now; only its hash is stored.")


class TeamCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: Name


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: Name
    teams: list[Name] = Field(default_factory=list, max_length=100)
    is_admin: bool = False


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    teams: list[Name] | None = Field(None, max_length=100, description="Replaces the user's teams.")
    is_admin: bool | None = None


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: CleanText = Field("api", min_length=1, max_length=100)
    user: Name | None = Field(None, description="Admins only: make the token for this user.")
    expires_in_days: int | None = Field(None, ge=1, le=3650, description="The token stops working this many "
                                        "days from now (default: never; revoke it to end it sooner).")


class UserWithToken(BaseModel):
    user: UserOut
    token: NewToken


def _teams_of(session: Session, user_id: int) -> list[TeamOut]:
    rows = session.execute(select(Team.id, Team.name).join(Membership, Membership.team_id == Team.id)
                           .where(Membership.user_id == user_id).order_by(Team.name))
    return [TeamOut(id=i, name=n) for i, n in rows]


def _user_out(session: Session, user: User) -> UserOut:
    return UserOut(id=user.id, name=user.name, is_admin=user.is_admin, teams=_teams_of(session, user.id))


def _token_out(row: ApiToken, user: str) -> dict:
    return {"id": row.id, "name": row.name, "user": user, "prefix": row.prefix, "created_at": row.created_at,
            "last_used_at": row.last_used_at, "revoked_at": row.revoked_at, "expires_at": row.expires_at}


def _teams_named(session: Session, names: list[str]) -> list[Team]:
    found = {t.name: t for t in session.scalars(select(Team).where(Team.name.in_(names)))}
    missing = [n for n in names if n not in found]
    if missing:
        raise FieldError("teams", f"no team named {missing[0]!r}")
    return [found[n] for n in dict.fromkeys(names)]


def _user_named(session: Session, name: str) -> User:
    user = session.scalars(select(User).where(User.name == name)).first()
    if user is None:
        raise HTTPException(404, f"user {name!r} not found")
    return user


@router.get("/me", response_model=MeOut)
def me(session: SessionDep, who: Auth) -> MeOut:
    """The signed-in user and their teams."""
    user = session.get(User, who.user_id)
    if user is None:  # auth switched off: an anonymous admin who sees every team
        teams = [TeamOut(id=t.id, name=t.name) for t in session.scalars(select(Team).order_by(Team.name))]
        return MeOut(user=UserOut(id=0, name=who.user_name, is_admin=True, teams=teams), teams=teams)
    out = _user_out(session, user)
    return MeOut(user=out, teams=out.teams)


@router.get("/teams", response_model=list[TeamOut])
def list_teams(session: SessionDep, who: Auth) -> list[TeamOut]:
    """Your teams (an admin sees every team)."""
    stmt = select(Team).order_by(Team.name)
    if not who.is_admin:
        stmt = stmt.where(Team.id.in_(who.team_ids))
    return [TeamOut(id=t.id, name=t.name) for t in session.scalars(stmt)]


@router.post("/teams", status_code=201, response_model=TeamOut)
def create_team(body: TeamCreate, session: SessionDep, who: Admin) -> TeamOut:
    """A new, empty team (admin)."""
    team = Team(name=body.name)
    session.add(team)
    try:
        session.flush()
    except IntegrityError:
        raise HTTPException(409, f"a team named {body.name!r} exists") from None
    return TeamOut(id=team.id, name=team.name)


@router.get("/users", response_model=list[UserOut])
def list_users(session: SessionDep, who: Admin) -> list[UserOut]:
    """Every user and their teams (admin)."""
    return [_user_out(session, u) for u in session.scalars(select(User).order_by(User.name))]


@router.post("/users", status_code=201, response_model=UserWithToken)
def create_user(body: UserCreate, session: SessionDep, who: Admin) -> UserWithToken:
    """A new user in the given teams, with a first token (shown once) (admin)."""
    teams = _teams_named(session, body.teams)
    user = User(name=body.name, is_admin=body.is_admin)
    session.add(user)
    try:
        session.flush()
    except IntegrityError:
        raise HTTPException(409, f"a user named {body.name!r} exists") from None
    session.add_all([Membership(user_id=user.id, team_id=t.id) for t in teams])
    row, token = issue_token(session, user.id, "first token")
    return UserWithToken(user=_user_out(session, user), token=NewToken(**_token_out(row, user.name), token=token))


def _other_admins(session: Session, user_id: int) -> int:
    """How many admins there are besides ``user_id``, with the admins locked until the transaction ends: two
    admins demoting each other at the same time are then served one after the other, and the second sees the
    first's change.  PostgreSQL: SELECT … FOR UPDATE of the admin rows (a waiting transaction re-reads them);
    SQLite: the database's write lock, taken by a no-op write before the count (one writer at a time)."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(update(User).where(User.is_admin).values(is_admin=True)
                        .execution_options(synchronize_session=False))
    admins = session.scalars(select(User.id).where(User.is_admin).with_for_update()).all()
    return sum(1 for i in admins if i != user_id)


@router.patch("/users/{user_id}", response_model=UserOut)
def update_user(user_id: ObjectId, body: UserUpdate, session: SessionDep, who: Admin) -> UserOut:
    """Replace a user's teams and/or admin flag (admin).  Taking the last admin's rights is refused (409)."""
    # Lock the admins first, so that the user read next is already the one this decision is about.
    other_admins = _other_admins(session, user_id) if body.is_admin is False else None
    user = session.get(User, user_id)
    if user is None:
        raise HTTPException(404, f"user {user_id} not found")
    if other_admins == 0 and user.is_admin:
        raise HTTPException(409, f"refused: {user.name!r} is the only admin, and this would leave no admin; make "
                                 "another user admin first (on the server, `gxnor token --user NAME --admin` "
                                 "makes a user admin)")
    if body.teams is not None:
        teams = _teams_named(session, body.teams)
        session.execute(delete(Membership).where(Membership.user_id == user.id))
        session.add_all([Membership(user_id=user.id, team_id=t.id) for t in teams])
    if body.is_admin is not None:
        user.is_admin = body.is_admin
    session.flush()
    CACHE.clear()  # memberships and rights changed
    return _user_out(session, user)


@router.get("/tokens", response_model=list[TokenOut])
def list_tokens(session: SessionDep, who: Auth) -> list[dict]:
    """Your tokens (an admin sees everyone's); never the tokens themselves."""
    stmt = select(ApiToken, User.name).join(User, User.id == ApiToken.user_id).order_by(ApiToken.id)
    if not who.is_admin:
        stmt = stmt.where(ApiToken.user_id == who.user_id)
    return [_token_out(row, name) for row, name in session.execute(stmt)]


@router.post("/tokens", status_code=201, response_model=NewToken)
def create_token(body: TokenCreate, session: SessionDep, who: Auth) -> dict:
    """A new token for you (or, for an admin, for ``user``); the response is the only time it is shown."""
    if body.user is not None and not who.is_admin:
        raise HTTPException(403, "only an admin may make tokens for another user")
    user = _user_named(session, body.user) if body.user is not None else session.get(User, who.user_id)
    if user is None:
        raise HTTPException(409, "auth is switched off on this server: there is no user to make a token for")
    row, token = issue_token(session, user.id, body.name, expires_in_days=body.expires_in_days)
    return {**_token_out(row, user.name), "token": token}


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_token(token_id: ObjectId, session: SessionDep, who: Auth) -> Response:
    """Revoke one of your tokens (an admin: anyone's).  It stops working at once on this server process and
    within a couple of seconds on others."""
    row = session.get(ApiToken, token_id)
    if row is None or (row.user_id != who.user_id and not who.is_admin):
        raise HTTPException(404, f"token {token_id} not found")
    session.execute(update(ApiToken).where(ApiToken.id == token_id, ApiToken.revoked_at.is_(None))
                    .values(revoked_at=utcnow()))
    CACHE.clear()
    return Response(status_code=204)
