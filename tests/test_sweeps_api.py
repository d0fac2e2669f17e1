"""Sweeps through the REST API on a real SQLite file; their runs are trained by the real runner in-process."""

import csv
import io
import statistics

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from worker.runner import execute_run

ADMIN = "gx_sweep-test-admin"
BASE = {"project": "sweeps", "model": {"hidden": [16]}, "train": {"epochs": 2, "batch_size": 200}}
GRID = {"name": "r×N", "base": BASE, "grid": {"activations.r": [0.25, 1.0], "weights.N": [1, 2]}, "seeds": [0, 1]}


@pytest.fixture()
def settings(tmp_path):
    return Settings(data_dir=tmp_path / "data", admin_token=ADMIN, max_sweep_runs=20, max_queued_runs=30,
                    max_epochs=100)


@pytest.fixture()
def client(settings):
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {ADMIN}"}) as c:
        yield c


def nothing_stored(client):
    assert client.get("/api/v1/sweeps").json()["total"] == 0
    assert client.get("/api/v1/runs").json()["total"] == 0


def test_a_grid_sweep_queues_every_run_then_aggregates_exactly(client, settings):
    resp = client.post("/api/v1/sweeps", json=GRID)
    assert resp.status_code == 201, resp.text
    sweep = resp.json()
    assert sweep["total"] == 8 and len(sweep["run_ids"]) == 8 and sweep["status"] == "queued"
    assert sweep["fields"] == ["activations.r", "weights.N"] and sweep["counts"]["queued"] == 8
    runs = client.get("/api/v1/runs", params={"sweep": sweep["id"], "sort": "created_at", "order": "asc",
                                              "limit": 50}).json()["items"]
    assert sorted(r["id"] for r in runs) == sorted(sweep["run_ids"])
    configs = {r["id"]: r["config"] for r in runs}
    # Point-major, seed-minor, first field slowest.
    expect = [(r, n, s) for r in (0.25, 1.0) for n in (1, 2) for s in (0, 1)]
    got = [(configs[i]["activations"]["r"], configs[i]["weights"]["N"], configs[i]["train"]["seed"])
           for i in sweep["run_ids"]]
    assert got == expect and all(configs[i]["project"] == "sweeps" for i in sweep["run_ids"])

    for run_id in sweep["run_ids"][:3]:  # part-way: the first config is complete, the second half done
        assert execute_run(run_id, settings) == "succeeded"
    part = client.get(f"/api/v1/sweeps/{sweep['id']}").json()
    assert part["status"] == "running" and part["counts"]["succeeded"] == 3
    assert part["progress"] == pytest.approx(3 / 8)
    assert [r["n_done"] for r in part["results"]] == [2, 1, 0, 0]
    for run_id in sweep["run_ids"][3:]:
        assert execute_run(run_id, settings) == "succeeded"

    detail = client.get(f"/api/v1/sweeps/{sweep['id']}").json()
    assert detail["status"] == "finished" and detail["progress"] == 1.0 and detail["counts"]["succeeded"] == 8
    summaries = {r["id"]: r["summary"] for r in detail["runs"]}
    assert len(detail["results"]) == 4
    for g, row in enumerate(detail["results"]):
        members = [r for r in detail["runs"] if r["group"] == g]
        assert row["overrides"] == members[0]["overrides"] and row["seeds"] == [0, 1] and row["n_done"] == 2
        for metric in ("best_val_error", "test_error", "activation_sparsity", "gate_event_rate"):
            values = [summaries[m["id"]][metric] for m in members]
            assert row["metrics"][metric]["mean"] == pytest.approx(statistics.fmean(values))
            assert row["metrics"][metric]["std"] == pytest.approx(statistics.stdev(values))
    # The Pareto front: no config off the front beats one on it in both test error and XNOR-layer gate-event rate.
    front = set(detail["pareto"])
    assert front

    def point(g):
        m = detail["results"][g]["metrics"]
        return m["xnor_gate_event_rate"]["mean"], m["test_error"]["mean"]

    for g in front:
        assert not any(point(o)[0] <= point(g)[0] and point(o)[1] <= point(g)[1] and point(o) != point(g)
                       for o in range(4))
    # CSV: the same table.
    table = list(csv.DictReader(io.StringIO(client.get(f"/api/v1/sweeps/{sweep['id']}/results.csv").text)))
    assert [(float(r["activations.r"]), int(r["weights.N"])) for r in table] == [(0.25, 1), (0.25, 2), (1.0, 1),
                                                                                  (1.0, 2)]
    assert [float(r["test_error_mean"]) for r in table] == pytest.approx(
        [row["metrics"]["test_error"]["mean"] for row in detail["results"]])
    listed = client.get("/api/v1/sweeps").json()
    assert listed["total"] == 1 and listed["items"][0]["status"] == "finished"
    assert client.post(f"/api/v1/sweeps/{sweep['id']}/cancel").status_code == 409


def test_one_invalid_value_queues_nothing_and_names_the_field_and_value(client):
    bad = {**GRID, "grid": {"activations.r": [0.5, 7.0]}}
    resp = client.post("/api/v1/sweeps", json=bad)
    assert resp.status_code == 422 and resp.json()["field"] == "grid.activations.r"
    assert "7" in resp.json()["message"]
    nothing_stored(client)
    # The server's own limits, blamed on the swept key: max_epochs is 100 here.
    resp = client.post("/api/v1/sweeps", json={**GRID, "grid": {"train.epochs": [2, 500]}})
    assert resp.status_code == 422 and resp.json()["field"] == "grid.train.epochs" and "500" in resp.json()["message"]
    resp = client.post("/api/v1/sweeps", json={"name": "l", "base": BASE,
                                               "list": [{"dst.m": 1.0}, {"train.epochs": 500}]})
    assert resp.status_code == 422 and resp.json()["field"] == "list.1.train.epochs"
    resp = client.post("/api/v1/sweeps", json={**GRID, "base": {**BASE, "dataset": {"root": "/etc"}}})
    assert resp.status_code == 422 and resp.json()["field"] == "base.dataset.root"
    resp = client.post("/api/v1/sweeps", json={**GRID, "grid": {"train.batch_size": [100, 2000]}})  # digits: 1294
    assert resp.status_code == 422 and resp.json()["field"] == "grid.train.batch_size"
    assert "2000" in resp.json()["message"]
    # Too many runs (cap 20) and an unknown field.
    resp = client.post("/api/v1/sweeps", json={**GRID, "seeds": [0, 1, 2, 3, 4, 5]})
    assert resp.status_code == 422 and resp.json()["field"] == "grid" and "24 runs" in resp.json()["message"]
    resp = client.post("/api/v1/sweeps", json={**GRID, "grid": {"activations.rr": [1]}})
    assert resp.status_code == 422 and resp.json()["field"] == "grid.activations.rr"
    nothing_stored(client)


def test_queue_cap_counts_the_whole_sweep(client):
    for _ in range(2):
        assert client.post("/api/v1/sweeps", json=GRID).status_code == 201  # 16 queued
    resp = client.post("/api/v1/sweeps", json={**GRID, "seeds": [0, 1, 2, 3]})  # +16 > 30
    assert resp.status_code == 429 and "adds 16" in resp.json()["detail"]
    assert client.get("/api/v1/sweeps").json()["total"] == 2 and client.get("/api/v1/runs").json()["total"] == 16


def test_random_and_preset_sweeps(client):
    spec = {"name": "rand", "base": BASE, "random": {"activations.r": {"min": 0, "max": 2},
                                                      "activations.window": {"choices": ["rect", "tri"]}},
            "budget": 5, "seed": 3}
    a = client.post("/api/v1/sweeps", json=spec).json()
    b = client.post("/api/v1/sweeps", json=spec).json()
    pts = [[r["overrides"] for r in client.get(f"/api/v1/sweeps/{s['id']}").json()["runs"]] for s in (a, b)]
    assert pts[0] == pts[1] and len(pts[0]) == 5 and all(0 <= p["activations.r"] <= 2 for p in pts[0])
    preset = client.post("/api/v1/sweeps", json={"name": "m", "preset": "paper-m", "seeds": [0],
                                                 "base": {"train": {"epochs": 1}}})
    assert preset.status_code == 201, preset.text
    got = preset.json()
    assert got["fields"] == ["dst.m"] and got["total"] == 6  # 5 values + the full-precision baseline
    assert got["spec"]["grid"] == {"dst.m": [0.5, 1.0, 3.0, 10.0, 30.0]} and got["spec"]["baseline"] is True
    runs = client.get(f"/api/v1/sweeps/{got['id']}").json()["runs"]
    assert runs[-1]["overrides"] == {"weights.discrete": False, "activations.discrete": False}
    cat = client.get("/api/v1/catalog").json()
    assert set(cat["sweep_presets"]) >= {"paper-r", "paper-a-window", "paper-m", "paper-n-grid"}


def test_cancel_stops_what_has_not_finished_and_sweeps_are_team_scoped(client, settings):
    sweep = client.post("/api/v1/sweeps", json=GRID).json()
    assert execute_run(sweep["run_ids"][0], settings) == "succeeded"
    out = client.post(f"/api/v1/sweeps/{sweep['id']}/cancel").json()
    assert out["status"] == "cancelled" and out["counts"] == {"queued": 0, "running": 0, "succeeded": 1,
                                                              "failed": 0, "cancelled": 7}
    assert execute_run(sweep["run_ids"][1], settings) == "skipped"  # its message arrives late: nothing runs
    # Another team sees none of it.
    admin = {"Authorization": f"Bearer {ADMIN}"}
    client.post("/api/v1/teams", json={"name": "other"}, headers=admin)
    token = client.post("/api/v1/users", json={"name": "eve", "teams": ["other"]}).json()["token"]["token"]
    eve = {"Authorization": f"Bearer {token}"}
    for method, path in (("GET", ""), ("GET", "/results.csv"), ("POST", "/cancel")):
        assert client.request(method, f"/api/v1/sweeps/{sweep['id']}{path}", headers=eve).status_code == 404
    assert client.get("/api/v1/sweeps", headers=eve).json()["total"] == 0
    assert client.get("/api/v1/runs", params={"sweep": sweep["id"]}, headers=eve).json()["total"] == 0


def test_a_sweep_larger_than_the_whole_queue_is_a_422_not_a_429(tmp_path):
    settings = Settings(data_dir=tmp_path / "small", admin_token=ADMIN, max_queued_runs=5)
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {ADMIN}"}) as client:
        resp = client.post("/api/v1/sweeps", json=GRID)  # 8 runs > 5: waiting would never help
        assert resp.status_code == 422 and resp.json()["field"] == "grid" and "at most 5" in resp.json()["message"]
        nothing_stored(client)
