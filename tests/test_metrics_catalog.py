"""The metric catalog (gxnor_core.metrics) is the one declaration of a summary metric.

Every run metric is in the API's Summary, a sort key of the run list (correctly ordered on SQLite and
PostgreSQL, missing values last), in the sweep aggregates and their CSV and in /catalog; train(), the
stored summary and the API agree on what a summary is; the whole-network figures recount the layer
records; docs/METRICS.md is generated from the catalog; migration 0007 moves stored summaries and back.
(The runs CSV and the dashboard's columns: tests/browser/test_metric_catalog_ui.py.  A metric added to
the catalog reaching all of this with no other code: tests/test_new_metric.py.)
"""

import csv
import io
import json
import math
import random
import statistics
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import MetaData, create_engine, delete, insert, inspect, select, text, update

from app.db import alembic_config
from app.main import create_app
from app.models import Run, RunSummary
from app.runs import SORTABLE
from app.schemas import Summary
from app.settings import Settings
from bench.api_load import seed
from gxnor_core import Reporter, metrics, train
from gxnor_core.metrics import OverLayers, network_metrics, run_metric_names, seed_metrics, summarize
from gxnor_core.sweeps import aggregate, to_csv
from tests.pg import fresh_database
from worker.runner import execute_run

ROOT = Path(__file__).resolve().parents[1]
ADMIN = "gx_metrics-admin"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
TINY = {"project": "metrics", "model": {"hidden": [16]}, "train": {"epochs": 2, "batch_size": 200}}


def test_the_catalog_is_consistent_and_docs_metrics_md_is_generated_from_it():
    metrics.check()
    doc = (ROOT / "docs" / "METRICS.md").read_text()
    assert metrics.markdown() in doc, "docs/METRICS.md is out of date: run scripts/metrics-reference"
    for m in (*metrics.RUN_METRICS, *metrics.EPOCH_METRICS, *metrics.LAYER_METRICS):
        assert f"| `{m.name}` |" in doc, m.name
        assert m.description and m.label and m.short


def _record(real: bool, discrete: bool, n: int, macs: int, events: float, zeros: float, ws: float, moved):
    return {"input_is_real": real, "weight_states": [n // 3, n - 2 * (n // 3), n // 3] if discrete else None,
            "num_weights": n, "macs": macs, "events": events, "activation_sparsity": zeros, "weight_sparsity": ws,
            "gate_event_rate": events / macs, "transitions": moved}


def test_whole_network_figures_recount_the_layer_records():
    recs = [_record(True, True, 300, 3000, 1500.0, 0.0, 0.5, 12),  # first layer: real input
            _record(False, True, 90, 900, 200.0, 0.6, 0.4, 9),  # an XNOR layer
            _record(False, False, 40, 400, 300.0, 0.25, 0.0, None),  # full-precision weights
            _record(False, True, 30, 300, 50.0, 0.7, 0.3, 3)]  # another XNOR layer
    got = network_metrics(recs)
    assert got["gate_event_rate"] == pytest.approx(2050 / 4600)
    assert got["activation_sparsity"] == pytest.approx((0.6 * 900 + 0.25 * 400 + 0.7 * 300) / 4600)
    assert got["weight_sparsity"] == pytest.approx((0.5 * 300 + 0.4 * 90 + 0.3 * 30) / 460)
    assert got["transition_rate"] == pytest.approx(24 / 420)  # discrete-weight layers only
    assert set(got) == {m.name for m in metrics.EPOCH_METRICS if m.over_layers}
    # the layer sets
    assert OverLayers("events", "macs", "xnor")(recs) == pytest.approx(250 / 1200)
    assert OverLayers("events", "macs", "discrete_input")(recs) == pytest.approx(550 / 1600)
    assert OverLayers("events", "macs", "xnor")(recs[:1]) is None  # no such layer: no value
    assert network_metrics(recs[2:3])["transition_rate"] == 0.0  # full precision: as before the catalog


class _Last(Reporter):
    def epoch(self, metrics, layers, checkpoint):
        self.metrics, self.selection = metrics, checkpoint["selection"]


def test_train_returns_the_summary_the_service_stores(tmp_path):
    last = _Last()
    result = train({**TINY, "name": "direct"}, last)
    assert result["status"] == "succeeded" and result["epochs_completed"] == 2
    assert {k: result[k] for k in run_metric_names()} == summarize(last.metrics, last.selection)
    assert result["test_error"] == last.selection["test_error_at_best"] and result["best_epoch"] in (1, 2)

    settings = Settings(data_dir=tmp_path / "data", admin_token=ADMIN)
    with TestClient(create_app(settings), headers=AUTH) as c:
        run = c.post("/api/v1/runs", json={"config": {**TINY, "name": "stored"}}).json()
        assert run["summary"] == dict.fromkeys(run_metric_names())  # no epoch yet: every metric, null
        assert execute_run(run["id"], settings) == "succeeded"
        got = c.get(f"/api/v1/runs/{run['id']}").json()["summary"]
        epochs = c.get(f"/api/v1/runs/{run['id']}/metrics").json()["epochs"]
    assert list(got) == list(Summary.model_fields) == list(run_metric_names())
    best = min(epochs, key=lambda e: e["val_error"])
    selection = {"best_epoch": best["epoch"], "best_val_error": best["val_error"],
                 "test_error_at_best": best["test_error"], "best_test_error": min(e["test_error"] for e in epochs)}
    assert got == summarize(epochs[-1], selection)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    with fresh_database("gxnor_metrics") if request.param == "postgresql" else nullcontext() as url:
        yield url or f"sqlite:///{tmp_path / 'metrics.db'}"


def test_every_run_metric_sorts_the_run_list_missing_values_last(db_url, tmp_path):
    settings = Settings(data_dir=tmp_path / "data", database_url=db_url, admin_token=ADMIN)
    settings.ensure_dirs()
    seed(settings.db_url, 20, 3, random.Random(11))
    partial = ("gate_event_rate", "best_epoch")
    engine = create_engine(settings.db_url)
    with engine.begin() as conn:
        four = conn.execute(select(Run.summary).where(Run.id == 4)).scalar()
        # ties: runs 2 and 3 have run 4's summary; run 5 was summarised before two metrics were in the catalog
        for rid, summary in ((2, four), (3, four), (5, {k: v for k, v in four.items() if k not in partial})):
            conn.execute(update(Run).where(Run.id == rid).values(summary=summary))
            conn.execute(delete(RunSummary).where(RunSummary.run_id == rid))
            conn.execute(insert(RunSummary), [{"run_id": rid, "name": k, "value": v} for k, v in summary.items()])
    engine.dispose()
    with TestClient(create_app(settings), headers=AUTH) as c:
        queued = [c.post("/api/v1/runs", json={"config": {**TINY, "name": f"queued-{i}"}}).json()["id"]
                  for i in range(2)]
        assert c.get(f"/api/v1/runs/{queued[0]}").json()["summary"] == dict.fromkeys(run_metric_names())
        for name in metrics.sortable():
            assert name in SORTABLE
            for order in ("asc", "desc"):
                page = c.get("/api/v1/runs", params={"sort": name, "order": order, "limit": 500}).json()
                assert page["total"] == 22
                values = [(r["summary"].get(name), r["id"]) for r in page["items"]]
                known = [v for v in values if v[0] is not None]
                missing = [v for v in values if v[0] is None]
                assert values == known + missing, (name, order)  # missing last, either way
                sign = 1 if order == "asc" else -1
                assert known == sorted(known, key=lambda v: (sign * v[0], -v[1])), (name, order)  # ties: id desc
                assert {i for _, i in missing} == set(queued) | ({5} if name in partial else set()), (name, order)
                pages = [r["id"] for off in (0, 7, 14, 21) for r in c.get("/api/v1/runs", params={
                    "sort": name, "order": order, "limit": 7, "offset": off}).json()["items"]]
                assert pages == [i for _, i in values], (name, order)
        assert c.delete("/api/v1/runs/1").status_code == 204  # its summary rows go with it
    engine = create_engine(settings.db_url)
    with engine.connect() as conn:
        assert conn.execute(select(RunSummary).where(RunSummary.run_id == 1)).first() is None
        assert conn.execute(select(RunSummary).where(RunSummary.run_id == 2)).first() is not None
    engine.dispose()


def test_every_run_metric_is_in_the_schema_the_catalog_and_the_sweep_aggregates(tmp_path):
    names = run_metric_names()
    assert tuple(Summary.model_fields) == names
    settings = Settings(data_dir=tmp_path / "data", admin_token=ADMIN)
    with TestClient(create_app(settings), headers=AUTH) as c:
        spec = c.get("/openapi.json").json()
        assert tuple(spec["components"]["schemas"]["Summary"]["properties"]) == names
        sort = next(p for p in spec["paths"]["/api/v1/runs"]["get"]["parameters"] if p["name"] == "sort")
        assert set(metrics.sortable()) <= set(sort["schema"]["enum"])
        cat = c.get("/api/v1/catalog").json()["metrics"]
        assert [m["name"] for m in cat["run"]] == list(names)
        for m in cat["run"]:
            assert {"label", "short", "unit", "format", "better", "description", "over_seeds", "sortable",
                    "filterable"} <= set(m)
        assert {m["name"] for m in cat["epoch"]} >= {"val_error", "gate_event_rate"} and cat["pareto"]

        sweep = c.post("/api/v1/sweeps", json={"name": "agg", "base": TINY, "seeds": [0, 1],
                                               "grid": {"activations.r": [0.5]}}).json()
        for rid in sweep["run_ids"]:
            assert execute_run(rid, settings) == "succeeded"
        detail = c.get(f"/api/v1/sweeps/{sweep['id']}").json()
        table = list(csv.DictReader(io.StringIO(c.get(f"/api/v1/sweeps/{sweep['id']}/results.csv").text)))
    (row,) = detail["results"]
    assert tuple(row["metrics"]) == seed_metrics() == names
    summaries = [r["summary"] for r in detail["runs"]]
    for name in names:
        values = [s[name] for s in summaries]
        assert row["metrics"][name]["mean"] == pytest.approx(statistics.fmean(values)), name
        assert row["metrics"][name]["std"] == pytest.approx(statistics.stdev(values)), name
        assert float(table[0][f"{name}_mean"]) == pytest.approx(row["metrics"][name]["mean"]), name
    # the core's aggregate and CSV: the same metrics, in the catalog's order
    rows = aggregate([{"index": 0, "group": 0, "overrides": {}, "seed": 0}], {0: summaries[0]})
    assert tuple(rows[0]["metrics"]) == names
    assert to_csv(rows, []).splitlines()[0] == ",".join(["n", "n_done", *(f"{m}_{s}" for m in names
                                                                          for s in ("mean", "std"))])


# ---------------------------------------------------------------- migration 0007

WIDE = ("best_val_error", "test_error", "best_test_error", "best_epoch", "train_loss", "gate_event_rate",
        "activation_sparsity", "weight_sparsity", "transition_rate")



def test_migration_0007_moves_stored_summaries_into_json_and_rows_and_back(db_url):
    cfg = alembic_config(db_url)
    command.upgrade(cfg, "0006")
    engine = create_engine(db_url)
    full = dict(zip(WIDE, (0.1 + 0.2, 0.25, 0.125, 7, 1 / 3, 0.2, 0.75, 0.5, 0.015625), strict=True))
    part = {**dict.fromkeys(WIDE), "best_val_error": 0.5, "best_epoch": 1, "train_loss": 2.0}
    with engine.begin() as conn:
        md = MetaData()
        md.reflect(conn, only=["runs", "projects", "teams", "epoch_metrics"])
        runs, epochs = md.tables["runs"], md.tables["epoch_metrics"]
        team = conn.execute(text("SELECT id FROM teams WHERE name = 'default'")).scalar()
        now = datetime.now(UTC)
        project = conn.execute(insert(md.tables["projects"]).values(team_id=team, name="p", created_at=now)
                               .returning(md.tables["projects"].c.id)).scalar()
        common = {"project_id": project, "config": {}, "cancel_requested": False, "attempt": 1, "max_attempts": 3,
                  "progress_epoch": 0, "progress_fraction": 0.0, "total_epochs": 9, "created_at": now}
        conn.execute(insert(runs), [
            {**common, "id": 1, "name": "full", "status": "succeeded", "epochs_done": 9, **full},
            {**common, "id": 2, "name": "queued", "status": "queued", "epochs_done": 0, **dict.fromkeys(WIDE)},
            {**common, "id": 3, "name": "part", "status": "failed", "epochs_done": 1, **part},
        ])
        conn.execute(insert(epochs).values(run_id=1, epoch=9, metrics={"epoch": 9}))

    command.upgrade(cfg, "0007")
    with engine.connect() as conn:
        stored = dict(conn.execute(text("SELECT id, CAST(summary AS TEXT) FROM runs ORDER BY id")).all())
        rows = conn.execute(text("SELECT run_id, name, value FROM run_summaries ORDER BY run_id, name")).all()
        assert conn.execute(text("SELECT count(*) FROM epoch_metrics WHERE run_id = 1")).scalar() == 1
        cols = {c["name"] for c in inspect(conn).get_columns("runs")}
        if engine.dialect.name == "postgresql":
            index = conn.execute(text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_runs_list'")).scalar()
            assert "summary" in index and "test_error" not in index
    assert json.loads(stored[1]) == full and json.loads(stored[1])["best_val_error"] == 0.1 + 0.2  # every digit
    assert stored[2] is None and json.loads(stored[3]) == part
    assert rows == sorted([(1, k, float(v)) for k, v in full.items()] + [(3, k, float(v)) for k, v in part.items()
                                                                        if v is not None])
    assert "summary" in cols and not cols & set(WIDE)

    command.downgrade(cfg, "0006")
    with engine.connect() as conn:
        back = {r.id: r for r in conn.execute(text(f"SELECT id, {', '.join(WIDE)} FROM runs ORDER BY id"))}
        tables = inspect(conn).get_table_names()
        if engine.dialect.name == "postgresql":
            index = conn.execute(text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_runs_list'")).scalar()
            assert "summary" not in index and "test_error" in index
    assert {k: getattr(back[1], k) for k in WIDE} == full and {k: getattr(back[3], k) for k in WIDE} == part
    assert all(getattr(back[2], k) is None for k in WIDE) and "run_summaries" not in tables
    command.upgrade(cfg, "head")
    engine.dispose()


def test_summaries_hold_no_nan():
    summary = summarize({"train_loss": math.nan, "gate_event_rate": math.inf}, {"best_val_error": math.inf})
    assert summary["train_loss"] is None and summary["gate_event_rate"] is None and summary["best_val_error"] is None
