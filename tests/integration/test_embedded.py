"""`gxnor up` as a user runs it: start, submit, finish, stop, start again."""

import json
import signal
import subprocess
import sys

import httpx

from .conftest import Proc, free_port, service_env, wait_for, wait_healthy


def start(tmp_path, procs, port, tag):
    env = service_env(tmp_path)
    up = Proc(["up", "--port", str(port), "--data-dir", str(tmp_path / "data")], env, tmp_path / f"up-{tag}.log")
    procs.append(up)
    wait_healthy(f"http://127.0.0.1:{port}", up)
    return up, httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)


def test_gxnor_up_keeps_data_and_queued_runs_across_a_restart(tmp_path, procs):
    port = free_port()
    up, client = start(tmp_path, procs, port, "1")

    # A user submits with the CLI and follows the run to the end.
    res = subprocess.run([sys.executable, "-m", "gxnor_cli", "submit", "quick", "--server",
                          f"http://127.0.0.1:{port}", "--set", "train.epochs=2", "--follow"],
                         capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr
    done_id = json.loads(res.stdout.strip().splitlines()[-1])["id"]
    assert client.get(f"/api/v1/runs/{done_id}").json()["status"] == "succeeded"

    # A long run starts; another waits in the queue; the user presses Ctrl-C.
    long_cfg = {"name": "long", "dataset": {"name": "mnist5k"}, "model": {"hidden": [256, 256]},
                "train": {"epochs": 40, "batch_size": 50}}
    long_id = client.post("/api/v1/runs", json={"config": long_cfg}).json()["id"]
    queued_id = client.post("/api/v1/runs", json={"config": {"name": "waiting", "train": {"epochs": 2}}}).json()["id"]
    wait_for(lambda: client.get(f"/api/v1/runs/{long_id}").json()["progress"]["epochs_done"] >= 1,
             what="the long run to record an epoch")
    assert up.stop(signal.SIGINT, timeout=120) == 0
    client.close()

    # Start again: everything recorded is still there and the interrupted and waiting runs finish.
    up2, client = start(tmp_path, procs, port, "2")
    assert client.get(f"/api/v1/runs/{done_id}").json()["status"] == "succeeded"
    for run_id in (long_id, queued_id):
        run = wait_for(lambda run_id=run_id: (r := client.get(f"/api/v1/runs/{run_id}").json())["status"]
                       in ("succeeded", "failed", "cancelled") and r, timeout=300, what=f"run {run_id}")
        assert run["status"] == "succeeded", run["error"]
    long_run = client.get(f"/api/v1/runs/{long_id}").json()
    assert long_run["attempt"] == 2  # resumed from its checkpoint, not restarted
    epochs = [m["epoch"] for m in client.get(f"/api/v1/runs/{long_id}/metrics").json()["epochs"]]
    assert epochs == list(range(1, 41))
    assert up2.stop(signal.SIGINT, timeout=120) == 0
