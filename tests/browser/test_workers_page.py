"""The workers page (#/workers) and a queued run's wait on its page, in Chromium against a real `gxnor api`.

No worker process here: the heartbeat rows are written into the server's database with app.workers.beat, as a
worker writes them, so every state is exact — alive, dead, idle, training one of ours or another team's run, none
alive at all.  (tests/integration/test_workers_live.py shows real worker processes on the same API.)"""

from __future__ import annotations

import signal
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import delete, update

from app import workers
from app.db import session_scope
from app.models import Worker, utcnow

from .conftest import ADMIN_TOKEN, Proc, free_port, service_env, shoot, sign_in, wait_healthy

CONFIG = {"model": {"hidden": [8]}, "train": {"epochs": 3, "batch_size": 100}}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`gxnor api` alone (no worker) on SQLite and the filesystem queue; yields (base URL, database URL)."""
    tmp = tmp_path_factory.mktemp("workers-page")
    port = free_port()
    env = service_env(tmp, GXNOR_ADMIN_TOKEN=ADMIN_TOKEN)
    api = Proc(["api", "--port", str(port)], env, tmp / "api.log")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, api)
        yield base, f"sqlite:///{(tmp / 'data' / 'gxnor.db').resolve()}"
    finally:
        api.stop(signal.SIGINT, timeout=60)


def beat(db: str, worker_id: str, run_id: int | None = None, seen_ago: float = 0.0) -> None:
    host, pid = worker_id.split(":")
    with session_scope(db) as s:
        workers.beat(s, workers.WorkerInfo(worker_id, host, int(pid), "cpu", 1, 10.0), run_id)
        if seen_ago:
            s.flush()
            s.execute(update(Worker).where(Worker.id == worker_id)
                      .values(last_seen=utcnow() - timedelta(seconds=seen_ago)))


def test_the_workers_page_and_a_queued_runs_wait(server, page):
    base, db = server
    with session_scope(db) as s:
        s.execute(delete(Worker))
    with httpx.Client(base_url=base, timeout=30, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as api:
        assert api.post("/api/v1/teams", json={"name": "blue"}).status_code == 201
        bob = api.post("/api/v1/users", json={"name": "bob", "teams": ["blue"]}).json()["token"]["token"]
        ours = api.post("/api/v1/runs", json={"config": {**CONFIG, "name": "ours"}}).json()["id"]
        theirs = api.post("/api/v1/runs", json={"config": {**CONFIG, "name": "their secret"}},
                          headers={"Authorization": f"Bearer {bob}"}).json()["id"]
        waiting = api.post("/api/v1/runs", json={"config": {**CONFIG, "name": "waiting"}}).json()["id"]

    # No worker at all: the page says so, and the queued run's page says that nobody will take it yet.
    sign_in(page, base, f"/runs/{waiting}")
    page.wait_for_selector("#queue-state:has-text('No worker is alive')")
    page.goto(f"{base}/#/workers")
    page.wait_for_selector("#no-workers")
    assert page.locator("[data-nav=workers].active").count() == 1
    assert "No worker is alive" in page.inner_text("#queue-summary")
    assert page.locator("#queue-table [data-run]").count() == 2  # ours and waiting; bob's is counted, not shown
    assert page.inner_text(f"#queue-table [data-run='{waiting}'] td.num") == "3 of 3"
    assert page.inner_text(f"#queue-table [data-run='{waiting}'] td.eta") == "no worker alive"

    # Workers report: one trains our run, one bob's, one is idle, one died.
    beat(db, "gpu-box:11", ours)
    beat(db, "gpu-box:12", theirs)
    beat(db, "cpu-box:13")
    beat(db, "cpu-box:14", seen_ago=600)
    page.wait_for_selector("[data-worker='gpu-box:11'] .worker-run a")  # the page refreshes by itself
    assert page.get_attribute("[data-worker='gpu-box:11'] .worker-run a", "href") == f"#/runs/{ours}"
    assert page.inner_text("[data-worker='gpu-box:12'] .worker-run") == "busy (another team's run)"
    assert page.inner_text("[data-worker='cpu-box:13'] .worker-run") == "idle"
    assert page.get_attribute("[data-worker='cpu-box:14']", "data-alive") == "false"
    assert page.inner_text("[data-worker='cpu-box:14'] .badge").lower() == "dead"  # (badges are upper case)
    assert page.inner_text("#workers-summary").startswith("3 alive")
    assert "their secret" not in page.inner_text("main")
    page.wait_for_function(f"""() => !document.querySelector("#queue-table [data-run='{waiting}'] td.eta")
        .textContent.includes('no worker')""")
    shoot(page, "workers-page")

    # The queued run's page now gives its place and when it should start.
    page.goto(f"{base}/#/runs/{waiting}")
    page.wait_for_selector("#queue-state:has-text('Position 3 of 3 in the queue')")
    assert "starts in" in page.inner_text("#queue-state") and "3 workers alive" in page.inner_text("#queue-state")
