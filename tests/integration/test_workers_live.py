"""Real `gxnor worker` processes on the embedded filesystem queue and SQLite, seen through GET /workers: alive once
they take runs, naming the run one trains, gone after a clean stop, dead (not alive) after a kill."""

import signal

from .conftest import start_cluster, wait_for


def workers_by_pid(client) -> dict[int, dict]:
    resp = client.get("/api/v1/workers")
    assert resp.status_code == 200, resp.text
    return {w["pid"]: w for w in resp.json()["workers"]}


def test_real_workers_show_up_alive_name_their_run_and_go_or_die_when_stopped(tmp_path, procs):
    client, add_worker = start_cluster(tmp_path, procs, GXNOR_WORKER_HEARTBEAT_S="0.5")
    calm, killed = add_worker("calm"), add_worker("killed")
    pids = {calm.p.pid, killed.p.pid}
    seen = wait_for(lambda: (w := workers_by_pid(client)).keys() >= pids and all(w[p]["alive"] for p in pids) and w,
                    timeout=90, what="both workers to beat")
    assert all(seen[p]["device"] == "cpu" and seen[p]["concurrency"] == 1 and not seen[p]["busy"] for p in pids)

    config = {"name": "long", "model": {"hidden": [8]}, "train": {"epochs": 500, "batch_size": 50}}
    run_id = client.post("/api/v1/runs", json={"config": config}).json()["id"]
    trainer = wait_for(lambda: next((w for w in workers_by_pid(client).values()
                                     if w["run"] and w["run"]["id"] == run_id), None), what="a worker to take the run")
    assert trainer["busy"] and trainer["run"]["name"] == "long"
    assert client.get(f"/api/v1/runs/{run_id}").json()["worker"] == trainer["id"]
    assert client.post(f"/api/v1/runs/{run_id}/cancel").status_code == 200
    wait_for(lambda: not workers_by_pid(client)[trainer["pid"]]["busy"], what="the worker to finish the run")

    assert calm.stop(signal.SIGTERM) == 0
    killed.stop(signal.SIGKILL)
    wait_for(lambda: calm.p.pid not in (w := workers_by_pid(client)) and not w[killed.p.pid]["alive"],
             timeout=30, what="the stopped worker's row to go and the killed one to be seen dead")
    queue = client.get("/api/v1/queue").json()
    assert queue["workers_alive"] == 0 and queue["capacity"] == 0
