"""Short-lived, single-purpose download links: a browser downloads a run's file without putting an API
token into its address bar, history or download list.

``POST /api/v1/runs/{id}/checkpoint/link`` (with the usual bearer token) returns ``/api/v1/downloads/KEY``.
KEY is 32 random bytes; only its SHA-256 is stored, with the run, the file kind, the user who asked and an
expiry (``GXNOR_DOWNLOAD_LINK_S``, 300 s).  Until then the link downloads that one file, and only while its
user still exists and still belongs to the run's team; it can serve nothing else.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from pathlib import Path

from fastapi import HTTPException
from pydantic import BaseModel, Field
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.auth import _aware
from app.models import DownloadLink, Membership, Project, Run, utcnow

KINDS = ("checkpoint", "best")  # the artifact kinds a link can name (app.runs.CHECKPOINT_KINDS)
MODEL_KINDS = {"model-best": "best", "model-latest": "latest"}  # a .gxn export of a checkpoint (app.exported)


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_link(session: Session, run_id: int, kind: str, user_id: int | None, ttl_s: float) -> tuple[str, datetime]:
    """A new link's key and expiry (the key exists in clear only in this answer)."""
    now = utcnow()
    session.execute(delete(DownloadLink).where(DownloadLink.expires_at < now))  # tidy the expired ones
    key = secrets.token_urlsafe(32)
    expires = now + timedelta(seconds=ttl_s)
    session.add(DownloadLink(key_hash=_hash(key), user_id=user_id, run_id=run_id, kind=kind, expires_at=expires))
    session.flush()
    return key, expires


def redeem(session: Session, key: str, kinds: tuple[str, ...] = KINDS) -> tuple[Run, str]:
    """(the run, the file kind) a live link names; 404 for an unknown or expired link, one whose user has
    since lost access to the run, or one of a kind not in ``kinds`` (each download route redeems its own)."""
    gone = HTTPException(404, "this download link is unknown or has expired; ask for a new one")
    link = session.scalars(select(DownloadLink).where(DownloadLink.key_hash == _hash(key))).first()
    if link is None or link.kind not in kinds or _aware(link.expires_at) <= utcnow():
        raise gone
    run = session.get(Run, link.run_id)
    if run is None:
        raise gone
    if link.user_id is not None:  # (None: made with auth switched off)
        team = session.scalar(select(Project.team_id).where(Project.id == run.project_id))
        member = session.scalar(select(Membership.user_id)  # (a deleted user's memberships go with it)
                                .where(Membership.user_id == link.user_id, Membership.team_id == team))
        if member is None:
            raise gone
    return run, link.kind


def filename(run_id: int, path: Path) -> str:
    return f"run-{run_id}-{path.name}"


class LinkOut(BaseModel):
    url: str = Field(description="Same-origin path of the download; works without a token until expires_at.")
    expires_at: datetime
