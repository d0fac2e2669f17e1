"""A run's tags and notes (migration 0011): stored beside the run, not on its row, so the run list — whose
speed rests on covering indexes of the narrow run row (docs/BENCHMARKS.md) — reads none of it except a
page's tags, in one query for the whole page."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.orm import Session

from app.models import Run, RunNote, RunTag

MAX_TAGS = 32  # per run
MAX_TAG = 64  # characters per tag
MAX_NOTES = 10_000  # characters

_IDS = bindparam("ids", expanding=True)
_TAGS_OF = select(RunTag.run_id, RunTag.tag).where(RunTag.run_id.in_(_IDS))


# A run's tags and notes as columns of the statement that reads the run (correlated subqueries on the primary
# keys), so reading a run or a page of runs stays one round trip: two more per run read cost PostgreSQL a third
# of the read mix's throughput (docs/BENCHMARKS.md).  Tags hold no control characters (validated), so the unit
# separator can join them.
SEP = "\x1f"
TAGS_COLUMN = (select(func.aggregate_strings(RunTag.tag, SEP)).where(RunTag.run_id == Run.id)
               .correlate(Run).scalar_subquery().label("tags"))
NOTES_COLUMN = select(RunNote.notes).where(RunNote.run_id == Run.id).correlate(Run).scalar_subquery()


def split_tags(joined: str | None) -> list[str]:
    """``TAGS_COLUMN``'s value as the run's tags, sorted by code point (the same on both databases)."""
    return sorted(joined.split(SEP)) if joined else []


def tags_of(session, run_ids: list[int]) -> dict[int, list[str]]:
    """run id → its tags, sorted (runs without tags are absent): one query for any number of runs."""
    out: dict[int, list[str]] = {}
    for run_id, tag in session.execute(_TAGS_OF, {"ids": run_ids}).all():
        out.setdefault(run_id, []).append(tag)
    for tags in out.values():
        tags.sort()  # by code point, the same on both databases (their collations differ)
    return out


def runs_tagged(tag):
    """A subquery of the ids of the runs carrying ``tag`` (a bind parameter), from ``ix_run_tags_tag_run``."""
    return select(RunTag.run_id).where(RunTag.tag == tag)


def notes_matching(pattern):
    """A subquery of the ids of the runs whose notes match the ILIKE ``pattern`` (a bind parameter)."""
    return select(RunNote.run_id).where(RunNote.notes.ilike(pattern, escape="\\"))


def unique(tags: Iterable[str]) -> list[str]:
    """The tags once each, in the order first given."""
    return list(dict.fromkeys(tags))


def set_tags(session: Session, run_id: int, tags: list[str]) -> None:
    """Replace the run's tags with ``tags``."""
    session.execute(delete(RunTag).where(RunTag.run_id == run_id))
    session.add_all(RunTag(run_id=run_id, tag=t) for t in unique(tags))
    session.flush()


def add_tags(session: Session, run_id: int, tags: list[str]) -> list[str]:
    """Add ``tags`` to the run's (those it has already are left); returns its tags, sorted.  Raises
    ValueError, adding nothing, when the run would have more than MAX_TAGS."""
    have = tags_of(session, [run_id]).get(run_id, [])
    new = [t for t in unique(tags) if t not in have]
    if len(have) + len(new) > MAX_TAGS:
        raise ValueError(f"run {run_id} has {len(have)} tags; with these it would have {len(have) + len(new)} "
                         f"(at most {MAX_TAGS})")
    session.add_all(RunTag(run_id=run_id, tag=t) for t in new)
    session.flush()
    return sorted([*have, *new])


def remove_tags(session: Session, run_id: int, tags: list[str]) -> None:
    session.execute(delete(RunTag).where(RunTag.run_id == run_id, RunTag.tag.in_(unique(tags))))


def set_notes(session: Session, run_id: int, notes: str) -> None:
    """Store the run's notes; empty notes remove its row."""
    row = session.get(RunNote, run_id)
    if not notes:
        if row is not None:
            session.delete(row)
    elif row is None:
        session.add(RunNote(run_id=run_id, notes=notes))
    else:
        row.notes = notes
    session.flush()
