"""GET /compare's answers for grouping and a wall-time axis (a real SQLite file; runs trained in-process by the
real runner): each run's seconds of training per epoch, each run's sweep point, and another team's runs a 404."""

import itertools

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.schemas import CompareOut
from app.settings import Settings
from worker.runner import execute_run

ADMIN = "gx_compare-test-admin"
BASE = {"project": "cmp", "model": {"hidden": [16]}, "train": {"epochs": 2, "batch_size": 200}}


@pytest.fixture()
def settings(tmp_path):
    return Settings(data_dir=tmp_path / "data", admin_token=ADMIN, max_sweep_runs=20)


@pytest.fixture()
def client(settings):
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {ADMIN}"}) as c:
        yield c


def submit(client, name: str, **train) -> int:
    resp = client.post("/api/v1/runs", json={"config": {**BASE, "name": name, "train": {**BASE["train"], **train}}})
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def test_wall_time_is_the_running_sum_of_epoch_seconds_aligned_with_the_epochs(client, settings):
    a, b = submit(client, "two"), submit(client, "three", epochs=3)
    assert execute_run(a, settings) == "succeeded" and execute_run(b, settings) == "succeeded"
    out = client.get("/api/v1/compare", params={"ids": f"{a},{b}", "metric": "val_error"}).json()
    CompareOut.model_validate(out)
    assert out["epochs"] == [1, 2, 3]
    for run_id, n in ((a, 2), (b, 3)):
        seconds = [m["epoch_seconds"] for m in client.get(f"/api/v1/runs/{run_id}/metrics").json()["epochs"]]
        assert len(seconds) == n and all(s > 0 for s in seconds)
        expected = list(itertools.accumulate(seconds)) + [None] * (3 - n)  # no epoch 3: no time either
        assert out["wall_time"][str(run_id)] == pytest.approx(expected)
    assert [r["sweep"] for r in out["runs"]] == [None, None]  # not from a sweep

    thinned = client.get("/api/v1/compare", params={"ids": f"{a},{b}", "points": 4}).json()
    assert len(thinned["wall_time"][str(b)]) == len(thinned["epochs"])


def test_each_run_names_its_sweep_point_and_another_teams_runs_stay_hidden(client):
    spec = {"name": "pts", "base": BASE, "grid": {"activations.r": [0.25, 1.0]}, "seeds": [0, 1]}
    sweep = client.post("/api/v1/sweeps", json=spec).json()
    lone = submit(client, "lone")
    ids = [*sweep["run_ids"], lone]
    out = client.get("/api/v1/compare", params={"ids": ",".join(map(str, ids))}).json()  # queued runs compare too
    CompareOut.model_validate(out)
    points = [r["sweep"] for r in out["runs"]]
    assert points[:4] == [{"id": sweep["id"], "point": g, "overrides": {"activations.r": r}}
                          for g, r in ((0, 0.25), (0, 0.25), (1, 1.0), (1, 1.0))]
    assert points[4] is None
    assert out["wall_time"] == {str(i): [] for i in ids} and out["epochs"] == []

    client.post("/api/v1/teams", json={"name": "other"})
    token = client.post("/api/v1/users", json={"name": "eve", "teams": ["other"]}).json()["token"]["token"]
    eve = {"Authorization": f"Bearer {token}"}
    asked = {"ids": f"{sweep['run_ids'][0]},{lone}"}
    assert client.get("/api/v1/compare", params=asked, headers=eve).status_code == 404
    hidden = client.get("/api/v1/compare", params={**asked, "skip_missing": "true"}, headers=eve).json()
    assert hidden["runs"] == [] and hidden["wall_time"] == {} and hidden["missing"] == [sweep["run_ids"][0], lone]
