"""A broker that is down when runs are submitted: one run and a sweep are stored and answered 201 alike, and
the reaper sends them once the broker is back.  The broker is a real Redis URL — first a closed port, then a
redis-server started on that port."""

from __future__ import annotations

import json
import logging
import uuid

import pytest
import redis
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from tests.integration.conftest import PrivateRedis, free_port, wait_for

ADMIN = "gx_broker-outage-admin"
TINY = {"model": {"hidden": [8]}, "train": {"epochs": 1, "batch_size": 100}}


@pytest.fixture()
def down_broker():
    broker = PrivateRedis(free_port())  # nothing listens there yet
    yield broker
    if broker.proc is not None and broker.proc.poll() is None:
        broker.kill()


def queued_messages(port: int, queue: str) -> set[int]:
    """Run ids of the task messages waiting in the Redis queue (read with a plain Redis client)."""
    bodies = redis.Redis(port=port).lrange(queue, 0, -1)
    return {int(json.loads(json.loads(b)["headers"]["argsrepr"])[0]) for b in bodies}


def test_runs_submitted_while_the_broker_is_down_are_stored_then_sent_by_the_reaper(tmp_path, down_broker, caplog):
    queue = f"gxnor-outage-{uuid.uuid4().hex[:8]}"
    settings = Settings(data_dir=tmp_path / "data", admin_token=ADMIN, queue=queue, reaper_interval_s=0.3,
                        broker_url=f"redis://127.0.0.1:{down_broker.port}/0")
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {ADMIN}"}) as client:
        with caplog.at_level(logging.WARNING, logger="gxnor.lifecycle"):
            run = client.post("/api/v1/runs", json={"config": {**TINY, "name": "alone"}})
            sweep = client.post("/api/v1/sweeps", json={"name": "pair", "base": TINY,
                                                        "grid": {"activations.r": [0.25, 0.5]}})
        assert run.status_code == 201 and run.json()["status"] == "queued", run.text
        assert sweep.status_code == 201, sweep.text
        ids = {run.json()["id"], *sweep.json()["run_ids"]}
        assert {client.get(f"/api/v1/runs/{i}").json()["status"] for i in ids} == {"queued"}
        failures = [r for r in caplog.records if "not sent to the broker" in r.getMessage()]
        assert len(failures) == 2 and all(r.exc_info for r in failures)  # logged once per request, with why

        down_broker.start()  # the broker comes back, empty
        wait_for(lambda: queued_messages(down_broker.port, queue) >= ids, timeout=60, interval=0.3,
                 what="the reaper to send the stored runs")
