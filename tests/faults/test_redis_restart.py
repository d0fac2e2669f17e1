"""Redis killed and restarted (no persistence) with runs queued and running: every run finishes."""

import time
import uuid

import pytest

from tests.integration.conftest import PrivateRedis, start_cluster, wait_for


@pytest.fixture()
def private_redis():
    r = PrivateRedis()
    r.start()
    yield r
    if r.proc.poll() is None:
        r.kill()


def test_runs_queued_and_running_all_finish_after_a_redis_restart(tmp_path, pg_url, procs, private_redis):
    client, add_worker = start_cluster(tmp_path, procs, GXNOR_DATABASE_URL=pg_url,
                                       GXNOR_BROKER_URL=f"redis://127.0.0.1:{private_redis.port}/0",
                                       GXNOR_QUEUE=f"gxnor-redis-{uuid.uuid4().hex[:8]}", GXNOR_LEASE_SECONDS="3",
                                       GXNOR_REAPER_INTERVAL_S="0.5")
    add_worker("w1")
    # Digits epochs (a tenth of mnist5k's): the first run still trains through the restart.
    config = {"name": "redis", "model": {"hidden": [128]}, "train": {"epochs": 80, "batch_size": 50}}
    ids = [client.post("/api/v1/runs", json={"config": config}).json()["id"] for _ in range(3)]
    wait_for(lambda: client.get(f"/api/v1/runs/{ids[0]}").json()["progress"]["epochs_done"] >= 1,
             what="the first run to train")
    assert [client.get(f"/api/v1/runs/{i}").json()["status"] for i in ids[1:]] == ["queued", "queued"]

    private_redis.kill()  # every queued message is gone with it
    time.sleep(2)
    private_redis.start()

    for run_id in ids:
        run = wait_for(lambda run_id=run_id: (r := client.get(f"/api/v1/runs/{run_id}").json())["status"]
                       in ("succeeded", "failed", "cancelled") and r, timeout=240, what=f"run {run_id}")
        assert run["status"] == "succeeded", run["error"]
        epochs = [m["epoch"] for m in client.get(f"/api/v1/runs/{run_id}/metrics").json()["epochs"]]
        assert epochs == list(range(1, 81))
    client.close()
