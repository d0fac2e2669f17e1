"""A run's metrics and layer records as CSV and JSON Lines downloads (app.records): the files hold exactly what
GET /runs/{id}/metrics and /layers answer, in pages that cross epochs, with the catalog's names as columns;
another team's run is a 404; browsers download them through a short-lived link.  A real trained run, on a real
SQLite file and a real PostgreSQL database."""

from __future__ import annotations

import csv
import io
import json

import pytest
from fastapi.testclient import TestClient

from app import records
from app.db import get_engine
from gxnor_core.metrics import EPOCH_METRICS, LAYER_METRICS
from tests.pg import app_with_two_teams
from worker.runner import execute_run

pytestmark = pytest.mark.slow  # each database trains a run first
ADMIN = "gx_artifacts-admin"
TINY = {"name": "tiny run/α", "model": {"hidden": [8]}, "train": {"epochs": 3, "batch_size": 200}}
FILES = [(t, f) for t in ("metrics", "layers") for f in ("csv", "jsonl")]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def service(request, tmp_path_factory):
    """The app with one trained run of the admin's team, and a token of bob in another team."""
    with app_with_two_teams(request.param, tmp_path_factory.mktemp(request.param), ADMIN,
                            "gxnor_artifacts") as (client, settings, bob):
        run_id = client.post("/api/v1/runs", json={"config": TINY}).json()["id"]
        assert execute_run(run_id, settings) == "succeeded"
        yield client, run_id, bob


def parse_csv(text: str) -> tuple[list[str], list[dict]]:
    """The header and the rows, each cell read back as the docs say: empty is null, `layer` and `kind` are text,
    every other cell is JSON."""
    rows = list(csv.reader(io.StringIO(text)))
    header = rows[0]
    return header, [{c: None if v == "" else v if c in ("layer", "kind") else json.loads(v)
                     for c, v in zip(header, row, strict=True)} for row in rows[1:]]


def expected(client: TestClient, run_id: int, table: str) -> list[dict]:
    resp = client.get(f"/api/v1/runs/{run_id}/{table}")
    assert resp.status_code == 200, resp.text
    return resp.json()["epochs" if table == "metrics" else "records"]


@pytest.mark.parametrize("page_rows", [500, 4])  # 4: a page boundary inside an epoch's layer records
def test_the_files_hold_exactly_the_records_of_the_json_routes(service, monkeypatch, page_rows):
    client, run_id, _ = service
    monkeypatch.setattr(records, "PAGE_ROWS", page_rows)
    for table, fmt in FILES:
        resp = client.get(f"/api/v1/runs/{run_id}/{table}.{fmt}")
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-type"].startswith("text/csv" if fmt == "csv" else "application/x-ndjson")
        assert resp.headers["content-disposition"] == f'attachment; filename="run-{run_id}-tiny-run-{table}.{fmt}"'
        want = expected(client, run_id, table)
        assert len(want) == (3 if table == "metrics" else 6)  # 3 epochs × 2 layers
        if fmt == "jsonl":
            assert resp.text.endswith("\n") and [json.loads(line) for line in resp.text.splitlines()] == want
            continue
        header, rows = parse_csv(resp.text)
        names = [m.name for m in (EPOCH_METRICS if table == "metrics" else LAYER_METRICS)]
        # The columns: the identity fields, the catalog's metric names in its order, then a record's lists.
        assert header == (["epoch", *names] if table == "metrics" else
                          ["epoch", "layer", "kind", "input_is_real", *names, "weight_states", "activation_levels",
                           "transition_matrix"])
        assert {k for r in want for k in r} == set(header)  # every field the trainer records has its column
        assert rows == want


def test_another_teams_run_is_a_404_and_a_bad_format_names_the_field(service):
    client, run_id, bob = service
    for table, fmt in FILES:
        assert client.get(f"/api/v1/runs/{run_id}/{table}.{fmt}", headers=bob).status_code == 404
        assert client.get(f"/api/v1/runs/999999/{table}.{fmt}").status_code == 404
        assert client.get(f"/api/v1/runs/{run_id}/{table}.{fmt}", headers={"Authorization": ""}).status_code == 401
    assert client.post(f"/api/v1/runs/{run_id}/records/link", headers=bob).status_code == 404
    bad = client.get(f"/api/v1/runs/{run_id}/metrics.xml")
    assert bad.status_code == 422 and bad.json()["field"] == "format", bad.text
    bad = client.post(f"/api/v1/runs/{run_id}/records/link", params={"file": "layers.xml"})
    assert bad.status_code == 422 and bad.json()["field"] == "file", bad.text


def test_a_link_downloads_one_file_without_a_token(service):
    client, run_id, _ = service
    for table, fmt in FILES:
        made = client.post(f"/api/v1/runs/{run_id}/records/link", params={"file": f"{table}.{fmt}"})
        assert made.status_code == 201, made.text
        url = made.json()["url"]
        assert url.startswith("/api/v1/downloads/records/") and ADMIN not in url
        anon = client.get(url, headers={"Authorization": ""})
        assert anon.status_code == 200, anon.text
        assert anon.content == client.get(f"/api/v1/runs/{run_id}/{table}.{fmt}").content
        assert f'filename="run-{run_id}-tiny-run-{table}.{fmt}"' in anon.headers["content-disposition"]
        # A records link serves only records: not the checkpoint's or the model's download route.
        key = url.rsplit("/", 1)[1]
        assert client.get(f"/api/v1/downloads/{key}", headers={"Authorization": ""}).status_code == 404
        assert client.get(f"/api/v1/downloads/model/{key}", headers={"Authorization": ""}).status_code == 404
    checkpoint = client.post(f"/api/v1/runs/{run_id}/checkpoint/link").json()["url"].rsplit("/", 1)[1]
    assert client.get(f"/api/v1/downloads/records/{checkpoint}", headers={"Authorization": ""}).status_code == 404


def test_a_run_without_epochs_gives_a_header_only_csv_and_an_empty_jsonl(service):
    client, _, _ = service
    run_id = client.post("/api/v1/runs", json={"config": {**TINY, "name": "queued"}}).json()["id"]
    assert client.get(f"/api/v1/runs/{run_id}/metrics.jsonl").content == b""
    text = client.get(f"/api/v1/runs/{run_id}/layers.csv").text
    assert text.splitlines() == [",".join(records.COLUMNS["layers"])]


def test_no_connection_is_held_while_a_page_waits_for_the_client(service, monkeypatch):
    """The file is made page by page, and each page's connection is back in the pool before the page is sent: a
    client that stops reading mid-file (the generator paused at a yield) holds none."""
    client, run_id, _ = service
    monkeypatch.setattr(records, "PAGE_ROWS", 2)
    pool = get_engine(client.app.state.settings.db_url).pool
    chunks = records.stream(client.app.state.settings.db_url, run_id, "layers", "jsonl")
    got = []
    for chunk in chunks:  # each chunk: one page, sent while the generator waits
        assert pool.checkedout() == 0
        got.append(chunk)
    assert len(got) == 3 and b"".join(got) == client.get(f"/api/v1/runs/{run_id}/layers.jsonl").content
