"""Fault tests with real processes on Redis and PostgreSQL: workers killed and frozen mid-run."""

import signal
import time
import uuid

import pytest
import torch

from tests.integration.conftest import start_cluster, wait_for

LEASE = "3"
# Digits epochs (about a tenth of mnist5k's): the run is killed or frozen a few epochs in with seconds to spare,
# and what is left of it (and the bit-exact uninterrupted twin) costs seconds, not half a minute.
EPOCHS = 40
CONFIG = {"name": "fault", "model": {"hidden": [256, 256]}, "train": {"epochs": EPOCHS, "batch_size": 50}}


@pytest.fixture()
def cluster(tmp_path, pg_url, redis_url, procs):
    client, add_worker = start_cluster(tmp_path, procs, GXNOR_DATABASE_URL=pg_url, GXNOR_BROKER_URL=redis_url,
                                       GXNOR_QUEUE=f"gxnor-fault-{uuid.uuid4().hex[:8]}", GXNOR_LEASE_SECONDS=LEASE,
                                       GXNOR_REAPER_INTERVAL_S="0.5")
    yield client, add_worker, tmp_path / "data"
    client.close()


def get(client, run_id):
    return client.get(f"/api/v1/runs/{run_id}").json()


def finished(client, run_id, timeout=240):
    return wait_for(lambda: (r := get(client, run_id))["status"] in ("succeeded", "failed", "cancelled") and r,
                    timeout=timeout, what=f"run {run_id} to finish")


def holder(workers, run):
    """The worker process training ``run`` (runs.worker is hostname:pid; the solo pool trains in that process)."""
    pid = int(run["worker"].rsplit(":", 1)[1])
    return next(w for w in workers if w.p.pid == pid)


def final_states(data_dir, run_id):
    path = next((data_dir / "artifacts" / "runs" / str(run_id)).glob(f"checkpoint-{EPOCHS:05d}-*.pt"))
    return torch.load(path, weights_only=True)["model"]


def test_kill_9_mid_run_another_worker_resumes_bit_exact(cluster):
    client, add_worker, data_dir = cluster
    workers = [add_worker("w1"), add_worker("w2")]  # both start at once (suite time): one trains, one waits
    run_id = client.post("/api/v1/runs", json={"config": CONFIG}).json()["id"]
    run = wait_for(lambda: (r := get(client, run_id))["progress"]["epochs_done"] >= 3 and r, what="three epochs")
    holder(workers, run).stop(signal.SIGKILL)
    killed_at = time.time()
    wait_for(lambda: get(client, run_id)["attempt"] == 2, timeout=60, what="the second attempt")
    resumed_after = time.time() - killed_at
    run = finished(client, run_id)
    assert run["status"] == "succeeded", run["error"]
    epochs = [m["epoch"] for m in client.get(f"/api/v1/runs/{run_id}/metrics").json()["epochs"]]
    assert epochs == list(range(1, EPOCHS + 1))
    # The same config and seed, never interrupted, on the same kind of worker: identical weights.
    again = client.post("/api/v1/runs", json={"config": CONFIG}).json()["id"]
    assert finished(client, again)["status"] == "succeeded"
    resumed, uninterrupted = final_states(data_dir, run_id), final_states(data_dir, again)
    assert resumed.keys() == uninterrupted.keys()
    for key in resumed:
        assert torch.equal(resumed[key], uninterrupted[key]), key
    assert resumed_after < 60
    print(f"worker death → run resumed: {resumed_after:.1f} s (lease {LEASE} s)")


def test_sigstop_past_the_lease_then_sigcont_leaves_no_duplicate_epochs(cluster):
    client, add_worker, _ = cluster
    w1 = add_worker("w1")
    run_id = client.post("/api/v1/runs", json={"config": CONFIG}).json()["id"]
    wait_for(lambda: get(client, run_id)["progress"]["epochs_done"] >= 2, what="two epochs")
    w1.send(signal.SIGSTOP)
    add_worker("w2")  # only now (a second idle worker from the start timed out waiting for the takeover once)
    wait_for(lambda: get(client, run_id)["attempt"] == 2, timeout=60, what="the takeover")
    w1.send(signal.SIGCONT)  # the frozen worker wakes up holding a stale lease
    run = finished(client, run_id)
    assert run["status"] == "succeeded", run["error"]
    epochs = [m["epoch"] for m in client.get(f"/api/v1/runs/{run_id}/metrics").json()["epochs"]]
    assert epochs == list(range(1, EPOCHS + 1))
    layers = client.get(f"/api/v1/runs/{run_id}/layers").json()["records"]
    assert len(layers) == EPOCHS * 3 and len({(r["epoch"], r["layer"]) for r in layers}) == EPOCHS * 3
    assert "lost its lease" in w1.text() or w1.p.poll() is None


def test_a_redelivered_message_past_the_visibility_timeout_runs_once(tmp_path, pg_url, redis_url, procs):
    client, add_worker = start_cluster(tmp_path, procs, GXNOR_DATABASE_URL=pg_url, GXNOR_BROKER_URL=redis_url,
                                       GXNOR_QUEUE=f"gxnor-vis-{uuid.uuid4().hex[:8]}",
                                       GXNOR_BROKER_VISIBILITY_TIMEOUT_S="2")
    workers = [add_worker("v1"), add_worker("v2")]
    with client:
        config = {**CONFIG, "train": {"epochs": 200, "batch_size": 50}}  # runs well past 2 s
        run_id = client.post("/api/v1/runs", json={"config": config}).json()["id"]
        run = finished(client, run_id)
        assert run["status"] == "succeeded", run["error"]
        assert run["attempt"] == 1  # executed once
        epochs = [m["epoch"] for m in client.get(f"/api/v1/runs/{run_id}/metrics").json()["epochs"]]
        assert epochs == list(range(1, 201))
    skipped = sum(w.text().count(f"run {run_id} is not queued") for w in workers)
    assert skipped >= 1  # the broker did redeliver while the run trained; the claim turned it away


def test_a_run_that_kills_its_worker_every_time_ends_failed_after_its_budget(cluster):
    client, add_worker, _ = cluster
    workers = [add_worker(f"oom{n}") for n in (1, 2, 3)]  # one per attempt, started at once (suite time)
    run_id = client.post("/api/v1/runs", json={"config": CONFIG}).json()["id"]
    for attempt in (1, 2, 3):
        run = wait_for(lambda attempt=attempt: (r := get(client, run_id))["attempt"] == attempt
                       and r["status"] == "running" and r, timeout=60, what=f"attempt {attempt}")
        holder(workers, run).stop(signal.SIGKILL)  # as the kernel's OOM killer would
    run = wait_for(lambda: (r := get(client, run_id))["status"] == "failed" and r, timeout=60,
                   what="the run to be given up")
    assert run["attempt"] == 3 and "gave up" in run["error"]


def test_a_worker_frozen_inside_its_epoch_transaction_does_not_stall_the_reaper(tmp_path, pg_url):
    """SIGSTOP can land while a worker holds its run's row lock: the reaper must skip that row (not wait on
    it) and get it once PostgreSQL ends the frozen session (idle_in_transaction_session_timeout: the
    workers' IDLE_IN_TRANSACTION_MS; 5 s here, the first reap's bound, so the test waits half as long)."""
    from sqlalchemy import create_engine, text, update

    from app.db import migrate, session_scope
    from app.models import Run
    from app.reaper import reap
    from app.runs import create_run, default_team_id
    from app.settings import Settings
    from gxnor_core import validate_config

    settings = Settings(data_dir=tmp_path / "data", database_url=pg_url)
    migrate(pg_url)
    with session_scope(pg_url) as s:
        frozen, other = (create_run(s, validate_config({"name": n}), default_team_id(s)).id for n in ("a", "b"))
        s.execute(update(Run).where(Run.id.in_([frozen, other]))
                  .values(status="running", attempt=1, lease_expires_at=time.time() - 1))

    class Broker:
        def __init__(self):
            self.sent = []

        def send_task(self, name, args, queue=None):
            self.sent.append(args[0])

    idle_ms = 5_000
    worker = create_engine(pg_url, connect_args={
        "options": f"-c idle_in_transaction_session_timeout={idle_ms}"}).connect()
    worker.execute(text("SELECT id FROM runs WHERE id = :i FOR UPDATE"), {"i": frozen})  # ... and freezes here
    broker = Broker()
    t0 = time.monotonic()
    assert reap(settings, broker) == [other]  # at once: the locked row is skipped, the other reaped
    assert time.monotonic() - t0 < 5
    requeued = wait_for(lambda: reap(settings, broker), timeout=idle_ms / 1000 + 20, interval=0.5,
                        what="the frozen session to be ended and its run reaped")
    assert requeued == [frozen] and broker.sent == [other, frozen]
    worker.invalidate()
