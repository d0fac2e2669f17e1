"""app.streams.Hub: viewers that join a run's feed at any moment, while epochs are being written, get every
epoch after the one they had exactly once, in order, then the final status; limits are counted and given back."""

from __future__ import annotations

import asyncio
import random
import threading
import time

import pytest
from fastapi import HTTPException
from fastapi.testclient import TestClient
from sqlalchemy import update

from app.db import session_scope
from app.main import create_app
from app.models import EpochMetric, Run
from app.settings import Settings
from app.streams import Hub

ADMIN = "gx_hub-test-admin"
EPOCHS = 60


@pytest.fixture()
def queued_run(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", admin_token=ADMIN)
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {ADMIN}"}) as c:
        run = c.post("/api/v1/runs", json={"config": {"name": "hub", "train": {"epochs": EPOCHS}}}).json()
    return settings.db_url, run["id"]


def write_epochs(db_url: str, run_id: int, started: threading.Event) -> None:
    """Epochs 1..EPOCHS, one every ~15 ms (as fast as a worker never is), then the run succeeds."""
    with session_scope(db_url) as s:
        s.execute(update(Run).where(Run.id == run_id).values(status="running"))
    started.set()
    for epoch in range(1, EPOCHS + 1):
        with session_scope(db_url) as s:
            s.add(EpochMetric(run_id=run_id, epoch=epoch, metrics={"epoch": epoch}))
            s.execute(update(Run).where(Run.id == run_id).values(epochs_done=epoch, progress_epoch=epoch))
        time.sleep(0.015)
    with session_scope(db_url) as s:
        s.execute(update(Run).where(Run.id == run_id).values(status="succeeded"))


async def _allowed() -> bool:
    return True


def parse(chunks: list[bytes]) -> list[tuple[str, str]]:
    out = []
    for block in b"".join(chunks).decode().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and not line.startswith(":"))
        if "event" in lines:
            out.append((lines["event"], lines.get("id", "")))
    return out


def test_viewers_joining_at_any_moment_get_every_epoch_exactly_once(queued_run):
    db_url, run_id = queued_run
    rng = random.Random(7)

    async def main():
        hub = Hub(db_url, poll_s=0.02, max_streams=100, max_per_user=100, check_s=0.5)
        started = threading.Event()
        writer = threading.Thread(target=write_epochs, args=(db_url, run_id, started))
        writer.start()

        async def viewer(delay: float, after: int):
            await asyncio.sleep(delay)
            watcher = hub.viewer()
            try:
                return after, [c async for c in hub.stream(watcher, run_id, after, _allowed)]
            finally:
                hub.forget(watcher)

        try:
            # 24 viewers join over the whole run, each claiming to have some prefix of the epochs already.
            plan = [(rng.uniform(0, 1.2), rng.choice([0, 0, rng.randint(0, 20)])) for _ in range(24)]
            results = await asyncio.wait_for(asyncio.gather(*(viewer(d, a) for d, a in plan)), 60)
        finally:
            await asyncio.to_thread(writer.join)
        return hub, results

    hub, results = asyncio.run(main())
    for after, chunks in results:
        events = parse(chunks)
        epochs = [int(i) for e, i in events if e == "epoch"]
        assert epochs == list(range(after + 1, EPOCHS + 1)), (after, epochs)
        assert events[-1][0] == "status" and b'"succeeded"' in chunks[-1]
    assert hub.feeds == {} and hub._viewers == set()  # every feed stopped with its last viewer


def test_stream_limits_are_counted_per_user_and_per_process_and_given_back():
    hub = Hub("sqlite://", poll_s=1, max_streams=3, max_per_user=2)
    hub.acquire(1)
    hub.acquire(1)
    with pytest.raises(HTTPException) as err:
        hub.acquire(1)
    assert err.value.status_code == 429 and "per user" in err.value.detail
    hub.acquire(2)
    with pytest.raises(HTTPException) as err:
        hub.acquire(3)
    assert err.value.status_code == 429 and "process" in err.value.detail
    hub.release(1)
    hub.acquire(3)
    hub.close_all()
    with pytest.raises(HTTPException) as err:
        hub.acquire(4)
    assert err.value.status_code == 503
