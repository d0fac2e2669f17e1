"""Every operation in /openapi.json has a readable, unique id (app.main.operation_id): a client generated from
the spec names its methods by them (``create_run``, not ``create_run_api_v1_runs_post``)."""

from __future__ import annotations

import re
from collections import Counter

from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings


def test_operation_ids_are_unique_snake_case_names(tmp_path):
    with TestClient(create_app(Settings(data_dir=tmp_path))) as client:
        paths = client.get("/openapi.json").json()["paths"]
    ops = {(method.upper(), path): op.get("operationId") for path, methods in paths.items()
           for method, op in methods.items()}
    assert len(ops) > 25
    assert all(ops.values()), [k for k, v in ops.items() if not v]
    repeated = [i for i, n in Counter(ops.values()).items() if n > 1]
    assert repeated == []
    bad = [i for i in ops.values() if not re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", i)]
    assert bad == []
    generated = [i for i in ops.values() if "_api_v1_" in i or re.search(r"_(get|post|put|patch|delete)$", i)]
    assert generated == []
    # The ones docs/API.md names.
    assert ops[("POST", "/api/v1/runs")] == "create_run" and ops[("GET", "/api/v1/runs")] == "list_runs"
    assert ops[("GET", "/api/v1/runs/{run_id}")] == "get_run"
    assert ops[("PATCH", "/api/v1/runs/{run_id}")] == "update_run"
    assert ops[("POST", "/api/v1/runs/bulk")] == "bulk_runs"
