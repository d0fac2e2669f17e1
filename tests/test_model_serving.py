"""A finished run's exported model over REST (app/api/routes/models.py, docs/EXPORT.md "Serving"): the .gxn
download (directly and through a link) is gxnor_core.export of the stored checkpoint, scores equal the engine
run locally on that file, the profile's gate events equal the cost model's, and the limits: another team's run
404, an unfinished run 409, an unexportable one 422 naming the field, an oversized batch or body 413, a wrong
shape 422 naming ``inputs``, every scoring slot busy 503 with Retry-After."""

from __future__ import annotations

import asyncio
import io
import threading

import numpy as np
import pytest
from fastapi import HTTPException
from fastapi.testclient import TestClient

from app.db import session_scope
from app.exported import ModelService
from app.main import create_app
from app.models import Run
from app.settings import Settings
from gxnor_core.engine import Engine
from gxnor_core.export import export_checkpoint, read_model
from worker.runner import execute_run

ADMIN = "gx_model-serving-admin"
AS_ADMIN = {"Authorization": f"Bearer {ADMIN}"}
TINY = {"model": {"hidden": [16]}, "train": {"epochs": 2, "batch_size": 200}}
MAX_BATCH = 8


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    return Settings(data_dir=tmp_path_factory.mktemp("serving") / "data", admin_token=ADMIN,
                    score_max_batch=MAX_BATCH, max_body_bytes=100_000)


@pytest.fixture(scope="module")
def client(settings):
    with TestClient(create_app(settings), headers=AS_ADMIN) as c:
        yield c


@pytest.fixture(scope="module")
def bob(client) -> dict:
    """A user of another team."""
    assert client.post("/api/v1/teams", json={"name": "blue"}).status_code == 201
    resp = client.post("/api/v1/users", json={"name": "bob", "teams": ["blue"]})
    assert resp.status_code == 201, resp.text
    return {"Authorization": f"Bearer {resp.json()['token']['token']}"}


@pytest.fixture(scope="module")
def finished(client, settings) -> int:
    run_id = client.post("/api/v1/runs", json={"config": {**TINY, "name": "served"}}).json()["id"]
    assert execute_run(run_id, settings) == "succeeded"
    return run_id


def _submitted(client, settings, config: dict, status: str | None = None) -> int:
    """A run stored as submitted; with ``status`` marked finished without training (what the routes check
    first needs no checkpoint)."""
    resp = client.post("/api/v1/runs", json={"config": config})
    assert resp.status_code == 201, resp.text
    run_id = resp.json()["id"]
    if status:
        with session_scope(settings.db_url) as session:
            session.get(Run, run_id).status = status
    return run_id


def _npy(x: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, x)
    return buf.getvalue()


@pytest.mark.slow
def test_the_gxn_download_is_the_export_of_the_stored_checkpoint_directly_and_by_link(client, finished):
    run_id = finished
    best_ckpt = client.get(f"/api/v1/runs/{run_id}/checkpoint", params={"which": "best"}).content
    resp = client.get(f"/api/v1/runs/{run_id}/model")
    assert resp.status_code == 200, resp.text
    assert resp.content == export_checkpoint(best_ckpt, {"run_id": run_id, "which": "best"})  # best by default
    assert resp.headers["content-disposition"].endswith('.gxn"') and f"run-{run_id}-best-" in resp.headers[
        "content-disposition"]
    latest = client.get(f"/api/v1/runs/{run_id}/model", params={"which": "latest"})
    epochs_done = client.get(f"/api/v1/runs/{run_id}").json()["progress"]["epochs_done"]
    assert read_model(latest.content).meta["source"]["epoch"] == epochs_done
    assert read_model(latest.content).meta["source"]["which"] == "latest"

    link = client.post(f"/api/v1/runs/{run_id}/model/link", params={"which": "latest"})
    assert link.status_code == 201 and link.json()["url"].startswith("/api/v1/downloads/model/")
    anon = client.get(link.json()["url"], headers={"Authorization": ""})
    assert anon.status_code == 200 and anon.content == latest.content
    # A link serves its one kind of file: a model link is no checkpoint link, and the other way round.
    key = link.json()["url"].rsplit("/", 1)[1]
    assert client.get(f"/api/v1/downloads/{key}", headers={"Authorization": ""}).status_code == 404
    ckpt_key = client.post(f"/api/v1/runs/{run_id}/checkpoint/link").json()["url"].rsplit("/", 1)[1]
    assert client.get(f"/api/v1/downloads/model/{ckpt_key}", headers={"Authorization": ""}).status_code == 404


@pytest.mark.slow
def test_scores_equal_the_engine_run_locally_on_the_downloaded_file(client, finished):
    run_id = finished
    engine = Engine(client.get(f"/api/v1/runs/{run_id}/model").content)
    x = np.random.default_rng(0).uniform(-1, 1, (5, *engine.input_shape)).astype(np.float32)
    resp = client.post(f"/api/v1/runs/{run_id}/score", json={"inputs": x.tolist()})
    assert resp.status_code == 200, resp.text
    out = resp.json()
    local = engine.run(x)
    assert np.array_equal(np.asarray(out["logits"], dtype=np.float32), local.logits.numpy())
    assert out["predictions"] == local.logits.argmax(1).tolist() and out["n"] == 5 and out["which"] == "best"
    assert out["events_total"] == local.events and out["latency_ms"] > 0 and out["kernel_tuning_ms"] >= 0
    again = client.post(f"/api/v1/runs/{run_id}/score", json={"inputs": x.tolist()}).json()
    assert again["kernel_tuning_ms"] == 0 and again["logits"] == out["logits"]  # this size was measured once
    # Each sample's gate events are what the engine executes on that sample alone, and they add up.
    assert out["events"] == [engine.run(x[i:i + 1]).events for i in range(5)]
    assert {k: sum(e[k] for e in out["events"]) for k in local.events} == local.events

    # A .npy body, flat features, the latest checkpoint's model.
    latest = Engine(client.get(f"/api/v1/runs/{run_id}/model", params={"which": "latest"}).content)
    flat = x[:3].reshape(3, -1)
    resp = client.post(f"/api/v1/runs/{run_id}/score", params={"which": "latest"}, content=_npy(flat),
                       headers={"Content-Type": "application/x-npy"})
    assert resp.status_code == 200, resp.text
    assert np.array_equal(np.asarray(resp.json()["logits"], dtype=np.float32), latest(flat).numpy())


@pytest.mark.slow
def test_batch_body_and_shape_limits(client, finished):
    url = f"/api/v1/runs/{finished}/score"
    shape = tuple(read_model(client.get(f"/api/v1/runs/{finished}/model").content).meta["input_shape"])
    ok = np.zeros((MAX_BATCH, *shape), np.float32)
    assert client.post(url, content=_npy(ok), headers={"Content-Type": "application/x-npy"}).status_code == 200
    over = client.post(url, content=_npy(np.zeros((MAX_BATCH + 1, *shape), np.float32)),
                       headers={"Content-Type": "application/x-npy"})
    assert over.status_code == 413 and "GXNOR_SCORE_MAX_BATCH" in over.json()["detail"]
    big = client.post(url, content=b"\0" * 100_001, headers={"Content-Type": "application/x-npy"})
    assert big.status_code == 413 and "too large" in big.json()["detail"]

    c, h, w = shape
    for bad in ([[0.0] * 5], np.zeros((2, c, h, w + 1)).tolist(), np.zeros((2, c * h * w + 1)).tolist(),
                [0.0, 1.0], [[[0.0] * w] * h, [[0.0] * w] * (h - 1)], [["a"] * (c * h * w)], []):
        resp = client.post(url, json={"inputs": bad})
        assert resp.status_code == 422 and resp.json()["field"] == "inputs", (bad, resp.text)
    for body, field in (({"x": []}, "inputs"), ({"inputs": [[0.0] * (c * h * w)], "extra": 1}, "extra")):
        resp = client.post(url, json=body)
        assert resp.status_code == 422 and resp.json()["field"] == field, resp.text
    nan = np.full((1, *shape), np.nan, np.float32)
    resp = client.post(url, content=_npy(nan), headers={"Content-Type": "application/x-npy"})
    assert resp.status_code == 422 and "NaN" in resp.json()["message"]
    resp = client.post(url, content=b"not an array", headers={"Content-Type": "application/x-npy"})
    assert resp.status_code == 422 and resp.json()["field"] == "inputs"


@pytest.mark.slow
def test_the_profile_measures_this_model_and_its_gate_events_equal_the_cost_models(client, finished):
    data = client.get(f"/api/v1/runs/{finished}/model").content
    resp = client.get(f"/api/v1/runs/{finished}/model/profile")
    assert resp.status_code == 200, resp.text
    prof = resp.json()
    assert prof["size_bytes"] == len(data)
    # float32: every weight, and γ, β, mean, variance for each of the 16 hidden and 10 output channels
    assert prof["fp32_bytes"] == 4 * (sum(layer["weights"] for layer in prof["layers"]) + 4 * (16 + prof["classes"]))
    assert [row["batch"] for row in prof["latency"]] == [1, 64]
    assert all(row["ms_per_sample"] > 0 for row in prof["latency"])
    assert [layer["role"] for layer in prof["layers"]] == ["real_input", "output"]
    # The engine's executed gate events on the probe batch are the probes' counts of that epoch's model.
    costs = client.get(f"/api/v1/runs/{finished}/costs", params={"epoch": prof["epoch"]}).json()
    run_scheme = next(s for s in costs["schemes"] if s["name"] == "run")
    counted = {row["layer"]: row["xnor"] for row in run_scheme["layers"] if row["xnor"]}
    assert counted and prof["events"]["per_sample"] == pytest.approx(counted, rel=1e-12)
    assert client.get(f"/api/v1/runs/{finished}/model/profile").json() == prof  # measured once per model


@pytest.mark.slow
def test_another_teams_run_is_404_on_every_model_route(client, finished, bob):
    for method, path in (("GET", "model"), ("POST", "model/link"), ("GET", "model/profile"), ("POST", "score")):
        resp = client.request(method, f"/api/v1/runs/{finished}/{path}", headers=bob, json={"inputs": [[0.0]]})
        assert resp.status_code == 404 and "served" not in resp.text, (method, path)


def test_unfinished_runs_are_409_and_unexportable_networks_422_naming_the_field(client, settings):
    queued = _submitted(client, settings, {**TINY, "name": "queued"})
    for method, path in (("GET", "model"), ("POST", "model/link"), ("GET", "model/profile"), ("POST", "score")):
        resp = client.request(method, f"/api/v1/runs/{queued}/{path}", json={"inputs": [[0.0]]})
        assert resp.status_code == 409 and "finished" in resp.json()["detail"], (path, resp.text)
    cases = {
        "weights.discrete": {"weights": {"discrete": False}, "activations": {"discrete": False}},
        "activations.discrete": {"activations": {"discrete": False}},
        "weights.N": {"weights": {"N": 2}},
        "activations.N": {"activations": {"N": 3}},
        "weights.training": {"weights": {"training": "latent"}},
        "model.hidden": {"model": {"hidden": []}},
    }
    for field, change in cases.items():
        run_id = _submitted(client, settings, {**TINY, **change, "name": field}, status="succeeded")
        for method, path in (("GET", "model"), ("POST", "model/link"), ("GET", "model/profile")):
            resp = client.request(method, f"/api/v1/runs/{run_id}/{path}")
            assert resp.status_code == 422 and resp.json()["field"] == f"config.{field}", (field, path, resp.text)
    # A finished run without a checkpoint (it failed before its first epoch): 404, as its checkpoint.
    empty = _submitted(client, settings, {**TINY, "name": "empty"}, status="failed")
    assert client.get(f"/api/v1/runs/{empty}/model").status_code == 404


def test_every_busy_slot_turns_a_request_away_with_503_and_retry_after(tmp_path):
    service = ModelService(Settings(data_dir=tmp_path, score_concurrency=1))
    started, release = threading.Event(), threading.Event()

    def hold():
        started.set()
        release.wait(10)
        return "done"

    async def scenario():
        first = asyncio.ensure_future(service.submit(hold))
        while not started.is_set():
            await asyncio.sleep(0.01)
        with pytest.raises(HTTPException) as refused:
            await service.submit(lambda: "never")
        release.set()
        assert await first == "done"
        assert await service.submit(lambda: "next") == "next"  # the slot is free again
        return refused.value

    try:
        refused = asyncio.run(scenario())
    finally:
        release.set()
        service.close()
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
