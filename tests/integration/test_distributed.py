"""Distributed mode: `gxnor api` + `gxnor worker`s on Redis and PostgreSQL, driven over HTTP."""

import signal
import time
import uuid

import httpx
import pytest
from sqlalchemy import create_engine, text

from .conftest import start_cluster, wait_for


@pytest.fixture()
def cluster(tmp_path, pg_url, redis_url, procs):
    """An API and ``add_worker()``, all on one fresh database and queue."""
    client, add_worker = start_cluster(tmp_path, procs, GXNOR_DATABASE_URL=pg_url, GXNOR_BROKER_URL=redis_url,
                                       GXNOR_QUEUE=f"gxnor-it-{uuid.uuid4().hex[:8]}")
    yield client, add_worker, pg_url
    client.close()


def submit(client, name, epochs, hidden=(32,)):
    config = {"name": name, "model": {"hidden": list(hidden)}, "train": {"epochs": epochs, "batch_size": 50}}
    resp = client.post("/api/v1/runs", json={"config": config})
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def status(client, run_id):
    return client.get(f"/api/v1/runs/{run_id}").json()


def test_a_run_submitted_over_http_is_recorded_epoch_by_epoch_in_postgres(cluster):
    client, add_worker, pg_url = cluster
    add_worker("w1")
    run_id = submit(client, "it-basic", epochs=3)
    run = wait_for(lambda: (r := status(client, run_id))["status"] in ("succeeded", "failed") and r,
                   what="the run to finish")
    assert run["status"] == "succeeded", run["error"]

    engine = create_engine(pg_url)
    with engine.connect() as c:
        epochs = c.execute(text("SELECT epoch, metrics FROM epoch_metrics WHERE run_id=:r ORDER BY epoch"),
                           {"r": run_id}).all()
        layers = c.execute(text("SELECT epoch, layer, record FROM layer_records WHERE run_id=:r "
                                "ORDER BY epoch, layer"), {"r": run_id}).all()
        artifacts = c.execute(text("SELECT kind, epoch FROM artifacts WHERE run_id=:r"), {"r": run_id}).all()
        row = c.execute(text("SELECT status, epochs_done, attempt FROM runs WHERE id=:r"), {"r": run_id}).one()
    engine.dispose()
    assert [e for e, _ in epochs] == [1, 2, 3]
    for epoch, metrics in epochs:
        assert metrics["epoch"] == epoch and 0 <= metrics["val_error"] <= 1
    assert [(e, n) for e, n, _ in layers] == [(e, n) for e in (1, 2, 3) for n in ("fc1", "fc2")]
    for _, _, rec in layers:
        assert sum(rec["weight_states"]) == rec["num_weights"]
        assert rec["transitions"] <= rec["num_weights"]
    # the latest epoch's checkpoint, and the best-validation epoch's model (the first epoch with the lowest error)
    best = min(epochs, key=lambda e: (e[1]["val_error"], e[0]))[0]
    assert best == run["summary"]["best_epoch"]
    assert sorted(artifacts) == [("best", best), ("checkpoint", 3)]
    assert tuple(row) == ("succeeded", 3, 1)
    api_metrics = client.get(f"/api/v1/runs/{run_id}/metrics").json()["epochs"]
    assert api_metrics == [m for _, m in epochs]


def test_two_workers_train_two_runs_at_once(cluster):
    client, add_worker, _ = cluster
    add_worker("w1")
    add_worker("w2")
    a = submit(client, "it-a", epochs=30, hidden=(256, 256))
    b = submit(client, "it-b", epochs=30, hidden=(256, 256))
    both = wait_for(lambda: (ra := status(client, a))["status"] == "running"
                    and (rb := status(client, b))["status"] == "running" and (ra, rb),
                    what="both runs running at the same time")
    assert both[0]["worker"] != both[1]["worker"]
    for run_id in (a, b):
        run = wait_for(lambda run_id=run_id: (r := status(client, run_id))["status"] in ("succeeded", "failed") and r,
                       timeout=240, what="the runs to finish")
        assert run["status"] == "succeeded", run["error"]
        assert [m["epoch"] for m in client.get(f"/api/v1/runs/{run_id}/metrics").json()["epochs"]] == list(range(1, 31))


def test_cancel_stops_a_running_run_and_keeps_its_epochs(cluster):
    client, add_worker, _ = cluster
    worker = add_worker("w1")
    run_id = submit(client, "it-cancel", epochs=500, hidden=(256, 256))
    wait_for(lambda: status(client, run_id)["progress"]["epochs_done"] >= 2, what="two epochs")
    assert client.post(f"/api/v1/runs/{run_id}/cancel").json()["cancel_requested"] is True
    run = wait_for(lambda: (r := status(client, run_id))["status"] == "cancelled" and r, timeout=30,
                   what="the run to stop")
    kept = client.get(f"/api/v1/runs/{run_id}/metrics").json()["epochs"]
    assert len(kept) == run["progress"]["epochs_done"] >= 2
    assert [m["epoch"] for m in kept] == list(range(1, len(kept) + 1))
    assert client.post(f"/api/v1/runs/{run_id}/cancel").status_code == 409
    # The worker is free again: the next run trains.
    nxt = submit(client, "it-after-cancel", epochs=2)
    assert wait_for(lambda: status(client, nxt)["status"] == "succeeded", what="the next run")
    assert worker.stop(signal.SIGTERM) == 0


def test_a_sweep_fans_out_over_two_workers_and_cancel_stops_the_rest(cluster):
    client, add_worker, pg_url = cluster
    add_worker("w1")
    add_worker("w2")
    base = {"model": {"hidden": [32]}, "train": {"epochs": 3, "batch_size": 50}}
    resp = client.post("/api/v1/sweeps", json={"name": "it-sweep", "base": base,
                                               "grid": {"activations.r": [0.25, 1.0], "weights.N": [1, 2, 3]}})
    assert resp.status_code == 201, resp.text
    sweep = resp.json()
    assert sweep["total"] == 6
    done = wait_for(lambda: (s := client.get(f"/api/v1/sweeps/{sweep['id']}").json())["status"] == "finished" and s,
                    timeout=300, what="the sweep to finish")
    assert done["counts"]["succeeded"] == 6 and len({r["id"] for r in done["runs"]}) == 6
    engine = create_engine(pg_url)
    with engine.connect() as conn:  # both workers took part, and every run recorded exactly its 3 epochs
        workers = conn.execute(text("SELECT count(DISTINCT worker) FROM runs WHERE sweep_id = :s"),
                               {"s": sweep["id"]}).scalar()
        per_run = dict(conn.execute(text("SELECT run_id, count(*) FROM epoch_metrics GROUP BY run_id")).all())
    engine.dispose()
    assert workers == 2 and sorted(per_run.values()) == [3] * 6
    for row in done["results"]:  # one seed per config: the aggregate row is that run's summary
        (run,) = [r for r in done["runs"] if r["group"] == row["group"]]
        assert row["metrics"]["test_error"]["mean"] == run["summary"]["test_error"]
        assert row["metrics"]["gate_event_rate"]["mean"] == run["summary"]["gate_event_rate"]

    long = client.post("/api/v1/sweeps", json={"name": "it-long", "base": {**base, "train": {"epochs": 300}},
                                               "grid": {"dst.m": [1.0, 2.0, 3.0, 4.0]}}).json()
    wait_for(lambda: client.get(f"/api/v1/sweeps/{long['id']}").json()["counts"]["running"] == 2,
             what="two runs of the sweep running")
    out = client.post(f"/api/v1/sweeps/{long['id']}/cancel").json()
    assert out["counts"]["cancelled"] == 2  # the queued two at once; the running two stop between batches
    final = wait_for(lambda: (s := client.get(f"/api/v1/sweeps/{long['id']}").json())["status"] == "cancelled" and s,
                     timeout=60, what="the running runs to stop")
    assert final["counts"] == {"queued": 0, "running": 0, "succeeded": 0, "failed": 0, "cancelled": 4}


def test_several_api_processes_share_one_database_and_a_revocation_reaches_all(tmp_path, pg_url, redis_url, procs):
    client, _ = start_cluster(tmp_path, procs, api_args=("--workers", "3"), GXNOR_DATABASE_URL=pg_url,
                              GXNOR_BROKER_URL=redis_url, GXNOR_AUTH_CACHE_S="1")
    made = client.post("/api/v1/tokens", json={"name": "short-lived"}).json()
    mine = {"Authorization": f"Bearer {made['token']}"}
    me = f"{str(client.base_url).rstrip('/')}/api/v1/me"
    # Each request may land on any of the three processes (new connections): all know the token.
    for _ in range(12):
        assert httpx.get(me, headers=mine, timeout=10).status_code == 200
    assert client.delete(f"/api/v1/tokens/{made['id']}").status_code == 204
    time.sleep(1.5)  # GXNOR_AUTH_CACHE_S: the other processes' cached lookups expire
    codes = {httpx.get(me, headers=mine, timeout=10).status_code for _ in range(12)}
    assert codes == {401}
    client.close()
