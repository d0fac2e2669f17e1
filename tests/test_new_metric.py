"""Adding a run-level metric is a change to the catalog, to where the value is computed, and a test.

A copy of ``gxnor_core`` gets two new metrics — an aggregate of the layer records (the catalog
computes it: one file) and a figure ``train()`` computes (two files) — exactly as a developer would
add them, and a separate Python process, with that copy first on its path and this repository's
``app`` and ``worker`` unchanged, runs a sweep through the API.  Both metrics must then be in the
API's Summary and /catalog, sort the run list (SQLite and PostgreSQL), and be aggregated over seeds in
the sweep's results and its CSV — with no other code.  (docs/METRICS.md, "Adding a metric".)
"""

import ast
import json
import os
import shutil
import subprocess
import sys
import textwrap
from contextlib import ExitStack, suppress
from pathlib import Path

import pytest

from tests.pg import fresh_database
from tests.services import require_postgres

ROOT = Path(__file__).resolve().parents[1]

NEW_EPOCH_METRICS = '''
    Metric("discrete_input_event_rate", "Gate-event rate (discrete-input layers)", "DI events", "fraction", "lower",
           "Gate events / dense MACs over the layers whose input is discrete.", digits=1,
           over_layers=OverLayers("events", "macs", "discrete_input")),
    Metric("samples_seen", "Training samples seen", "Seen", "count", None,
           "Training samples in the epoch's batches (the last partial batch is dropped)."),
'''
NEW_RUN_METRICS = '\n    last("discrete_input_event_rate"),\n    last("samples_seen"),\n'
NEW_VALUE = ' "samples_seen": float(seen),'  # in the dict of the epoch's metrics that train() builds


def _insert_after_last(source: str, node: ast.AST, text: str) -> str:
    """``text`` (elements, each with its comma) after the last element of the tuple or dict ``node``."""
    last = (node.values if isinstance(node, ast.Dict) else node.elts)[-1]
    lines = source.splitlines(keepends=True)
    # end_col_offset counts UTF-8 bytes (a label with "≥" or "—" is longer in bytes than in characters)
    end_line = lines[last.end_lineno - 1]
    offset = sum(len(line) for line in lines[:last.end_lineno - 1]) \
        + len(end_line.encode()[:last.end_col_offset].decode())
    rest = source[offset:]
    if rest.lstrip().startswith(","):  # keep the last element's own trailing comma
        offset += len(rest) - len(rest.lstrip()) + 1
        return source[:offset] + text + source[offset:]
    return source[:offset] + "," + text + rest


def _assigned(tree: ast.AST, name: str) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets) and isinstance(
                    node.value, ast.Tuple | ast.Dict):
                return node.value
    pytest.fail(f"no `{name} = (…)` / `{{…}}` to add to: update this test with the code's new shape")


def _patched_core(dest: Path) -> Path:
    """A copy of gxnor_core with the new metrics added (bytes-for-bytes what a developer's diff would do)."""
    core = dest / "gxnor_core"
    shutil.copytree(ROOT / "gxnor_core", core, ignore=shutil.ignore_patterns("__pycache__"))
    catalog = (core / "metrics.py").read_text()
    catalog = _insert_after_last(catalog, _assigned(ast.parse(catalog), "RUN_METRICS"), NEW_RUN_METRICS)
    catalog = _insert_after_last(catalog, _assigned(ast.parse(catalog), "EPOCH_METRICS"), NEW_EPOCH_METRICS)
    (core / "metrics.py").write_text(catalog)
    train = (core / "train.py").read_text()
    (core / "train.py").write_text(_insert_after_last(train, _assigned(ast.parse(train), "metrics"), NEW_VALUE))
    return dest


SCRIPT = textwrap.dedent('''
    import csv, io, json, sys
    import gxnor_core
    assert gxnor_core.__file__.startswith(sys.argv[1]), gxnor_core.__file__
    from fastapi.testclient import TestClient
    from app.main import create_app
    from app.settings import Settings
    from worker.runner import execute_run


    def sweep_on(database, data_dir, url):
        token = f"gx_new-metric-{database}"  # (one per app: nothing cached under it crosses over)
        settings = Settings(data_dir=data_dir, database_url=url or None, admin_token=token)
        base = {"project": "new", "model": {"hidden": [16]}, "train": {"epochs": 2, "batch_size": 200}}
        out = {}
        with TestClient(create_app(settings), headers={"Authorization": f"Bearer {token}"}) as c:
            spec = c.get("/openapi.json").json()
            out["summary_schema"] = list(spec["components"]["schemas"]["Summary"]["properties"])
            out["sort_keys"] = next(p for p in spec["paths"]["/api/v1/runs"]["get"]["parameters"]
                                    if p["name"] == "sort")["schema"]["enum"]
            out["catalog"] = [m["name"] for m in c.get("/api/v1/catalog").json()["metrics"]["run"]]
            sweep = c.post("/api/v1/sweeps", json={"name": "new", "base": base, "seeds": [0],
                                                   "grid": {"activations.r": [0.0, 1.0]}}).json()
            for rid in sweep["run_ids"]:
                assert execute_run(rid, settings) == "succeeded"
            out["runs"] = {rid: {"summary": c.get(f"/api/v1/runs/{rid}").json()["summary"],
                                 "last_epoch": c.get(f"/api/v1/runs/{rid}/metrics").json()["epochs"][-1],
                                 "layers": c.get(f"/api/v1/runs/{rid}/layers", params={"epoch": 2}).json()["records"]}
                           for rid in sweep["run_ids"]}
            out["sorted"] = {f"{m}:{o}": [(r["id"], r["summary"][m]) for r in c.get(
                "/api/v1/runs", params={"sort": m, "order": o}).json()["items"]]
                for m in ("discrete_input_event_rate", "samples_seen") for o in ("asc", "desc")}
            out["results"] = c.get(f"/api/v1/sweeps/{sweep['id']}").json()["results"]
            out["csv_header"] = next(csv.reader(io.StringIO(c.get(f"/api/v1/sweeps/{sweep['id']}/results.csv").text)))
        return out


    for database, data_dir, url in zip(sys.argv[2::3], sys.argv[3::3], sys.argv[4::3]):
        print(f"RESULT {database} " + json.dumps(sweep_on(database, data_dir, url)))
''')


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """The script's findings on each database: one process for both (each start loads PyTorch and the app, seconds);
    PostgreSQL's only when its server answers (its test then says why not, in one line)."""
    tmp = tmp_path_factory.mktemp("new_metric")
    overlay = _patched_core(tmp / "overlay")
    (tmp / "run.py").write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(overlay), str(ROOT)])}
    env = {k: v for k, v in env.items() if not k.startswith("GXNOR_")}
    with ExitStack() as stack:
        args = ["sqlite", str(tmp / "sqlite"), ""]
        with suppress(pytest.skip.Exception, pytest.fail.Exception):  # (no server: its test says so)
            args += ["postgresql", str(tmp / "postgresql"), stack.enter_context(fresh_database("gxnor_newmetric"))]
        proc = subprocess.run([sys.executable, str(tmp / "run.py"), str(overlay), *args], cwd=tmp, env=env,
                              capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {database: json.loads(found) for database, found in
            (line.removeprefix("RESULT ").split(" ", 1) for line in proc.stdout.splitlines()
             if line.startswith("RESULT "))}


@pytest.mark.slow
@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_metric_added_to_the_catalog_reaches_the_api_sorts_and_sweeps(swept, database):
    if database == "postgresql":
        require_postgres()
    out = swept[database]
    new = ("discrete_input_event_rate", "samples_seen")

    for name in new:  # in the schema, the sort keys and the catalog
        assert name in out["summary_schema"] and name in out["sort_keys"] and name in out["catalog"]
    for rid, run in out["runs"].items():  # the values: a recount of the layer records; train()'s figure
        gated = [r for r in run["layers"] if not r["input_is_real"]]
        assert [r["layer"] for r in gated] == ["fc2"]
        assert run["summary"]["discrete_input_event_rate"] == pytest.approx(
            sum(r["events"] for r in gated) / sum(r["macs"] for r in gated)), rid
        assert run["summary"]["discrete_input_event_rate"] == run["last_epoch"]["discrete_input_event_rate"]
        assert run["summary"]["samples_seen"] == run["last_epoch"]["samples_seen"] > 0
    for name in new:  # sorted by it, both ways
        asc, desc = out["sorted"][f"{name}:asc"], out["sorted"][f"{name}:desc"]
        assert [v for _, v in asc] == sorted(v for _, v in asc) and len(asc) == 2
        assert [v for _, v in desc] == sorted((v for _, v in desc), reverse=True)
    values = {run["summary"]["discrete_input_event_rate"] for run in out["runs"].values()}
    assert len(values) == 2  # r = 0 and r = 1 gate differently: the sort above means something
    by_id = {int(k): v for k, v in out["runs"].items()}
    for row in out["results"]:  # aggregated over seeds (one seed here: the run's value, std 0)
        (rid,) = [i for i, r in by_id.items() if r["summary"]["discrete_input_event_rate"]
                  == row["metrics"]["discrete_input_event_rate"]["mean"]]
        for name in new:
            assert row["metrics"][name] == {"mean": by_id[rid]["summary"][name], "std": 0.0, "n": 1}
    for name in new:
        assert f"{name}_mean" in out["csv_header"] and f"{name}_std" in out["csv_header"]
