"""`gxnor up` as a user runs it: start, sign in with the printed token, submit, finish, stop, start again."""

import json
import os
import re
import signal
import stat
import subprocess
import sys
import time

import httpx

from .conftest import Proc, free_port, service_env, wait_for, wait_healthy


def _loose(root) -> dict[str, str]:
    """Paths under root (and root itself) with any group/other permission bit, as {path: mode}."""
    found = {}
    for dirpath, _, filenames in os.walk(root):
        for p in [dirpath, *(os.path.join(dirpath, f) for f in filenames)]:
            try:
                mode = stat.S_IMODE(os.lstat(p).st_mode)
            except FileNotFoundError:  # a queue file taken meanwhile
                continue
            if mode & 0o077:
                found[os.path.relpath(p, root)] = oct(mode)
    return found


SIGN_IN = re.compile(r"^  Sign in: http://\S+$", re.M)


def start(tmp_path, procs, port, tag):
    env = service_env(tmp_path)
    del env["GXNOR_ADMIN_TOKEN"]  # as a user runs it: the token is made and printed at first start
    old = os.umask(0o022)  # as from a typical login shell; `gxnor up` must not rely on it
    try:
        up = Proc(["up", "--port", str(port), "--data-dir", str(tmp_path / "data")], env, tmp_path / f"up-{tag}.log")
    finally:
        os.umask(old)
    procs.append(up)
    wait_healthy(f"http://127.0.0.1:{port}", up)
    # The sign-in link is printed once the API answers and its worker is ready — last, so nothing the start
    # prints pushes it off screen: no Celery banner, and at most one line about running as root.
    wait_for(lambda: SIGN_IN.search(up.text()), timeout=120, what="the sign-in link")
    time.sleep(1.0)  # anything printed after it would be here by now
    lines = up.text().rstrip("\n").splitlines()
    assert SIGN_IN.fullmatch(lines[-1]), lines
    assert len(lines) <= 5 and not [ln for ln in lines if "celery" in ln.lower() or "[queues]" in ln], lines
    assert len([ln for ln in lines if "as root" in ln]) == (1 if os.geteuid() == 0 else 0), lines
    return up


def test_gxnor_up_keeps_data_and_queued_runs_across_a_restart(tmp_path, procs):
    port = free_port()
    up = start(tmp_path, procs, port, "1")
    # First start: an admin token and a sign-in link carrying it are printed.
    link = re.search(rf"Sign in: (http://127\.0\.0\.1:{port}/#token=(gx_\S+))", up.text())
    assert link, up.text()
    token = link.group(2)
    assert httpx.get(f"http://127.0.0.1:{port}/api/v1/runs").status_code == 401
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30, headers={"Authorization": f"Bearer {token}"})
    assert client.get("/api/v1/me").json()["user"]["name"] == "admin"

    # A user submits with the CLI (token from GXNOR_TOKEN) and follows the run to the end.
    cli = [sys.executable, "-m", "gxnor_cli", "submit", "quick", "--server", f"http://127.0.0.1:{port}"]
    refused = subprocess.run(cli, capture_output=True, text=True, timeout=60,
                             env={k: v for k, v in os.environ.items() if k != "GXNOR_TOKEN"})
    assert refused.returncode == 2 and "GXNOR_TOKEN" in refused.stderr
    res = subprocess.run([*cli, "--set", "train.epochs=2", "--follow"], capture_output=True, text=True, timeout=180,
                         env={**os.environ, "GXNOR_TOKEN": token})
    assert res.returncode == 0, res.stderr
    done_id = int(re.match(r"Queued run #(\d+) ", res.stdout).group(1))
    assert f'Run #{done_id} "quick-{done_id}" succeeded: 2/2 epochs in ' in res.stdout  # a name of its own
    assert res.stdout.rstrip().endswith(f"http://127.0.0.1:{port}/#/runs/{done_id}")

    # A sweep from a spec file with the CLI: two explicit points, followed to the end.
    spec = tmp_path / "sweep.yaml"
    spec.write_text("name: cli-sweep\nbase: {model: {hidden: [16]}, train: {epochs: 1}}\n"
                    "list: [{activations.r: 0.25}, {activations.r: 1.0}]\n")
    sweep_cli = [sys.executable, "-m", "gxnor_cli", "sweep", str(spec), "--server", f"http://127.0.0.1:{port}"]
    res = subprocess.run([*sweep_cli, "--follow", "--json"], capture_output=True, text=True, timeout=180,
                         env={**os.environ, "GXNOR_TOKEN": token})
    assert res.returncode == 0, res.stderr
    queued, finished = (json.loads(line) for line in res.stdout.strip().splitlines()[-2:])
    assert queued["runs"] == 2 and queued["fields"] == ["activations.r"]
    assert finished["status"] == "finished" and [r["overrides"] for r in finished["results"]] == [
        {"activations.r": 0.25}, {"activations.r": 1.0}]
    assert all(r["n_done"] == 1 and r["test_error"] is not None for r in finished["results"])
    spec.write_text("name: bad\ngrid: {activations.r: [0.5, 9]}\n")
    bad = subprocess.run(sweep_cli, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "GXNOR_TOKEN": token})
    assert bad.returncode == 2 and "grid.activations.r" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    assert client.get(f"/api/v1/runs/{done_id}").json()["status"] == "succeeded"

    # A long run starts; another waits in the queue; the user presses Ctrl-C.  (Digits epochs, a tenth of mnist5k's:
    # seconds to spare after its first, and seconds, not a minute, left to train after the restart.)
    long_cfg = {"name": "long", "model": {"hidden": [256, 256]}, "train": {"epochs": 80, "batch_size": 50}}
    long_id = client.post("/api/v1/runs", json={"config": long_cfg}).json()["id"]
    queued_id = client.post("/api/v1/runs", json={"config": {"name": "waiting", "train": {"epochs": 2}}}).json()["id"]
    wait_for(lambda: client.get(f"/api/v1/runs/{long_id}").json()["progress"]["epochs_done"] >= 1,
             what="the long run to record an epoch")
    # The data directory is the service's own: every directory 0700, every file 0600 — the database and its
    # WAL, checkpoints, the queue's message files.
    data = tmp_path / "data"
    names = {os.path.relpath(os.path.join(d, f), data) for d, _, fs in os.walk(data) for f in fs}
    assert "gxnor.db" in names and "gxnor.db-wal" in names, names
    assert any(n.startswith("artifacts/") and n.endswith(".pt") for n in names), names
    assert any(n.startswith("broker/") for n in names), names
    assert _loose(data) == {}
    assert up.stop(signal.SIGINT, timeout=120) == 0
    assert _loose(data) == {}
    client.close()

    # Start again: everything recorded is still there, the same token works (no new one is printed) and
    # the interrupted and waiting runs finish.
    up2 = start(tmp_path, procs, port, "2")
    assert "#token=" not in up2.text() and "gxnor token" in up2.text()
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30, headers={"Authorization": f"Bearer {token}"})
    assert client.get(f"/api/v1/runs/{done_id}").json()["status"] == "succeeded"
    for run_id in (long_id, queued_id):
        run = wait_for(lambda run_id=run_id: (r := client.get(f"/api/v1/runs/{run_id}").json())["status"]
                       in ("succeeded", "failed", "cancelled") and r, timeout=300, what=f"run {run_id}")
        assert run["status"] == "succeeded", run["error"]
    long_run = client.get(f"/api/v1/runs/{long_id}").json()
    assert long_run["attempt"] == 2  # resumed from its checkpoint, not restarted
    epochs = [m["epoch"] for m in client.get(f"/api/v1/runs/{long_id}/metrics").json()["epochs"]]
    assert epochs == list(range(1, 81))
    assert up2.stop(signal.SIGINT, timeout=120) == 0
