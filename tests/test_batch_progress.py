"""Within-epoch loss points: the trainer reports bounded, evenly spread points whose sample-weighted mean is the
epoch's ``train_loss`` (gxnor_core.train.batch_point_ends); the SQL reporter stores them (worker.runner,
app.batch_points, migration 0013); ``GET /runs/{id}/batches`` returns them, team-scoped — on a real SQLite file
and a real PostgreSQL database."""

from __future__ import annotations

import math
from contextlib import nullcontext

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect, text

from app.db import alembic_config
from app.schemas import BatchesOut
from gxnor_core import Reporter, train
from gxnor_core.train import BATCH_POINTS_PER_EPOCH, BATCH_POINTS_PER_RUN, batch_point_ends
from tests.pg import app_with_two_teams, fresh_database
from worker.runner import execute_run

ADMIN = "gx_batch-points-admin"
# digits: 1 290 training images, so 258 batches of 5 an epoch — far more than an epoch's 50 points
MANY_BATCHES = {"name": "many-batches", "model": {"hidden": [16]}, "train": {"epochs": 2, "batch_size": 5}}


class Recorder(Reporter):
    """Keeps what the trainer reports."""

    def __init__(self):
        self.points: list[tuple[int, float, float, int]] = []
        self.metrics: list[dict] = []
        self.batches = 0

    def start(self, info):
        self.batches = info["batches_per_epoch"]

    def batch_loss(self, epoch, fraction, loss, samples):
        self.points.append((epoch, fraction, loss, samples))

    def epoch(self, metrics, layers, checkpoint):
        self.metrics.append(metrics)


@pytest.mark.parametrize(("n_batches", "epochs"), [(250, 2), (390, 10), (50, 1), (7, 3), (1000, 100), (3, 800),
                                                   (10_000, 10_000), (1, 1)])
def test_the_points_are_bounded_per_epoch_and_per_run_and_evenly_spread(n_batches, epochs):
    ends = sorted(batch_point_ends(n_batches, epochs))
    assert len(ends) <= BATCH_POINTS_PER_EPOCH and len(ends) * epochs <= BATCH_POINTS_PER_RUN
    if not ends:  # one point an epoch would repeat its train_loss
        assert min(BATCH_POINTS_PER_EPOCH, BATCH_POINTS_PER_RUN // epochs, n_batches) < 2
        return
    assert ends[-1] == n_batches and ends[0] >= 1
    assert len(ends) == min(BATCH_POINTS_PER_EPOCH, BATCH_POINTS_PER_RUN // epochs, n_batches)
    gaps = {b - a for a, b in zip([0, *ends], ends, strict=False)}
    assert max(gaps) - min(gaps) <= 1  # adjacent batches merged evenly


@pytest.mark.slow
def test_the_trainer_reports_bounded_merged_points_whose_mean_is_the_epoch_loss():
    rec = Recorder()
    assert train(MANY_BATCHES, rec)["status"] == "succeeded"
    n = rec.batches
    assert n == 258
    ends = sorted(batch_point_ends(n, 2))
    for m in rec.metrics:
        points = [p for p in rec.points if p[0] == m["epoch"]]
        assert len(points) == BATCH_POINTS_PER_EPOCH  # 258 batches merged five or six at a time
        assert [f for _, f, _, _ in points] == [e / n for e in ends]
        assert [s for *_, s in points] == [5 * (b - a) for a, b in zip([0, *ends], ends, strict=False)]
        weighted = sum(loss * n for _, _, loss, n in points) / sum(n for *_, n in points)
        assert weighted == pytest.approx(m["train_loss"], rel=1e-9)
    first, last = rec.points[0][2], rec.points[-1][2]
    assert last < first  # the loss falls within training: the points carry it


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def service(request, tmp_path_factory):
    """The app (the admin, team default, is the client's caller), its settings, and a token of bob (team blue)."""
    with app_with_two_teams(request.param, tmp_path_factory.mktemp(request.param), ADMIN, "gxnor_batches") as service:
        yield service


@pytest.mark.slow
def test_the_worker_stores_the_points_and_the_api_returns_them(service):
    client, settings, bob = service
    run_id = client.post("/api/v1/runs", json={"config": MANY_BATCHES, "team": "default"}).json()["id"]
    assert client.get(f"/api/v1/runs/{run_id}/batches").json() == {"run_id": run_id, "points": []}
    assert execute_run(run_id, settings) == "succeeded"
    got = client.get(f"/api/v1/runs/{run_id}/batches")
    assert got.status_code == 200
    points = BatchesOut.model_validate(got.json()).points
    assert len(points) == 2 * BATCH_POINTS_PER_EPOCH  # the bound, stored
    assert [(p.epoch, p.fraction) for p in points] == sorted((p.epoch, p.fraction) for p in points)
    epochs = client.get(f"/api/v1/runs/{run_id}/metrics").json()["epochs"]
    for m in epochs:
        mine = [p for p in points if p.epoch == m["epoch"]]
        assert len(mine) == BATCH_POINTS_PER_EPOCH and mine[-1].fraction == 1.0
        assert all(p.loss is not None and math.isfinite(p.loss) and p.samples in (25, 30) for p in mine)
        assert sum(p.samples for p in mine) == 258 * 5  # every training sample of the epoch, once
        assert sum(p.loss * p.samples for p in mine) / sum(p.samples for p in mine) == pytest.approx(
            m["train_loss"], rel=1e-9)
    since = client.get(f"/api/v1/runs/{run_id}/batches", params={"since": 2}).json()["points"]
    assert since == got.json()["points"][BATCH_POINTS_PER_EPOCH:]
    assert client.get(f"/api/v1/runs/{run_id}/batches", headers=bob).status_code == 404  # another team's run
    assert client.get("/api/v1/runs/987654/batches").status_code == 404
    bad = client.get(f"/api/v1/runs/{run_id}/batches", params={"since": 0})
    assert bad.status_code == 422 and "since" in bad.text
    assert client.delete(f"/api/v1/runs/{run_id}").status_code == 204
    with create_engine(settings.db_url).connect() as conn:  # deleted with their run
        assert conn.execute(text(f"SELECT count(*) FROM batch_points WHERE run_id = {run_id}")).scalar() == 0


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    with fresh_database("gxnor_batchmig") if request.param == "postgresql" else nullcontext() as url:
        yield url or f"sqlite:///{tmp_path / 'batches.db'}"


def test_migration_0013_adds_the_table_and_downgrade_drops_it(db_url):
    cfg = alembic_config(db_url)
    command.upgrade(cfg, "0013")
    engine = create_engine(db_url)
    with engine.connect() as conn:
        assert {c["name"] for c in inspect(conn).get_columns("batch_points")} == {
            "run_id", "epoch", "fraction", "loss", "samples"}
        assert inspect(conn).get_pk_constraint("batch_points")["constrained_columns"] == ["run_id", "epoch", "fraction"]
    command.downgrade(cfg, "0012")
    with engine.connect() as conn:
        assert "batch_points" not in inspect(conn).get_table_names()
    command.upgrade(cfg, "head")
    engine.dispose()
