"""Re-run and resume (app.reruns, ``POST /runs/{id}/rerun`` and ``/resume``) through the API and the real worker
path (worker.runner.execute_run), on a real SQLite file and a real PostgreSQL database: a re-run is a new queued
run with the same config; a resumed run goes on from its checkpoint's epoch, keeping its epochs; the refusals
(409, the queue cap's 429) and another team's 404."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.db import session_scope
from app.models import BatchPoint, EpochMetric, Run
from app.schemas import RunOut
from app.settings import Settings
from tests.pg import app_with_two_teams
from worker.runner import execute_run

pytestmark = pytest.mark.slow  # every test trains runs through the worker
ADMIN = "gx_rerun-resume-admin"
CONFIG = {"name": "digits-mlp", "project": "restarts", "model": {"hidden": [16]},
          "train": {"epochs": 3, "batch_size": 50}}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def service(request, tmp_path_factory):
    """The app (the admin, team default, is the client's caller) and a token of bob in team blue."""
    # progress_interval_s: every batch's progress (and loss point) written
    with app_with_two_teams(request.param, tmp_path_factory.mktemp(request.param), ADMIN, "gxnor_restarts",
                            progress_interval_s=1e-6) as service:
        yield service


def submit(client: TestClient, **train) -> int:
    resp = client.post("/api/v1/runs", json={"config": {**CONFIG, "train": {**CONFIG["train"], **train}},
                                             "team": "default"})
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def epochs_done(settings: Settings, run_id: int) -> int:
    with session_scope(settings.db_url) as s:
        return s.scalar(select(Run.epochs_done).where(Run.id == run_id))


BATCHES = 25  # an epoch of CONFIG: digits' 1 250 training images in batches of 50


def stop_after(epochs: int, batches: int, action):
    """A worker's ``should_shutdown`` — asked before every batch — that does ``action`` once the run has trained
    ``epochs`` epochs and ``batches`` batches of the next one."""
    asked = []

    def check() -> bool:
        asked.append(True)
        if len(asked) == epochs * BATCHES + batches + 1:
            action()
        return False
    return check


def boom():
    raise RuntimeError("out of luck")  # a training failure: the worker records the run failed


def failed_with_checkpoint(service, epochs: int = 2) -> int:
    """A run the real worker trained ``epochs`` epochs and 10 batches of, then failed."""
    client, settings, _ = service
    run_id = submit(client)
    assert execute_run(run_id, settings, stop_after(epochs, 10, boom)) == "failed"
    return run_id


def recorded_epochs(settings: Settings, run_id: int) -> list[int]:
    with session_scope(settings.db_url) as s:
        return list(s.scalars(select(EpochMetric.epoch).where(EpochMetric.run_id == run_id)
                              .order_by(EpochMetric.epoch)))


def test_rerun_makes_a_new_queued_run_with_the_same_config(service):
    client, _, _ = service
    original = failed_with_checkpoint(service, epochs=1)
    assert client.patch(f"/api/v1/runs/{original}", json={"tags": ["baseline"]}).status_code == 200
    got = client.post(f"/api/v1/runs/{original}/rerun")
    assert got.status_code == 201, got.text
    new = RunOut.model_validate(got.json())
    before = client.get(f"/api/v1/runs/{original}").json()
    assert new.id != original and new.status == "queued" and new.attempt == 0
    assert new.progress.epochs_done == 0 and new.progress.total_epochs == 3
    assert new.project == "restarts" and new.team == "default" and new.tags == ["baseline"]
    assert new.name == f"digits-mlp (re-run of #{original})" and new.notes == f"Re-run of run #{original}."
    assert new.config == before["config"]
    assert before["status"] == "failed" and before["progress"]["epochs_done"] == 1  # the original is untouched
    # a re-run of the re-run names the run it copies, not a chain
    assert client.post(f"/api/v1/runs/{new.id}/cancel").json()["status"] == "cancelled"
    again = client.post(f"/api/v1/runs/{new.id}/rerun").json()
    assert again["name"] == f"digits-mlp (re-run of #{new.id})"
    assert [r["id"] for r in client.get("/api/v1/runs", params={"q": f"re-run of run #{original}"}).json()[
        "items"]] == [new.id]


def test_resume_continues_a_failed_run_from_its_checkpoint(service):
    client, settings, _ = service
    run_id = failed_with_checkpoint(service, epochs=2)
    first = client.get(f"/api/v1/runs/{run_id}").json()
    assert (first["status"], first["attempt"], first["progress"]["epochs_done"]) == ("failed", 1, 2)
    assert first["error"].startswith("RuntimeError")
    partial = client.get(f"/api/v1/runs/{run_id}/batches", params={"since": 3}).json()["points"]
    assert [p["epoch"] for p in partial] == [3] * 10  # the 10 batches of epoch 3 it trained before failing
    got = client.post(f"/api/v1/runs/{run_id}/resume")
    assert got.status_code == 200, got.text
    queued = got.json()
    assert (queued["status"], queued["error"], queued["finished_at"], queued["progress"]["epochs_done"]) == (
        "queued", None, None, 2)
    assert execute_run(run_id, settings) == "succeeded"
    done = client.get(f"/api/v1/runs/{run_id}").json()
    assert (done["status"], done["attempt"], done["info"]["start_epoch"]) == ("succeeded", 2, 2)
    assert recorded_epochs(settings, run_id) == [1, 2, 3]  # epochs 1-2 kept, 3 trained once
    # the failed attempt's points of its unfinished epoch 3 were replaced, not added to
    points = client.get(f"/api/v1/runs/{run_id}/batches").json()["points"]
    per_epoch = [sum(p["epoch"] == e for p in points) for e in (1, 2, 3)]
    assert per_epoch == [BATCHES] * 3  # a point a batch


def test_resume_continues_a_cancelled_run(service):
    client, settings, _ = service
    run_id = submit(client)
    # the cancel is asked during epoch 2; the worker reads it with its next progress write and stops
    cancel = stop_after(1, 5, lambda: client.post(f"/api/v1/runs/{run_id}/cancel"))
    assert execute_run(run_id, settings, cancel) == "cancelled"
    assert epochs_done(settings, run_id) == 1
    resumed = client.post(f"/api/v1/runs/{run_id}/resume").json()
    assert (resumed["status"], resumed["cancel_requested"]) == ("queued", False)
    assert execute_run(run_id, settings) == "succeeded"
    done = client.get(f"/api/v1/runs/{run_id}").json()
    assert done["info"]["start_epoch"] == 1 and done["progress"]["epochs_done"] == 3
    assert recorded_epochs(settings, run_id) == [1, 2, 3]


def test_resume_is_refused_unless_failed_or_cancelled_with_a_checkpoint(service):
    client, settings, _ = service
    queued = submit(client)
    got = client.post(f"/api/v1/runs/{queued}/resume")
    assert got.status_code == 409 and "only a failed or cancelled run" in got.json()["detail"]
    got = client.post(f"/api/v1/runs/{queued}/rerun")
    assert got.status_code == 409 and "once it has finished" in got.json()["detail"]
    client.post(f"/api/v1/runs/{queued}/cancel")  # cancelled while queued: no epoch, no checkpoint
    got = client.post(f"/api/v1/runs/{queued}/resume")
    assert got.status_code == 409 and "no checkpoint" in got.json()["detail"]
    assert client.get(f"/api/v1/runs/{queued}").json()["status"] == "cancelled"
    succeeded = submit(client, epochs=1)
    assert execute_run(succeeded, settings) == "succeeded"
    assert client.post(f"/api/v1/runs/{succeeded}/resume").status_code == 409
    assert client.post(f"/api/v1/runs/{succeeded}/rerun").status_code == 201  # a finished run can be re-run


def test_rerun_and_resume_respect_the_team_queue_cap(service):
    client, settings, _ = service
    run_id = failed_with_checkpoint(service, epochs=1)
    with session_scope(settings.db_url) as s:
        queued = s.scalar(select(func.count()).select_from(Run).where(Run.status == "queued"))
    cap = settings.max_queued_runs
    settings.max_queued_runs = queued  # the team's queue is full
    try:
        for action in ("rerun", "resume"):
            got = client.post(f"/api/v1/runs/{run_id}/{action}")
            assert got.status_code == 429 and got.headers["Retry-After"], got.text
        assert client.get(f"/api/v1/runs/{run_id}").json()["status"] == "failed"
    finally:
        settings.max_queued_runs = cap
    assert client.post(f"/api/v1/runs/{run_id}/resume").status_code == 200


def test_another_teams_run_is_not_found(service):
    client, settings, bob = service
    run_id = failed_with_checkpoint(service, epochs=1)
    for path in (f"/api/v1/runs/{run_id}/rerun", f"/api/v1/runs/{run_id}/resume"):
        got = client.post(path, headers=bob)
        assert got.status_code == 404 and got.json()["detail"] == f"run {run_id} not found"
    assert client.get(f"/api/v1/runs/{run_id}/batches", headers=bob).status_code == 404
    assert client.get(f"/api/v1/runs/{run_id}").json()["status"] == "failed"
    with session_scope(settings.db_url) as s:
        assert s.scalar(select(func.count()).select_from(BatchPoint).where(BatchPoint.run_id == run_id))
    for path in ("/api/v1/runs/987654/rerun", "/api/v1/runs/987654/resume"):
        assert client.post(path).status_code == 404
