"""The per-team queue cap holds under parallel submissions (app.runs.check_queue_room counts and the runs are
inserted in one locked step), on a real SQLite file and a real PostgreSQL database.

Real threads send real requests to the app at once; before the lock, cap 5 and 50 parallel POST /runs left
9 queued on PostgreSQL and 6 on SQLite, and 50 parallel 2-run sweeps 50 and 64.
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.db import session_scope
from app.models import Run
from app.settings import Settings
from tests.pg import admin_app

ADMIN = "gx_queue-cap-admin"
CAP, PARALLEL = 5, 50
TINY = {"model": {"hidden": [8]}, "train": {"epochs": 1, "batch_size": 100}}
SWEEP = {"name": "pair", "base": TINY, "grid": {"activations.r": [0.25, 0.5]}}  # two runs


@pytest.fixture(params=["sqlite", "postgresql"])
def app_client(request, tmp_path):
    with admin_app(request.param, tmp_path / "data", ADMIN, "gxnor_cap", max_queued_runs=CAP) as service:
        yield service


def burst(client: TestClient, path: str, body: dict, n: int = PARALLEL) -> Counter:
    """``n`` threads POST at the same moment; the status codes they got."""
    start = threading.Barrier(n)
    codes: list[int] = []

    def post() -> None:
        start.wait()
        codes.append(client.post(path, json=body).status_code)

    threads = [threading.Thread(target=post) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return Counter(codes)


def queued(settings: Settings) -> int:
    with session_scope(settings.db_url) as s:
        return s.scalar(select(func.count()).select_from(Run).where(Run.status == "queued"))


def test_parallel_runs_fill_the_queue_exactly_to_the_cap(app_client):
    client, settings = app_client
    codes = burst(client, "/api/v1/runs", {"config": TINY})
    assert codes == {201: CAP, 429: PARALLEL - CAP}
    assert queued(settings) == CAP


def test_parallel_sweeps_never_pass_the_cap(app_client):
    client, settings = app_client
    codes = burst(client, "/api/v1/sweeps", SWEEP)
    # Serialised, the first two sweeps fit (2 + 2 runs) and every later one would make 6.
    assert codes == {201: CAP // 2, 429: PARALLEL - CAP // 2}
    assert queued(settings) == 2 * (CAP // 2) <= CAP
