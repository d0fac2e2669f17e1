"""The Python client (gxnor_client) against a real `gxnor up` — its API, its local worker training the runs:
submit → wait → metrics and layer records, record files, tags and archive, cancel, sweeps and comparisons,
refusals as one ApiError naming the field; `gxnor tag`; and the docs' example, run as a user runs it.
(`gxnor submit` and `gxnor sweep` go through the same client: tests/test_cli.py.)"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from gxnor_client import ApiError, Client, Run
from tests.integration.conftest import ADMIN_TOKEN, AS_ADMIN, Proc, free_port, service_env, wait_healthy

pytestmark = pytest.mark.slow  # a real `gxnor up` that trains
ROOT = Path(__file__).resolve().parent.parent
TINY = {"model.hidden": [16], "train.epochs": 2, "train.batch_size": 200}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`gxnor up` on a free port: its URL (the admin's token is ADMIN_TOKEN)."""
    tmp = tmp_path_factory.mktemp("up")
    port = free_port()
    up = Proc(["up", "--port", str(port), "--data-dir", str(tmp / "data")], service_env(tmp), tmp / "up.log")
    try:
        wait_healthy(f"http://127.0.0.1:{port}", up)
        yield f"http://127.0.0.1:{port}"
    finally:
        up.stop()


@pytest.fixture()
def gx(server):
    with Client(server, ADMIN_TOKEN) as c:
        yield c


def test_importing_the_client_loads_no_server_framework_database_layer_or_torch():
    loaded = subprocess.run([sys.executable, "-c", "import sys, gxnor_client; print(' '.join(sys.modules))"],
                            capture_output=True, text=True, check=True).stdout.split()
    assert not {m.split(".")[0] for m in loaded} & {"fastapi", "starlette", "sqlalchemy", "torch", "app",
                                                    "gxnor_core", "numpy"}


def test_submit_wait_then_metrics_layers_and_record_files(gx, server, tmp_path):
    run = gx.submit("quick", TINY, name="client-a")
    assert isinstance(run, Run) and run.status == "queued" and run.config["model"]["hidden"] == [16]
    assert gx.url(run) == f"{server}/#/runs/{run.id}"
    seen: list[Run] = []
    done = gx.wait(run.id, seen.append, poll_s=0.2, timeout=300)
    assert done.status == "succeeded" and seen[-1] == done and done.progress.epochs_done == 2
    assert done.summary["best_val_error"] is not None and done.finished_at >= done.started_at
    with httpx.Client(base_url=server, headers=AS_ADMIN) as raw:
        assert gx.metrics(run.id) == raw.get(f"/api/v1/runs/{run.id}/metrics").json()["epochs"]
        assert gx.layers(run.id) == raw.get(f"/api/v1/runs/{run.id}/layers").json()["records"]
    assert [m["epoch"] for m in gx.metrics(run.id)] == [1, 2]
    assert [(r["epoch"], r["layer"]) for r in gx.layers(run.id, epoch=2)] == [(2, "fc1"), (2, "fc2")]
    # The record files, streamed to disk: the same records.
    path = gx.download(run.id, "metrics.jsonl", tmp_path / "m.jsonl")
    assert [json.loads(line) for line in path.read_text().splitlines()] == gx.metrics(run.id)
    rows = list(csv.DictReader(gx.download(run.id, "layers.csv", tmp_path / "l.csv").open()))
    assert [(int(r["epoch"]), r["layer"]) for r in rows] == [(e, n) for e in (1, 2) for n in ("fc1", "fc2")]
    with pytest.raises(ApiError) as missing:
        gx.download(999_999, "metrics.csv", tmp_path / "x.csv")
    assert missing.value.status == 404
    assert [r.id for r in gx.runs(q="client-a")] == [run.id]


def test_refusals_are_one_error_naming_the_field(gx, server):
    with pytest.raises(ApiError) as err:
        gx.submit("quick", {"train.batch_size": 1295})
    assert (err.value.status, err.value.field) == (422, "config.train.batch_size")
    assert "larger than the training split" in err.value.message
    with pytest.raises(ApiError) as err:
        gx.submit({"model": {"hiden": [3]}})
    assert (err.value.status, err.value.field) == (422, "config.model.hiden")
    with pytest.raises(ApiError) as err:
        gx.submit("nope")
    assert err.value.field == "config" and "quick" in err.value.message  # the presets are listed
    with pytest.raises(ApiError) as err:
        gx.run(999_999)
    assert (err.value.status, err.value.message) == (404, "run 999999 not found")
    with pytest.raises(ApiError) as err, Client(server, "gx_wrong") as stranger:
        stranger.runs()
    assert err.value.status == 401
    with pytest.raises(ApiError) as err, Client(f"http://127.0.0.1:{free_port()}", ADMIN_TOKEN) as nowhere:
        nowhere.runs()
    assert err.value.status is None  # never answered (after the retries)


def test_tags_archive_and_the_tag_command(gx, server):
    a, b = gx.submit("quick", TINY, name="tag-a"), gx.submit("quick", TINY, name="tag-b")
    out = gx.tag([a.id, b.id, 999_999], ["paper", "r-study"])
    assert out.done == 2 and [(r["id"], r["status"]) for r in out.failed] == [(999_999, 404)]
    assert gx.run(a.id).tags == ["paper", "r-study"]
    assert {r.id for r in gx.runs(tag="paper")} == {a.id, b.id}
    gx.untag(b.id, "paper")
    assert gx.run(b.id).tags == ["r-study"] and [r.id for r in gx.runs(tag="paper")] == [a.id]
    # `gxnor tag` is the same call: one line per run, exit 2 when one was refused.
    cli = [sys.executable, "-m", "gxnor_cli", "tag", str(b.id), "-t", "cli", "--server", server, "--token", ADMIN_TOKEN]
    res = subprocess.run(cli, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stdout == f"run #{b.id}: tagged cli\n", res.stderr
    assert gx.run(b.id).tags == ["cli", "r-study"]
    res = subprocess.run([*cli[:4], "999999", *cli[5:], "--remove"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and res.stdout == "run #999999: 404: run 999999 not found\n", res.stdout
    assert res.stderr == "gxnor: error: 1 of 1 runs not untagged\n"
    # Archive: a finished run leaves the list, until asked for (a run still training: test_cancel_stops_a_run).
    gx.wait(a.id, timeout=300)
    assert gx.archive(a.id).done == 1 and gx.run(a.id).archived
    assert a.id not in {r.id for r in gx.runs(limit=500)} and a.id in {r.id for r in gx.runs(archived="true")}
    gx.unarchive(a.id)
    assert not gx.run(a.id).archived


def test_cancel_stops_a_run(gx):
    run = gx.submit("quick", {**TINY, "train.epochs": 2000}, name="to-cancel")
    assert [(r["id"], r["status"]) for r in gx.archive(run.id).failed] == [(run.id, 409)]  # not finished
    assert gx.cancel(run.id).id == run.id
    assert gx.wait(run.id, poll_s=0.2, timeout=120).status == "cancelled"
    with pytest.raises(ApiError) as err:
        gx.cancel(run.id)
    assert err.value.status == 409


def test_a_sweep_followed_to_its_end_and_compared(gx):
    spec = {"name": "client-sweep", "base": {"model": {"hidden": [16]}, "train": {"epochs": 1, "batch_size": 200}},
            "list": [{"activations.r": 0.25}, {"activations.r": 1.0}]}
    sweep = gx.sweep(spec, {"train.lr": 0.02})
    assert sweep.fields == ["activations.r"] and len(sweep.run_ids) == 2
    seen = []
    done = gx.wait_sweep(sweep.id, seen.append, poll_s=0.3, timeout=300)
    assert done.status == "finished" and done.counts["succeeded"] == 2 and seen[-1] == done
    assert [r["overrides"] for r in done.results] == [{"activations.r": 0.25}, {"activations.r": 1.0}]
    assert {gx.run(i).config["train"]["lr"] for i in done.run_ids} == {0.02}
    cmp = gx.compare(done.run_ids, "test_error")
    assert cmp.metric == "test_error" and cmp.epochs == [1] and set(cmp.series) == set(done.run_ids)
    assert cmp.config_diff["activations.r"] == [0.25, 1.0]
    assert [cmp.series[i][0] for i in done.run_ids] == [gx.metrics(i)[0]["test_error"] for i in done.run_ids]


def test_the_docs_example_goes_from_submit_to_a_comparison_table(server):
    res = subprocess.run([sys.executable, str(ROOT / "docs" / "examples" / "compare_runs.py"), "--server", server,
                          "--a", "0.25", "1.0", "--epochs", "1"], capture_output=True, text=True, timeout=600,
                         env={**os.environ, "GXNOR_TOKEN": ADMIN_TOKEN}, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].split() == ["run", "activations.a", "status", "epochs", "best", "val", "err", "test", "err",
                                "last", "val", "err"]
    rows = [line.split() for line in lines[1:]]
    assert [(r[1], r[2], r[3]) for r in rows] == [("0.25", "succeeded", "1"), ("1.0", "succeeded", "1")]
    with Client(server, ADMIN_TOKEN) as gx:
        for r in rows:
            run = gx.run(int(r[0]))
            assert run.config["activations"]["a"] == float(r[1])
            assert r[4:6] == [f"{100 * run.summary['best_val_error']:.2f}", "%"]
