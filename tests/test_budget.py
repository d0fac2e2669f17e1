"""The run-cost estimator (app.estimator) and the compute budget per team (app.budget): the running limit at
the claim, the reaper re-sending only what a team has room for, and the queued-seconds budget at submission
(429 + Retry-After, atomic under parallel bursts) — on a real SQLite file and a real PostgreSQL database."""

from __future__ import annotations

import statistics
import threading
from collections import Counter
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select, update

from app import budget, estimator, lifecycle
from app.budget import AtRunningLimit
from app.db import migrate, session_scope
from app.lifecycle import Lease
from app.models import Run, Team, utcnow
from app.queue import make_celery
from app.reaper import resend_lost
from app.runs import project_named
from app.settings import Settings
from gxnor_core import validate_config
from gxnor_core.data import DATASETS
from gxnor_core.models import ARCHITECTURES
from tests.pg import admin_app, fresh_database
from tests.test_queue_cap import burst as queue_burst
from worker.runner import execute_run

WORKER = "test-host:1"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def settings(request, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp(request.param)
    if request.param == "sqlite":
        s = Settings(data_dir=data_dir)
        migrate(s.db_url)
        yield s
        return
    with fresh_database("gxnor_budget") as url:
        migrate(url)
        yield Settings(data_dir=data_dir, database_url=url)


@pytest.fixture()
def db(settings):
    """The backend's database with no runs, and an empty estimator cache."""
    with session_scope(settings.db_url) as s:
        s.execute(delete(Run))
    estimator.forget()
    yield settings
    estimator.forget()


def team(settings, name: str) -> int:
    with session_scope(settings.db_url) as s:
        found = s.scalar(select(Team.id).where(Team.name == name))
        if found is None:
            t = Team(name=name)
            s.add(t)
            s.flush()
            found = t.id
        return found


def new_run(settings, team_id: int, arch: str = "mlp", dataset: str = "digits", epochs: int = 10,
            device: str = "auto") -> int:
    config = validate_config({"name": "b", "model": {"arch": arch, "hidden": [8]}, "dataset": {"name": dataset},
                              "train": {"epochs": epochs, "device": device}})
    with session_scope(settings.db_url) as s:
        return lifecycle.create(s, project_named(s, team_id, "p"), config, 3).id


def claim(settings, run_id: int, max_running: int = 0) -> int | None:
    with session_scope(settings.db_url) as s:
        return lifecycle.claim(s, run_id, 30, WORKER, max_running)


def row(settings, run_id: int) -> dict:
    with session_scope(settings.db_url) as s:
        return dict(s.execute(select(Run.__table__).where(Run.id == run_id)).mappings().one())


def finished_run(settings, team_id: int, seconds: float, epochs: int = 10, arch: str = "mlp",
                 dataset: str = "digits", device: str = "cpu", status: str = "succeeded", attempts: int = 1) -> int:
    """A run that went queued → running → ``status`` through the lifecycle, its wall time then set to
    ``seconds`` (and the worker's device recorded, as the worker's start write does)."""
    run_id = new_run(settings, team_id, arch, dataset, epochs)
    for _ in range(attempts - 1):  # lost its worker: back to queued, claimed again
        claim(settings, run_id)
        with session_scope(settings.db_url) as s:
            lifecycle.requeue_orphans(s)
    lease = Lease(run_id, claim(settings, run_id), settings)
    lifecycle.finish(lease, status)
    start = utcnow() - timedelta(hours=1)
    with session_scope(settings.db_url) as s:
        s.execute(update(Run).where(Run.id == run_id).values(
            started_at=start, finished_at=start + timedelta(seconds=seconds), epochs_done=epochs,
            info={"device": device}))
    return run_id


def per_epoch(settings, arch="mlp", dataset="digits", device="auto") -> estimator.Estimate:
    with session_scope(settings.db_url) as s:
        return estimator.per_epoch(s, arch, dataset, device)


# — the estimator —

def test_with_no_finished_run_the_estimate_is_the_default_table(db):
    default = per_epoch(db)
    assert default == estimator.Estimate(estimator.default_seconds_per_epoch("mlp", "digits"), 0)
    assert default.source == "default table" and default.seconds_per_epoch > 0


def test_the_estimate_is_the_median_of_the_finished_runs_of_that_kind(db):
    t = team(db, "default")
    durations = [120.0, 300.0, 200.0, 90.0, 410.0]  # 10 epochs each
    for d in durations:
        finished_run(db, t, d)
    # Not learned from: another kind, a failed run, one that took two attempts (a gap in its wall time).
    finished_run(db, t, 9999.0, dataset="mnist5k")
    finished_run(db, t, 9999.0, status="failed")
    finished_run(db, t, 9999.0, attempts=2)
    got = per_epoch(db)
    assert got.seconds_per_epoch == pytest.approx(statistics.median(durations) / 10)
    assert (got.learned_from, got.source) == (5, "learned from 5 runs")
    assert per_epoch(db, dataset="mnist5k").seconds_per_epoch == pytest.approx(999.9)
    assert per_epoch(db, arch="mnist_cnn", dataset="mnist5k").learned_from == 0  # no such run: default


def test_a_config_naming_a_device_gets_that_devices_median(db):
    t = team(db, "default")
    for d in (10.0, 20.0, 30.0):
        finished_run(db, t, d, device="cpu")
    finished_run(db, t, 2.0, device="cuda:0")
    assert per_epoch(db, device="cuda") == estimator.Estimate(0.2, 1)
    assert per_epoch(db, device="cpu") == estimator.Estimate(2.0, 3)
    assert per_epoch(db, device="auto") == estimator.Estimate(statistics.median([1, 2, 3, 0.2]), 4)


def test_learned_figures_are_cached_per_process_until_forgotten(db):
    t = team(db, "default")
    finished_run(db, t, 100.0)
    assert per_epoch(db).seconds_per_epoch == pytest.approx(10.0)
    finished_run(db, t, 300.0)
    finished_run(db, t, 300.0)
    assert per_epoch(db).seconds_per_epoch == pytest.approx(10.0)  # cached: no query per request
    estimator.forget()
    assert per_epoch(db).seconds_per_epoch == pytest.approx(30.0)


def test_a_configs_cost_is_its_epochs_times_seconds_per_epoch(db):
    t = team(db, "default")
    finished_run(db, t, 50.0)  # 5 s per epoch
    config = validate_config({"train": {"epochs": 7}})
    with session_scope(db.db_url) as s:
        assert estimator.run_seconds(s, config) == pytest.approx(35.0)
        assert estimator.total_seconds(s, [config, config]) == pytest.approx(70.0)
    assert estimator.remaining_seconds(estimator.Estimate(5.0, 1), 7, 3) == pytest.approx(20.0)


def test_the_default_table_covers_every_pair_the_network_takes():
    table = estimator.default_table()
    assert set(estimator.MEASURED) <= set(table)
    assert ("mnist_cnn", "digits") not in table  # its valid convolutions need larger inputs than 8×8
    assert {a for a, _ in table} == set(ARCHITECTURES) and {d for _, d in table} == set(DATASETS)
    assert all(v > 0 for v in table.values())
    # Scaled by samples: MNIST's epoch touches 54 000 + (6 000 + 10 000) / 3 samples, mnist5k's 3 600 + 1 400 / 3.
    ratio = (54_000 + 16_000 / 3) / (3_600 + 1_400 / 3)
    assert table["mlp", "mnist"] == pytest.approx(estimator.MEASURED["mlp", "mnist5k"] * ratio)


# — the running limit, at the claim —

def test_a_claim_past_the_teams_running_limit_is_refused_until_one_finishes(db):
    a, b = team(db, "default"), team(db, "other")
    first, second = new_run(db, a), new_run(db, a)
    theirs = new_run(db, b)
    token = claim(db, first, max_running=1)
    assert token == 1
    before = row(db, second)
    with pytest.raises(AtRunningLimit) as refused:
        claim(db, second, max_running=1)
    assert (refused.value.running, refused.value.limit) == (1, 1)
    assert row(db, second) == before  # still queued, nothing written
    assert claim(db, theirs, max_running=1) == 1  # another team's run is claimable meanwhile
    lifecycle.finish(Lease(first, token, db), "succeeded")
    assert claim(db, second, max_running=1) == 1
    assert row(db, second)["status"] == "running"


def test_without_a_limit_claims_are_not_counted(db):
    a = team(db, "default")
    runs = [new_run(db, a) for _ in range(3)]
    assert [claim(db, r) for r in runs] == [1, 1, 1]


def test_a_claim_of_a_run_that_is_not_queued_is_not_blamed_on_the_limit(db):
    a = team(db, "default")
    first = new_run(db, a)
    claim(db, first, max_running=1)
    assert claim(db, first, max_running=1) is None  # a duplicate message for the running run


def test_parallel_claims_never_pass_the_running_limit(db):
    a, limit, n = team(db, "default"), 2, 8
    runs = [new_run(db, a) for _ in range(n)]
    start = threading.Barrier(n)
    outcomes: list[str] = []

    def take(run_id: int) -> None:
        start.wait()
        try:
            outcomes.append("claimed" if claim(db, run_id, max_running=limit) else "none")
        except AtRunningLimit:
            outcomes.append("refused")

    threads = [threading.Thread(target=take, args=(r,)) for r in runs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert Counter(outcomes) == {"claimed": limit, "refused": n - limit}
    with session_scope(db.db_url) as s:
        assert s.scalar(select(func.count()).select_from(Run).where(Run.status == "running")) == limit


def test_the_worker_leaves_a_run_over_the_limit_queued(db):
    a = team(db, "default")
    first, second = new_run(db, a), new_run(db, a)
    claim(db, first)
    before = row(db, second)
    limited = db.model_copy(update={"team_max_running": 1})
    assert execute_run(second, limited) == "deferred"
    assert row(db, second) == before


# — the reaper re-sends only what a team has room for —

def test_the_reaper_resends_a_teams_queued_runs_only_up_to_its_free_slots(db, tmp_path):
    a, b = team(db, "default"), team(db, "other")
    busy = new_run(db, a)
    claim(db, busy)
    a_queued = [new_run(db, a) for _ in range(2)]
    b_queued = [new_run(db, b) for _ in range(3)]
    with session_scope(db.db_url) as s:
        assert budget.sendable_queued(s, 0) == {*a_queued, *b_queued}
        assert budget.sendable_queued(s, 1) == {b_queued[0]}  # a: no slot; b: one, its oldest run
        assert budget.sendable_queued(s, 2) == {a_queued[0], *b_queued[:2]}

    # Through a real (filesystem) broker that holds no message for any of them: two rounds to resend.
    limited = db.model_copy(update={"team_max_running": 1, "data_dir": tmp_path / "broker-data",
                                    "database_url": db.db_url})
    limited.ensure_dirs()
    celery, suspects = make_celery(limited), set()
    assert resend_lost(limited, celery, suspects) == []
    assert resend_lost(limited, celery, suspects) == [b_queued[0]]
    lifecycle.finish(Lease(busy, 1, db), "succeeded")  # a slot of team a frees up
    assert resend_lost(limited, celery, suspects) == []
    assert resend_lost(limited, celery, suspects) == [a_queued[0]]  # b's run has its message now


# — the queued-seconds budget, at submission (the API on both databases) —

ADMIN = "gx_budget-admin"
TINY = {"model": {"hidden": [8]}, "train": {"epochs": 100, "batch_size": 100}}
RUN_S = 100 * estimator.default_seconds_per_epoch("mlp", "digits")  # TINY's cost by the default table


@pytest.fixture(params=["sqlite", "postgresql"])
def api(request, tmp_path):
    """An app whose only limit that can bind is 5 TINY runs' worth of estimated seconds."""
    with admin_app(request.param, tmp_path / "data", ADMIN, "gxnor_budget_api",
                   team_max_queued_seconds=5.5 * RUN_S) as service:
        yield service
    estimator.forget()


def queued(settings: Settings) -> int:
    with session_scope(settings.db_url) as s:
        return s.scalar(select(func.count()).select_from(Run).where(Run.status == "queued"))


def test_the_queued_seconds_budget_refuses_at_the_limit_with_retry_after(api):
    client, settings = api
    for _ in range(5):
        assert client.post("/api/v1/runs", json={"config": TINY}).status_code == 201
    refused = client.post("/api/v1/runs", json={"config": TINY})
    assert refused.status_code == 429
    assert 60 <= int(refused.headers["Retry-After"]) <= 3600
    detail = refused.json()["detail"]
    limit = f"{settings.team_max_queued_seconds:,.0f} s".replace(",", " ")
    assert f"({5 * RUN_S:.0f} s)" in detail and f"({RUN_S:.0f} s)" in detail and limit in detail, detail
    # A sweep that alone passes the budget: waiting would not help, 422 naming the sweep key.
    sweep = client.post("/api/v1/sweeps", json={"name": "big", "base": TINY, "grid": {"activations.r": [0.1, 0.2]},
                                                "seeds": [0, 1, 2]})
    assert sweep.status_code == 422 and sweep.json()["field"] == "grid", sweep.text
    assert "estimated" in sweep.json()["message"]
    assert queued(settings) == 5


def test_cancelled_and_running_work_leaves_the_budget(api):
    client, settings = api
    ids = [client.post("/api/v1/runs", json={"config": TINY}).json()["id"] for _ in range(5)]
    assert client.post("/api/v1/runs", json={"config": TINY}).status_code == 429
    assert client.post(f"/api/v1/runs/{ids[0]}/cancel").status_code == 200
    assert client.post("/api/v1/runs", json={"config": TINY}).status_code == 201
    assert claim(settings, ids[1]) == 1  # running work is no longer queued work
    assert client.post("/api/v1/runs", json={"config": TINY}).status_code == 201


def burst(client: TestClient, path: str, body: dict) -> Counter:
    return queue_burst(client, path, body, n=40)


def test_parallel_runs_never_pass_the_queued_seconds_budget(api):
    client, settings = api
    assert burst(client, "/api/v1/runs", {"config": TINY}) == {201: 5, 429: 35}
    assert queued(settings) == 5


def test_parallel_sweeps_count_whole_against_the_budget(api):
    client, settings = api
    sweep = {"name": "pair", "base": TINY, "grid": {"activations.r": [0.25, 0.5]}}  # two runs
    assert burst(client, "/api/v1/sweeps", sweep) == {201: 2, 429: 38}
    assert queued(settings) == 4


# — POST /api/v1/estimate —

def test_the_estimate_endpoint_for_a_config_and_a_sweep(api):
    client, settings = api
    one = client.post("/api/v1/estimate", json={"config": TINY})
    assert one.status_code == 200, one.text
    body = one.json()
    assert (body["runs"], body["epochs"]) == (1, 100) and body["total_seconds"] == pytest.approx(RUN_S)
    assert body["kinds"] == [{"arch": "mlp", "dataset": "digits", "device": "auto", "runs": 1, "epochs": 100,
                              "seconds_per_epoch": pytest.approx(RUN_S / 100), "total_seconds": pytest.approx(RUN_S),
                              "source": "default table", "learned_from": 0}]
    assert body["team"] == {"name": "default", "queued_runs": 0, "queued_seconds": 0.0, "running_runs": 0,
                            "max_queued_runs": settings.max_queued_runs,
                            "max_queued_seconds": pytest.approx(5.5 * RUN_S), "max_running": None, "fits": True}

    sweep = {"name": "s", "base": TINY, "grid": {"activations.r": [0.1, 0.2, 0.3]}, "seeds": [0, 1]}
    many = client.post("/api/v1/estimate", json={"sweep": sweep}).json()
    assert (many["runs"], many["epochs"]) == (6, 600) and many["total_seconds"] == pytest.approx(6 * RUN_S)
    assert many["team"]["fits"] is False  # 6 runs' worth: more than the budget
    assert queued(settings) == 0  # an estimate queues nothing

    both = client.post("/api/v1/estimate", json={"config": TINY, "sweep": sweep})
    assert both.status_code == 422
    assert client.post("/api/v1/estimate", json={"config": TINY, "team": "nope"}).status_code == 422


def test_the_estimate_endpoint_uses_what_finished_here(api):
    client, settings = api
    finished_run(settings, team(settings, "default"), 40.0, epochs=4, device="cpu")
    estimator.forget()
    kind = client.post("/api/v1/estimate", json={"config": TINY}).json()["kinds"][0]
    assert (kind["seconds_per_epoch"], kind["source"]) == (pytest.approx(10.0), "learned from 1 run")
