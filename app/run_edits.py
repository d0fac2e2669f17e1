"""What a team changes on its runs after they were made: ``PATCH /runs/{id}`` (name, tags, notes, archived) and
``POST /runs/bulk`` (one action on many runs, each checked on its own).  Tags and notes live beside the run
(app.run_meta); the archive flag is a column of the run the list filters on."""

from __future__ import annotations

from fastapi import HTTPException
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from app import run_meta
from app import runs as svc
from app.db import sqlite_write_lock
from app.models import FINISHED, Project, Run
from app.schemas import BulkIn, RunPatch
from app.settings import Settings
from gxnor_core.errors import FieldError

NOT_NULL = ("name", "tags", "archived")


def check_patch(patch: RunPatch | None) -> None:
    """422 for a patch that changes nothing, or that sends null for a field that cannot be empty."""
    if patch is None or not patch.model_fields_set:
        raise FieldError("", "nothing to change: send any of name, tags, notes, archived")
    for field in NOT_NULL:
        if field in patch.model_fields_set and getattr(patch, field) is None:
            raise FieldError(field, "may not be null (leave it out to keep it as it is)")


def _archivable(run: Run) -> None:
    if run.status not in FINISHED:
        raise HTTPException(409, f"run {run.id} is {run.status}; only a finished run can be archived")


def patch_run(session: Session, run: Run, patch: RunPatch) -> None:
    """Apply the fields the patch sends (check_patch first); 409 when archiving a run that has not finished."""
    given = patch.model_fields_set
    if "archived" in given and patch.archived and not run.archived:
        _archivable(run)
    if "name" in given:
        run.name = patch.name
    if "archived" in given:
        run.archived = patch.archived
    if "tags" in given:
        run_meta.set_tags(session, run.id, patch.tags)
    if "notes" in given:
        run_meta.set_notes(session, run.id, patch.notes or "")
    session.flush()


def check_bulk(body: BulkIn) -> None:
    tagging = body.action in ("tag", "untag")
    if tagging and not body.tags:
        raise FieldError("tags", f"{body.action} needs at least one tag")
    if not tagging and body.tags:
        raise FieldError("tags", f"{body.action} takes no tags")


_VISIBLE = (select(Run.id).join(Project, Project.id == Run.project_id)
            .where(Run.id.in_(bindparam("ids", expanding=True)),
                   Project.team_id.in_(bindparam("teams", expanding=True))))


def bulk(session: Session, body: BulkIn, teams: frozenset[int], settings: Settings) -> dict:
    """The action on each id, each checked as its single-run route would (404: missing or another team's;
    409: not in a status the action allows), in a savepoint of its own, so one refusal undoes nothing else."""
    sqlite_write_lock(session)  # it reads, then writes in savepoints (app.db.sqlite_write_lock)
    ids = list(dict.fromkeys(body.ids))
    visible = set(session.scalars(_VISIBLE, {"ids": ids, "teams": list(teams)}))
    results = []
    for run_id in ids:
        if run_id not in visible:
            results.append({"id": run_id, "ok": False, "status": 404, "detail": f"run {run_id} not found"})
            continue
        try:
            with session.begin_nested():
                status = _apply(session, session.get(Run, run_id), body, settings)
        except HTTPException as exc:
            results.append({"id": run_id, "ok": False, "status": exc.status_code, "detail": exc.detail})
        except ValueError as exc:  # too many tags
            results.append({"id": run_id, "ok": False, "status": 422, "detail": str(exc)})
        else:
            results.append({"id": run_id, "ok": True, "status": status, "detail": None})
    return {"action": body.action, "done": sum(r["ok"] for r in results), "results": results}


def _apply(session: Session, run: Run, body: BulkIn, settings: Settings) -> int:
    action = body.action
    if action == "tag":
        run_meta.add_tags(session, run.id, body.tags)
    elif action == "untag":
        run_meta.remove_tags(session, run.id, body.tags)
    elif action in ("archive", "unarchive"):
        patch_run(session, run, RunPatch(archived=action == "archive"))
    elif action == "cancel":
        svc.cancel_run(session, run)
    elif action == "delete":
        svc.delete_run(session, run, settings)
        return 204
    return 200
