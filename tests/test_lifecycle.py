"""Every transition of app.lifecycle's table, the illegal ones included (refused, and the row left exactly as
it was), on a real SQLite file and a real PostgreSQL database."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import delete, select

from app import lifecycle
from app.db import migrate, session_scope
from app.lifecycle import Lease, LeaseLost
from app.models import FINISHED, Run
from app.runs import default_team_id, project_named
from app.settings import Settings
from gxnor_core import validate_config
from tests.pg import fresh_database

WORKER = "test-host:1"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def settings(request, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp(request.param)
    if request.param == "sqlite":
        s = Settings(data_dir=data_dir, lease_seconds=30)
        migrate(s.db_url)
        yield s
        return
    with fresh_database("gxnor_lc") as url:
        migrate(url)
        yield Settings(data_dir=data_dir, database_url=url, lease_seconds=30)


@pytest.fixture(autouse=True)
def _empty(settings):
    """Each test starts from no runs (the database itself is made once per backend)."""
    with session_scope(settings.db_url) as s:
        s.execute(delete(Run))


def new_run(settings, max_attempts: int = 3) -> int:
    config = validate_config({"name": "lc", "model": {"hidden": [8]}, "train": {"epochs": 2}})
    with session_scope(settings.db_url) as s:
        project = project_named(s, default_team_id(s), config.project)
        return lifecycle.create(s, project, config, max_attempts).id


def row(settings, run_id: int) -> dict:
    """Every column of the run, to tell 'unchanged' exactly."""
    with session_scope(settings.db_url) as s:
        return dict(s.execute(select(Run.__table__).where(Run.id == run_id)).mappings().one())


def claim(settings, run_id: int, lease_seconds: float = 30) -> int | None:
    with session_scope(settings.db_url) as s:
        return lifecycle.claim(s, run_id, lease_seconds, WORKER)


def running(settings, max_attempts: int = 3, lease_seconds: float = 30) -> tuple[int, Lease]:
    run_id = new_run(settings, max_attempts)
    token = claim(settings, run_id, lease_seconds)
    assert token is not None
    return run_id, Lease(run_id, token, settings)


def finished(settings, status: str) -> int:
    """A run that ended ``status`` the way runs do: cancelled while queued, or finished by its worker."""
    if status == "cancelled":
        run_id = new_run(settings)
        with session_scope(settings.db_url) as s:
            assert lifecycle.cancel(s, run_id) == "cancelled"
        return run_id
    run_id, lease = running(settings)
    lifecycle.finish(lease, status, "boom" if status == "failed" else None)
    return run_id


def call(settings, transition, *args):
    with session_scope(settings.db_url) as s:
        return transition(s, *args)


# — create, claim —

def test_create_makes_a_queued_run_with_no_lease(settings):
    r = row(settings, new_run(settings))
    assert (r["status"], r["attempt"], r["lease_expires_at"], r["worker"], r["cancel_requested"]) == \
        ("queued", 0, None, None, False)


def test_claim_takes_a_queued_run_under_a_fresh_lease(settings):
    run_id = new_run(settings)
    assert claim(settings, run_id) == 1
    r = row(settings, run_id)
    assert (r["status"], r["attempt"], r["worker"]) == ("running", 1, WORKER)
    assert r["lease_expires_at"] > time.time() + 20 and r["started_at"] and r["heartbeat_at"]


@pytest.mark.parametrize("state", ["running", *FINISHED])
def test_claim_is_refused_unless_the_run_is_queued(settings, state):
    run_id = running(settings)[0] if state == "running" else finished(settings, state)
    before = row(settings, run_id)
    assert claim(settings, run_id) is None
    assert row(settings, run_id) == before


def test_claim_of_a_run_whose_budget_is_spent_fails_it(settings):
    run_id, _ = running(settings, max_attempts=1)
    assert call(settings, lifecycle.requeue_orphans) == [run_id]  # back to queued, its one attempt used
    assert claim(settings, run_id) is None
    r = row(settings, run_id)
    assert r["status"] == "failed" and r["error"].startswith("gave up") and r["finished_at"]


# — the lease: renew, fence —

def test_a_fenced_write_renews_the_lease_and_reports_a_cancel(settings):
    run_id, lease = running(settings)
    first = row(settings, run_id)["lease_expires_at"]
    time.sleep(0.01)
    with session_scope(settings.db_url) as s:
        assert lease.fenced(s, progress_epoch=1, progress_fraction=0.5) is False
    r = row(settings, run_id)
    assert r["lease_expires_at"] > first and (r["progress_epoch"], r["progress_fraction"]) == (1, 0.5)
    assert call(settings, lifecycle.cancel, run_id) == "cancel_requested"
    with session_scope(settings.db_url) as s:
        assert lease.fenced(s, progress_fraction=0.75) is True


def test_a_stale_attempt_is_fenced_off_everywhere(settings):
    run_id, stale = running(settings)
    call(settings, lifecycle.requeue_orphans)
    assert claim(settings, run_id) == 2  # another worker took it over
    before = row(settings, run_id)
    with pytest.raises(LeaseLost), session_scope(settings.db_url) as s:
        stale.fenced(s, progress_epoch=7)
    with pytest.raises(LeaseLost):
        lifecycle.finish(stale, "succeeded")
    with pytest.raises(LeaseLost):
        lifecycle.hand_back(stale)
    assert stale.lost.is_set()
    assert row(settings, run_id) == before


@pytest.mark.parametrize("column", ["status", "attempt", "lease_expires_at", "finished_at"])
def test_a_fenced_write_may_not_set_lifecycle_columns(settings, column):
    run_id, lease = running(settings)
    before = row(settings, run_id)
    with pytest.raises(ValueError, match=column), session_scope(settings.db_url) as s:
        lease.fenced(s, **{column: None})
    assert row(settings, run_id) == before


# — finish, hand back —

@pytest.mark.parametrize("status", FINISHED)
def test_finish_ends_a_running_run(settings, status):
    run_id, lease = running(settings)
    lifecycle.finish(lease, status, "boom" if status == "failed" else None, error_detail="trace")
    r = row(settings, run_id)
    assert r["status"] == status and r["finished_at"] and r["attempt"] == 1
    assert r["error"] == ("boom" if status == "failed" else None) and r["error_detail"] == "trace"


def test_finishing_a_finished_run_is_refused(settings):
    run_id, lease = running(settings)
    lifecycle.finish(lease, "cancelled")
    before = row(settings, run_id)
    for status in FINISHED:
        with pytest.raises(LeaseLost):
            lifecycle.finish(lease, status)
    assert row(settings, run_id) == before


@pytest.mark.parametrize("status", ["queued", "running", "paused"])
def test_finish_to_a_state_that_is_not_final_is_refused(settings, status):
    run_id, lease = running(settings)
    before = row(settings, run_id)
    with pytest.raises(ValueError, match="not one of"):
        lifecycle.finish(lease, status)
    assert row(settings, run_id) == before


def test_hand_back_requeues_without_spending_the_budget(settings):
    run_id, lease = running(settings)
    lifecycle.hand_back(lease)
    r = row(settings, run_id)
    assert (r["status"], r["attempt"], r["max_attempts"], r["lease_expires_at"]) == ("queued", 1, 4, None)
    assert claim(settings, run_id) == 2


def test_hand_back_of_a_finished_run_is_refused(settings):
    run_id, lease = running(settings)
    lifecycle.finish(lease, "succeeded")
    before = row(settings, run_id)
    with pytest.raises(LeaseLost):
        lifecycle.hand_back(lease)
    assert row(settings, run_id) == before


# — cancel —

def test_cancel_of_a_queued_run_cancels_it_at_once(settings):
    run_id = new_run(settings)
    assert call(settings, lifecycle.cancel, run_id) == "cancelled"
    r = row(settings, run_id)
    assert (r["status"], r["cancel_requested"]) == ("cancelled", True) and r["finished_at"]
    assert claim(settings, run_id) is None  # its message, delivered later, is skipped


def test_cancel_of_a_running_run_asks_its_worker_then_the_worker_finishes_it(settings):
    run_id, lease = running(settings)
    assert call(settings, lifecycle.cancel, run_id) == "cancel_requested"
    r = row(settings, run_id)
    assert (r["status"], r["cancel_requested"], r["finished_at"]) == ("running", True, None)
    lifecycle.finish(lease, "cancelled")
    assert row(settings, run_id)["status"] == "cancelled"


@pytest.mark.parametrize("status", FINISHED)
def test_cancel_of_a_finished_run_is_refused(settings, status):
    run_id = finished(settings, status)
    before = row(settings, run_id)
    assert call(settings, lifecycle.cancel, run_id) is None
    assert row(settings, run_id) == before


def test_cancel_of_a_missing_run_is_refused(settings):
    assert call(settings, lifecycle.cancel, 987_654) is None


# — resume —

@pytest.mark.parametrize("status", lifecycle.RESUMABLE)
def test_resume_requeues_a_failed_or_cancelled_run_with_a_fresh_budget(settings, status):
    if status == "cancelled":  # cancelled while running, as a run with a checkpoint is
        run_id, lease = running(settings, max_attempts=1)
        call(settings, lifecycle.cancel, run_id)
        lifecycle.finish(lease, "cancelled")
    else:
        run_id, lease = running(settings, max_attempts=1)
        lifecycle.finish(lease, "failed", "boom", error_detail="Traceback …")
    assert call(settings, lifecycle.resume, run_id, 3) is True
    r = row(settings, run_id)
    assert (r["status"], r["attempt"], r["max_attempts"], r["cancel_requested"], r["error"], r["error_detail"],
            r["finished_at"], r["lease_expires_at"]) == ("queued", 1, 4, False, None, None, None, None)
    assert claim(settings, run_id) == 2  # its spent budget (1 of 1) did not stop the claim


@pytest.mark.parametrize("state", ["queued", "running", "succeeded"])
def test_resume_is_refused_unless_the_run_failed_or_was_cancelled(settings, state):
    run_id = {"queued": lambda: new_run(settings), "running": lambda: running(settings)[0],
              "succeeded": lambda: finished(settings, "succeeded")}[state]()
    before = row(settings, run_id)
    assert call(settings, lifecycle.resume, run_id, 3) is False
    assert row(settings, run_id) == before


def test_resume_of_a_missing_run_is_refused(settings):
    assert call(settings, lifecycle.resume, 987_654, 3) is False


# — requeue (reaper, start-up), attempt budget —

def test_the_reaper_requeues_lapsed_leases_and_fails_spent_runs(settings):
    lapsed, _ = running(settings, lease_seconds=-1)
    spent, _ = running(settings, max_attempts=1, lease_seconds=-1)
    live, _ = running(settings)
    queued = new_run(settings)
    done = finished(settings, "succeeded")
    untouched = {i: row(settings, i) for i in (live, queued, done)}
    assert call(settings, lifecycle.requeue_expired) == [lapsed]
    r = row(settings, lapsed)
    assert (r["status"], r["attempt"], r["lease_expires_at"]) == ("queued", 1, None)
    r = row(settings, spent)
    assert r["status"] == "failed" and r["error"].startswith("gave up")
    assert {i: row(settings, i) for i in untouched} == untouched
    assert call(settings, lifecycle.requeue_expired) == []  # idempotent


def test_start_up_requeues_every_running_run_and_nothing_else(settings):
    a, _ = running(settings)
    b, _ = running(settings, lease_seconds=-1)
    queued, done = new_run(settings), finished(settings, "failed")
    untouched = {i: row(settings, i) for i in (queued, done)}
    assert sorted(call(settings, lifecycle.requeue_orphans)) == sorted([a, b])
    assert row(settings, a)["status"] == row(settings, b)["status"] == "queued"
    assert {i: row(settings, i) for i in untouched} == untouched


def test_fail_spent_touches_only_queued_runs_whose_budget_is_spent(settings):
    spent, _ = running(settings, max_attempts=1)
    call(settings, lifecycle.requeue_orphans)
    fresh = new_run(settings)
    busy, _ = running(settings, max_attempts=1)  # spent too, but running: its worker decides
    untouched = {i: row(settings, i) for i in (fresh, busy)}
    assert call(settings, lifecycle.fail_spent, [spent, fresh, busy]) == [spent]
    assert row(settings, spent)["status"] == "failed"
    assert {i: row(settings, i) for i in untouched} == untouched
