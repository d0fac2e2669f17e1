"""``Idempotency-Key`` on run and sweep creation: a retried request gets the first answer, not a second run.

A client that did not see the answer to ``POST /runs`` (a timeout, a dropped connection) cannot tell
whether the run was made; with a key of its choosing it can simply send the request again.

- The key is scoped to the caller (its user id; 0 with auth off) and kept for ``GXNOR_IDEMPOTENCY_KEY_S``
  (24 h).
- The first successful answer (201) is stored in the same transaction as the runs it made, with a
  fingerprint of the route and the body.  A request with that key and the same fingerprint gets that status
  and body back (with ``Idempotent-Replayed: true``): nothing is validated, created or queued again.  The same
  key with a different request is a 422.
- Errors are not stored: they created nothing, so a retry is tried afresh.
- Expired keys are deleted after each keyed request (``_purge_expired``).
- Two requests with one key at the same moment: the second insert of the key breaks the unique constraint
  on (principal, key) — PostgreSQL makes it wait for the first transaction to end — so its transaction, runs
  included, is rolled back and it answers the first one's answer.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Annotated

from fastapi import Header, Response
from fastapi.exceptions import RequestValidationError
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from app.auth import _aware
from app.models import IdempotencyKey, utcnow

HEADER = "Idempotency-Key"
KeyHeader = Annotated[str | None, Header(
    alias=HEADER, min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$",
    description="Any string of your choice (visible ASCII, up to 255 characters), new for each new request: a "
                "retry with the same key and body returns the first answer instead of creating again.")]


class IdempotentCreate:
    """One creation request and its key (or none: then ``replay`` finds nothing and ``commit`` just commits)."""

    def __init__(self, session: Session, principal_id: int, key: str | None, route: str, body: dict,
                 ttl_s: float):
        self.session, self.principal_id, self.key, self.ttl_s = session, principal_id, key, ttl_s
        # (the standard json: a body may hold integers beyond 64 bits, which orjson refuses)
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":")) if key is not None else ""
        self.fingerprint = hashlib.sha256(f"{route}\n{canonical}".encode()).hexdigest()

    def replay(self) -> Response | None:
        """The stored answer to this key, if there is a live one; 422 when the key came with another request."""
        if self.key is None:
            return None
        row = self.session.scalars(select(IdempotencyKey).where(
            IdempotencyKey.principal_id == self.principal_id, IdempotencyKey.key == self.key)).first()
        if row is None or _aware(row.expires_at) <= utcnow():
            return None
        if row.fingerprint != self.fingerprint:  # a 422 shaped like every other of this API
            raise RequestValidationError([{
                "loc": ("header", HEADER), "type": "value_error",
                "msg": f"{self.key!r} was already used with a different request; send a new key with a new request"}])
        return Response(row.response.encode(), status_code=row.status_code, media_type="application/json",
                        headers={"Idempotent-Replayed": "true"})

    def commit(self, answer: Response) -> Response | None:
        """Commit the request's transaction, storing ``answer`` under the key.  Returns None when this request's
        work stands, or the answer to replay instead when a parallel request with the key committed first
        (then this transaction, runs included, has been rolled back)."""
        if self.key is None:
            self.session.commit()
            return None
        now = utcnow()
        self.session.execute(delete(IdempotencyKey).where(  # an expired use of the key makes way
            IdempotencyKey.principal_id == self.principal_id, IdempotencyKey.key == self.key,
            IdempotencyKey.expires_at <= now))
        self.session.add(IdempotencyKey(
            principal_id=self.principal_id, key=self.key, fingerprint=self.fingerprint,
            status_code=answer.status_code, response=bytes(answer.body).decode(), created_at=now,
            expires_at=now + timedelta(seconds=self.ttl_s)))
        try:
            self.session.commit()
        except IntegrityError:
            self.session.rollback()
            replayed = self.replay()
            if replayed is None:  # not the key's constraint after all
                raise
            return replayed
        self._purge_expired()
        return None

    def _purge_expired(self) -> None:
        """Delete every expired key (an indexed range), in a short transaction of its own after the request's
        — holding nothing else, it cannot wait on another request in a cycle.  Best effort: the next keyed
        request tries again."""
        try:
            self.session.execute(delete(IdempotencyKey).where(IdempotencyKey.expires_at <= utcnow()))
            self.session.commit()
        except SQLAlchemyError:
            self.session.rollback()
