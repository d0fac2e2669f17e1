"""Workers' heartbeats and the queue (app.workers, worker.heartbeat, GET /workers, /queue, /runs/{id}/queue): rows
written, updated, removed and pruned, the alive rule, a database outage survived, and what each team is told —
another team's run is counted, never named — on a real SQLite file and a real PostgreSQL database."""

from __future__ import annotations

import json
from contextlib import nullcontext
from datetime import timedelta

import pytest
import torch
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, delete, inspect, select, update

from app import estimator, lifecycle, workers
from app.db import alembic_config, get_engine, session_scope
from app.models import Base, Run, Worker, utcnow
from app.settings import Settings
from tests.pg import app_with_two_teams, fresh_database
from worker.heartbeat import Heartbeat, training_device

ADMIN = "gx_workers-admin"
CONFIG = {"model": {"hidden": [8]}, "dataset": {"name": "digits"}, "train": {"epochs": 4, "batch_size": 100}}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def service(request, tmp_path_factory):
    """The app, the admin (team default) as the client's caller, and a token of bob in team blue."""
    with app_with_two_teams(request.param, tmp_path_factory.mktemp(request.param), ADMIN, "gxnor_workers") as service:
        yield service


@pytest.fixture()
def svc(service):
    """No runs and no workers to start with; estimates from the default table."""
    _, settings, _ = service
    with session_scope(settings.db_url) as s:
        s.execute(delete(Run))
        s.execute(delete(Worker))
    estimator.forget()
    return service


def info(worker_id: str, concurrency: int = 1, heartbeat_s: float = 10.0) -> workers.WorkerInfo:
    host, pid = worker_id.split(":")
    return workers.WorkerInfo(worker_id, host, int(pid), "cpu", concurrency, heartbeat_s)


def beat(settings: Settings, worker_id: str, run_id: int | None = None, seen_ago: float = 0.0, **kw) -> None:
    """A worker's heartbeat through app.workers.beat; ``seen_ago`` then moves its last beat into the past."""
    with session_scope(settings.db_url) as s:
        workers.beat(s, info(worker_id, **kw), run_id)
    if seen_ago:
        with session_scope(settings.db_url) as s:
            s.execute(update(Worker).where(Worker.id == worker_id)
                      .values(last_seen=utcnow() - timedelta(seconds=seen_ago)))


def row(settings: Settings, worker_id: str) -> Worker | None:
    with session_scope(settings.db_url) as s:
        return s.get(Worker, worker_id)


def submit(client: TestClient, name: str, headers: dict | None = None) -> int:
    resp = client.post("/api/v1/runs", json={"config": {**CONFIG, "name": name}}, headers=headers or {})
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def get(client: TestClient, path: str, headers: dict | None = None) -> dict:
    resp = client.get(f"/api/v1{path}", headers=headers or {})
    assert resp.status_code == 200, resp.text
    return resp.json()


# — the table —

def test_migration_0012_makes_the_models_workers_table_and_its_downgrade_drops_it(svc, tmp_path):
    _, settings, _ = svc
    with get_engine(settings.db_url).connect() as conn:  # at head: the migration and the model agree
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert [d for d in diffs if "workers" in repr(d)] == []
    pg = settings.db_url.startswith("postgresql")
    with fresh_database("gxnor_workers_mig") if pg else nullcontext() as url:
        url = url or f"sqlite:///{tmp_path / 'mig.db'}"
        cfg = alembic_config(url)
        command.upgrade(cfg, "0012")
        engine = create_engine(url)
        with engine.connect() as conn:
            assert {c["name"] for c in inspect(conn).get_columns("workers")} == set(Worker.__table__.columns.keys())
        command.downgrade(cfg, "0011")
        with engine.connect() as conn:
            assert not inspect(conn).has_table("workers")
        engine.dispose()


# — heartbeats —

def test_a_heartbeat_writes_its_row_names_its_run_and_removes_the_row_on_a_clean_stop(svc):
    _, settings, _ = svc
    hb = Heartbeat(settings, concurrency=2, device="cuda:Test GPU")
    hb.start()
    try:
        first = row(settings, hb.me.id)
        assert first is not None and first.device == "cuda:Test GPU" and first.concurrency == 2
        assert first.current_run_id is None and first.heartbeat_s == settings.worker_heartbeat_s
        with hb.running(1234):
            assert row(settings, hb.me.id).current_run_id == 1234
        again = row(settings, hb.me.id)
        assert again.current_run_id is None
        assert again.started_at == first.started_at and again.last_seen >= first.last_seen
    finally:
        hb.stop()
    assert row(settings, hb.me.id) is None


def test_a_heartbeat_survives_a_database_outage_and_the_next_beat_writes_the_row(svc, tmp_path):
    _, settings, _ = svc
    hb = Heartbeat(settings, device="cpu")
    hb.url = f"sqlite:///{tmp_path}/no-such-dir/gxnor.db"  # unreachable: the directory does not exist
    assert hb.start() is hb and hb.beat() is False  # logged, not raised; the beat thread keeps going
    assert hb._thread.is_alive()
    hb.url = settings.db_url  # the database is back
    assert hb.beat() is True and row(settings, hb.me.id) is not None
    hb.stop()
    assert row(settings, hb.me.id) is None


def test_the_device_is_what_a_run_with_device_auto_trains_on_here():
    got = training_device()
    assert got == "cpu" if not torch.cuda.is_available() else got.startswith("cuda:")


def test_alive_means_seen_within_three_of_its_own_heartbeat_periods(svc):
    client, settings, _ = svc
    now = utcnow()
    assert workers.is_alive(now - timedelta(seconds=29), 10, now)
    assert not workers.is_alive(now - timedelta(seconds=31), 10, now)
    assert workers.is_alive(now - timedelta(seconds=31), 20, now)  # judged by the worker's own period
    beat(settings, "fresh:1")
    beat(settings, "late:2", seen_ago=25)
    beat(settings, "dead:3", seen_ago=35)
    beat(settings, "slow:4", seen_ago=35, heartbeat_s=60)
    got = get(client, "/workers")
    assert {w["id"]: w["alive"] for w in got["workers"]} == {
        "fresh:1": True, "late:2": True, "dead:3": False, "slow:4": True}
    assert got["alive"] == 3


def test_rows_silent_for_hours_are_pruned_and_a_pruned_worker_writes_its_row_again(svc):
    _, settings, _ = svc
    beat(settings, "gone:1", seen_ago=workers.PRUNE_AFTER_S + 60)
    beat(settings, "dead:2", seen_ago=3600)
    with session_scope(settings.db_url) as s:
        assert workers.prune(s) == 1
    assert row(settings, "gone:1") is None and row(settings, "dead:2") is not None
    beat(settings, "gone:1", run_id=7)  # it was only frozen: its next beat inserts the row again
    assert row(settings, "gone:1").current_run_id == 7


# — what each team is told —

def test_workers_name_only_the_callers_own_runs(svc):
    client, settings, bob = svc
    mine, his = submit(client, "admins run"), submit(client, "bobs run", bob)
    beat(settings, "a:1", mine)
    beat(settings, "b:2", his)
    beat(settings, "c:3")
    as_admin = {w["id"]: w for w in get(client, "/workers")["workers"]}
    assert as_admin["a:1"]["busy"] and as_admin["a:1"]["run"] == {"id": mine, "name": "admins run"}
    assert as_admin["b:2"]["busy"] and as_admin["b:2"]["run"] is None
    assert not as_admin["c:3"]["busy"] and as_admin["c:3"]["run"] is None
    assert as_admin["a:1"]["device"] == "cpu" and as_admin["a:1"]["alive"]
    as_bob = {w["id"]: w for w in get(client, "/workers", bob)["workers"]}
    assert as_bob["b:2"]["run"] == {"id": his, "name": "bobs run"} and as_bob["a:1"]["run"] is None
    assert "admins run" not in json.dumps(as_bob)


def test_the_queue_gives_places_in_the_whole_queue_and_etas_without_naming_other_teams_runs(svc):
    client, settings, bob = svc
    a1, b1, a2 = submit(client, "a1"), submit(client, "secret b1", bob), submit(client, "a2")
    mine = get(client, "/queue")
    assert mine["length"] == 3 and mine["workers_alive"] == 0 and mine["capacity"] == 0
    assert [(r["id"], r["position"], r["ahead"]) for r in mine["items"]] == [(a1, 1, 0), (a2, 3, 2)]
    assert all(r["eta_seconds"] is None for r in mine["items"])  # no worker alive
    assert "secret b1" not in json.dumps(mine) and b1 not in [r["id"] for r in mine["items"]]
    his = get(client, "/queue", bob)
    assert [(r["id"], r["position"], r["team"]) for r in his["items"]] == [(b1, 2, "blue")]

    beat(settings, "w:1")
    beat(settings, "w:2", concurrency=2)
    beat(settings, "dead:3", seen_ago=600, concurrency=8)  # a dead worker adds no capacity
    each = get(client, "/queue")["items"][0]["seconds"]  # every run here is the same config: the same cost
    assert each == pytest.approx(4 * estimator.default_seconds_per_epoch("mlp", "digits"))
    mine = get(client, "/queue")
    assert mine["workers_alive"] == 2 and mine["capacity"] == 3
    assert [r["eta_seconds"] for r in mine["items"]] == [0, pytest.approx(2 * each / 3)]

    # A running run's remaining epochs are ahead of every queued run.
    with session_scope(settings.db_url) as s:
        assert lifecycle.claim(s, a1, 30, "w:1") == 1
        s.execute(update(Run).where(Run.id == a1).values(epochs_done=1, progress_epoch=2, progress_fraction=0.5))
    mine = get(client, "/queue")
    assert [(r["id"], r["position"]) for r in mine["items"]] == [(a2, 2)] and mine["length"] == 2
    assert mine["items"][0]["eta_seconds"] == pytest.approx((2.5 / 4 * each + each) / 3)  # 2.5 of 4 epochs left


def test_a_runs_place_in_the_queue_and_whether_a_worker_is_alive(svc):
    client, settings, bob = svc
    his, mine = submit(client, "his", bob), submit(client, "mine")
    got = get(client, f"/runs/{mine}/queue")
    assert got == {"id": mine, "status": "queued", "length": 2, "workers_alive": 0, "capacity": 0, "position": 2,
                   "ahead": 1, "seconds": pytest.approx(got["seconds"]), "eta_seconds": None}
    beat(settings, "w:1")
    got = get(client, f"/runs/{mine}/queue")
    assert got["workers_alive"] == 1 and got["eta_seconds"] == pytest.approx(got["seconds"])  # one run ahead
    with session_scope(settings.db_url) as s:
        lifecycle.cancel(s, mine)
    got = get(client, f"/runs/{mine}/queue")
    assert got["status"] == "cancelled" and got["position"] is None and got["eta_seconds"] is None
    for run_id in (his, 2_000_000_000):  # another team's run, a missing one: 404 alike
        resp = client.get(f"/api/v1/runs/{run_id}/queue")
        assert resp.status_code == 404 and resp.json()["detail"] == f"run {run_id} not found"
    assert client.get("/api/v1/runs/0/queue").json()["field"] == "run_id"


def test_the_worker_row_names_the_run_a_real_runner_trains(svc):
    """worker.runner wraps a claimed run in the heartbeat: the row names it until the run ends."""
    from worker import heartbeat
    from worker.runner import execute_run

    client, settings, _ = svc
    run_id = submit(client, "trained")
    seen: list[int | None] = []
    hb = heartbeat.start(settings)
    try:
        original = hb.beat

        def watch(starting: bool = False) -> bool:  # record what each write said (the writes themselves are real)
            ok = original(starting)
            seen.append(row(settings, hb.me.id).current_run_id)
            return ok

        hb.beat = watch
        assert execute_run(run_id, settings) == "succeeded"
    finally:
        heartbeat.stop()
    assert seen[0] == run_id and seen[-1] is None  # taken, then finished (a periodic beat may fall between)
    assert row(settings, hb.me.id) is None
    with session_scope(settings.db_url) as s:
        assert s.scalar(select(Run.worker).where(Run.id == run_id)) == hb.me.id  # the name runs.worker shows
