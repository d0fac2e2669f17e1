"""What the runs page's columns need from the API: the list sorts by every run metric of the catalog and by the
fields it filters by (project, sweep), and runs nobody named get distinct names (app.lifecycle.default_name) —
on a real SQLite file and a real PostgreSQL database."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from app import summaries
from app.db import session_scope
from app.models import Run
from gxnor_core.config import PRESETS
from tests.pg import admin_app

ADMIN = "gx_runs-columns-admin"
TINY = {"model": {"hidden": [8]}, "train": {"epochs": 1, "batch_size": 100}}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def client(request, tmp_path_factory):
    with admin_app(request.param, tmp_path_factory.mktemp(request.param), ADMIN, "gxnor_columns") as (c, _):
        yield c


def submit(client: TestClient, config: dict) -> dict:
    resp = client.post("/api/v1/runs", json={"config": config})
    assert resp.status_code == 201, resp.text
    return resp.json()


def summarised(client: TestClient, run_id: int, summary: dict | None) -> None:
    """Store a summary as the worker does after an epoch: the JSON object and its sort rows (app.summaries)."""
    with session_scope(client.app.state.settings.db_url) as s:
        s.execute(update(Run).where(Run.id == run_id).values(status="succeeded", summary=summary))
        if summary:
            summaries.store(s, run_id, summary)


def ids(client: TestClient, **params) -> list[int]:
    resp = client.get("/api/v1/runs", params={"limit": 500, **params})
    assert resp.status_code == 200, resp.text
    return [r["id"] for r in resp.json()["items"]]


def test_the_list_sorts_by_every_run_metric_of_the_catalog(client):
    metrics = client.get("/api/v1/catalog").json()["metrics"]["run"]
    project = f"sorts-{uuid.uuid4().hex[:6]}"
    a, b, empty = (submit(client, {**TINY, "project": project})["id"] for _ in range(3))

    # Each metric orders a and b its own way (even: a first when ascending; odd: b first); empty has no value.
    def value(m: dict, low: bool) -> float:
        if m["format"] == "integer":  # an epoch number: the summary's schema wants an int
            return 1 if low else 2
        return 0.25 if low else 0.75

    summarised(client, a, {m["name"]: value(m, i % 2 == 0) for i, m in enumerate(metrics)})
    summarised(client, b, {m["name"]: value(m, i % 2 == 1) for i, m in enumerate(metrics)})
    summarised(client, empty, None)
    assert len(metrics) >= 10
    for i, m in enumerate(metrics):
        low, high = (a, b) if i % 2 == 0 else (b, a)
        assert ids(client, project=project, sort=m["name"], order="asc") == [low, high, empty], m["name"]
        assert ids(client, project=project, sort=m["name"], order="desc") == [high, low, empty], m["name"]


def test_the_list_sorts_by_project_and_sweep(client):
    tag = uuid.uuid4().hex[:6]
    b = submit(client, {**TINY, "name": f"{tag}-b", "project": f"{tag}-beta"})["id"]
    a = submit(client, {**TINY, "name": f"{tag}-a", "project": f"{tag}-alpha"})["id"]
    assert ids(client, q=tag, sort="project", order="asc") == [a, b]
    assert ids(client, q=tag, sort="project", order="desc") == [b, a]

    points = []
    for name in ("sw1", "sw2"):
        sweep = client.post("/api/v1/sweeps", json={"name": f"{tag}-{name}", "base": {**TINY, "project": f"{tag}-beta"},
                                                    "grid": {"activations.r": [0.25, 1.0]}})
        assert sweep.status_code == 201, sweep.text
        points.append(sorted(sweep.json()["run_ids"], reverse=True))  # within a sweep: newest first
    # By sweep id, either way; outside any sweep: last, newest first.
    assert ids(client, q=tag, sort="sweep", order="asc") == [*points[0], *points[1], a, b]
    assert ids(client, q=tag, sort="sweep", order="desc") == [*points[1], *points[0], a, b]
    bad = client.get("/api/v1/runs", params={"sort": "nope"})
    assert bad.status_code == 422 and bad.json()["field"] == "sort"
    assert "sweep" in bad.json()["message"] and "best_val_error" in bad.json()["message"]


def test_runs_nobody_named_get_distinct_names_and_given_names_stay(client):
    quick = [submit(client, {**PRESETS["quick"], **TINY}) for _ in range(3)]
    assert [r["name"] for r in quick] == [f"quick-{r['id']}" for r in quick]
    assert all(r["config"]["name"] == "quick" for r in quick)  # the config keeps the preset's name
    default = [submit(client, TINY) for _ in range(2)]  # no name at all: the default config's "run"
    assert [r["name"] for r in default] == [f"run-{r['id']}" for r in default]
    fp = submit(client, {**PRESETS["quick-fp"], **TINY})
    assert fp["name"] == f"quick-fp-{fp['id']}"
    assert len({r["name"] for r in [*quick, *default, fp]}) == 6
    # The list and the run page show the same name.
    assert client.get(f"/api/v1/runs/{quick[0]['id']}").json()["name"] == f"quick-{quick[0]['id']}"

    mine = [submit(client, {**TINY, "name": "my ablation"}) for _ in range(2)]
    assert [r["name"] for r in mine] == ["my ablation", "my ablation"]  # a given name is kept, even twice

    # Sweep points keep the names of their point labels.
    sweep = client.post("/api/v1/sweeps", json={"name": "quick", "base": {**PRESETS["quick"], **TINY},
                                                "grid": {"activations.r": [0.25, 1.0]}}).json()
    names = [client.get(f"/api/v1/runs/{i}").json()["name"] for i in sweep["run_ids"]]
    assert sorted(names) == ["quick · r=0.25 · seed=0", "quick · r=1.0 · seed=0"]
