"""REST API against a real SQLite file; runs are trained by the real runner in-process."""

import json

import pytest
import torch
from fastapi.testclient import TestClient

from app.main import create_app
from app.runs import downsample
from app.schemas import CompareOut, LayersOut, MetricsOut, RunList, RunOut
from app.settings import Settings
from gxnor_core import DATASETS, load_model
from worker.runner import execute_run

QUICK = {"name": "api-quick", "model": {"hidden": [32]}, "train": {"epochs": 3, "batch_size": 100}}
ADMIN = "gx_api-test-admin"
AS_ADMIN = {"Authorization": f"Bearer {ADMIN}"}


@pytest.fixture()
def settings(tmp_path):
    return Settings(data_dir=tmp_path / "data", progress_interval_s=0.05, admin_token=ADMIN)


@pytest.fixture()
def client(settings):
    with TestClient(create_app(settings), headers=AS_ADMIN) as c:
        yield c


def submit(client, **overrides):
    config = json.loads(json.dumps(QUICK))
    for key, value in overrides.items():
        section, _, field = key.partition("__")
        if field:
            config.setdefault(section, {})[field] = value
        else:
            config[section] = value
    resp = client.post("/api/v1/runs", json={"config": config})
    assert resp.status_code == 201, resp.text
    return resp.json()


def test_openapi_and_docs_are_served(client):
    spec = client.get("/openapi.json").json()
    assert "/api/v1/runs" in spec["paths"] and "/api/v1/compare" in spec["paths"]
    assert client.get("/docs").status_code == 200
    assert client.get("/healthz").json() == {"status": "ok", "database": True, "broker": True}


@pytest.mark.slow
def test_a_submitted_run_is_queued_then_trained_epoch_by_epoch(client, settings):
    run = submit(client)
    assert run["status"] == "queued" and run["progress"]["total_epochs"] == 3
    assert execute_run(run["id"], settings) == "succeeded"
    got = client.get(f"/api/v1/runs/{run['id']}").json()
    assert got["status"] == "succeeded" and got["progress"]["epochs_done"] == 3
    assert got["summary"]["test_error"] is not None and got["finished_at"]
    metrics_body = client.get(f"/api/v1/runs/{run['id']}/metrics").json()
    metrics = metrics_body["epochs"]
    assert [m["epoch"] for m in metrics] == [1, 2, 3]
    layers_body = client.get(f"/api/v1/runs/{run['id']}/layers").json()
    layers = layers_body["records"]
    # Responses are built without pydantic on the hot path: they must still match their schemas.
    RunOut.model_validate(got)
    RunList.model_validate(client.get("/api/v1/runs").json())
    MetricsOut.model_validate(metrics_body)
    LayersOut.model_validate(layers_body)
    assert [(r["epoch"], r["layer"]) for r in layers] == [(e, n) for e in (1, 2, 3) for n in ("fc1", "fc2")]
    one = client.get(f"/api/v1/runs/{run['id']}/layers", params={"epoch": 2}).json()["records"]
    assert [r["epoch"] for r in one] == [2, 2]
    assert sum(one[0]["weight_states"]) == one[0]["num_weights"]
    # A redelivered message for a finished run does nothing.
    assert execute_run(run["id"], settings) == "skipped"
    assert len(client.get(f"/api/v1/runs/{run['id']}/metrics").json()["epochs"]) == 3


def test_checkpoint_download_loads_as_a_model(client, settings, tmp_path):
    run = submit(client)
    execute_run(run["id"], settings)
    resp = client.get(f"/api/v1/runs/{run['id']}/checkpoint")
    assert resp.status_code == 200
    path = tmp_path / "ckpt.pt"
    path.write_bytes(resp.content)
    model = load_model(str(path))
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    kept = sorted(p.name for p in (settings.artifacts / "runs" / str(run["id"])).iterdir())
    best = client.get(f"/api/v1/runs/{run['id']}").json()["summary"]["best_epoch"]
    # only the latest checkpoint and the best-validation model stay on disk
    assert kept == [f"best-{best:05d}-a1.pt", "checkpoint-00003-a1.pt"]


@pytest.mark.parametrize("config,field", [
    ({"weights": {"N": 9}}, "config.weights.N"),
    ({"train": {"epochs": 0}}, "config.train.epochs"),
    ({"activations": {"window": "box"}}, "config.activations.window"),
    ({"surprise": 1}, "config.surprise"),
    ({"dataset": {"name": "digits", "root": "/etc"}}, "config.dataset.root"),
    ({"dataset": {"name": "digits"}, "model": {"arch": "mnist_cnn"}}, "config.model.arch"),
    ({"train": {"batch_size": 1295}}, "config.train.batch_size"),  # digits trains on 1 294 samples
    ({"dataset": {"limit": 50}, "train": {"batch_size": 64}}, "config.train.batch_size"),
])
def test_invalid_config_is_422_naming_the_field(client, config, field):
    resp = client.post("/api/v1/runs", json={"config": config})
    assert resp.status_code == 422
    body = resp.json()
    assert body["field"] == field and field in body["message"]
    assert client.get("/api/v1/runs").json()["total"] == 0  # nothing stored


def test_a_batch_as_large_as_the_training_split_is_accepted_and_one_more_is_not(client):
    bad = client.post("/api/v1/runs", json={"config": {"train": {"batch_size": 1295}}})
    assert bad.status_code == 422
    assert bad.json()["message"] == ("config.train.batch_size: 1295 is larger than the training split of digits "
                                     "(1294 samples with dataset.val_fraction=0.1)")
    assert client.post("/api/v1/runs", json={"config": {"train": {"batch_size": 1294}}}).status_code == 201


def test_unknown_ids_are_404(client):
    for method, path in [("get", "/api/v1/runs/999"), ("get", "/api/v1/runs/999/metrics"),
                         ("get", "/api/v1/runs/999/layers"), ("post", "/api/v1/runs/999/cancel"),
                         ("delete", "/api/v1/runs/999"), ("get", "/api/v1/runs/999/checkpoint"),
                         ("get", "/api/v1/runs/999/events"), ("get", "/api/v1/compare?ids=999")]:
        assert getattr(client, method)(path).status_code == 404, path


def test_cancel_and_delete_follow_the_run_lifecycle(client, settings):
    queued = submit(client)
    cancelled = client.post(f"/api/v1/runs/{queued['id']}/cancel").json()
    assert cancelled["status"] == "cancelled"
    assert execute_run(queued["id"], settings) == "skipped"  # its message arrives later: nothing happens
    assert client.post(f"/api/v1/runs/{queued['id']}/cancel").status_code == 409

    done = submit(client)
    execute_run(done["id"], settings)
    assert client.post(f"/api/v1/runs/{done['id']}/cancel").status_code == 409
    assert client.delete(f"/api/v1/runs/{done['id']}").status_code == 204
    assert client.get(f"/api/v1/runs/{done['id']}").status_code == 404
    assert not (settings.artifacts / "runs" / str(done["id"])).exists()

    waiting = submit(client)
    assert client.delete(f"/api/v1/runs/{waiting['id']}").status_code == 409


@pytest.mark.slow
def test_a_run_the_worker_cannot_serve_fails_with_a_clear_message(client, settings, tmp_path, monkeypatch):
    # The files are there, so the run is accepted (a missing dataset is refused at submission:
    # tests/test_datasets.py), but damaged: the worker fails the run, saying which file and how to check them.
    damaged = tmp_path / "datasets" / "cifar-10-batches-py"
    damaged.mkdir(parents=True)
    for f in DATASETS["cifar10"].files:
        (damaged / f).write_bytes(b"not a pickle")
    monkeypatch.setenv("GXNOR_DATASETS_DIR", str(tmp_path / "datasets"))
    run = submit(client, dataset={"name": "cifar10"}, model={"arch": "mlp", "hidden": [8]})
    assert execute_run(run["id"], settings) == "failed"
    got = client.get(f"/api/v1/runs/{run['id']}").json()
    assert got["status"] == "failed"
    assert got["error"].startswith("DatasetError: dataset 'cifar10' in …/cifar-10-batches-py: data_batch_1 cannot "
                                   "be read (UnpicklingError"), got["error"]
    assert got["error"].endswith("`gxnor datasets cifar10` checks its files")
    ok = submit(client)  # and nothing else breaks
    assert execute_run(ok["id"], settings) == "succeeded"


@pytest.mark.slow
def test_list_filters_searches_sorts_and_paginates(client, settings):
    ids = []
    for i, lr in enumerate([0.05, 0.01, 0.002]):
        run = submit(client, name=f"sweep-{i}_lr", train={"epochs": 2, "lr": lr, "lr_final": lr})
        execute_run(run["id"], settings)
        ids.append(run["id"])
    other = submit(client, name="other", project="elsewhere")
    lst = client.get("/api/v1/runs", params={"status": "succeeded"}).json()
    assert lst["total"] == 3 and {r["id"] for r in lst["items"]} == set(ids)
    assert client.get("/api/v1/runs", params={"project": "elsewhere"}).json()["items"][0]["id"] == other["id"]
    assert client.get("/api/v1/runs", params={"q": "1_L"}).json()["total"] == 1  # _ is literal, case-insensitive
    by_err = client.get("/api/v1/runs", params={"sort": "best_val_error", "order": "asc"}).json()["items"]
    errs = [r["summary"]["best_val_error"] for r in by_err]
    assert errs[-1] is None and errs[:3] == sorted(errs[:3])  # runs without the metric come last
    page = client.get("/api/v1/runs", params={"limit": 2, "offset": 2, "sort": "created_at", "order": "asc"}).json()
    assert [r["id"] for r in page["items"]] == [ids[2], other["id"]] and page["total"] == 4
    assert client.get("/api/v1/runs", params={"sort": "password"}).status_code == 422


def test_downsampling_keeps_first_last_and_extremes():
    rows = [{"epoch": i + 1, "train_loss": v} for i, v in enumerate([5, 1, 9, 3, 3, 3, 0, 3, 3, 3, 3, 7, 3, 3, 2])]
    kept = downsample(rows, 6, "train_loss")
    epochs = [r["epoch"] for r in kept]
    assert len(kept) <= 6 and epochs[0] == 1 and epochs[-1] == 15
    values = [r["train_loss"] for r in kept]
    assert 9 in values and 0 in values
    assert downsample(rows, 100, "train_loss") == rows


@pytest.mark.slow
def test_metrics_point_budget_on_a_long_run(client, settings):
    run = submit(client, train={"epochs": 30, "batch_size": 500})
    execute_run(run["id"], settings)
    full = client.get(f"/api/v1/runs/{run['id']}/metrics").json()
    part = client.get(f"/api/v1/runs/{run['id']}/metrics", params={"points": 8, "metric": "val_error"}).json()
    assert full["total_epochs_recorded"] == 30 and not full["downsampled"]
    assert part["downsampled"] and len(part["epochs"]) <= 8
    assert part["epochs"][-1]["epoch"] == 30
    vals = [m["val_error"] for m in full["epochs"]]
    kept = [m["val_error"] for m in part["epochs"]]
    assert min(vals) in kept and max(vals) in kept
    layers = client.get(f"/api/v1/runs/{run['id']}/layers", params={"points": 5}).json()["records"]
    assert sorted({r["epoch"] for r in layers})[-1] == 30 and len({r["epoch"] for r in layers}) <= 5


def test_compare_aligns_epochs_and_diffs_configs(client, settings):
    a = submit(client, name="a", train={"epochs": 2})
    b = submit(client, name="b", train={"epochs": 3}, activations={"r": 0.25})
    execute_run(a["id"], settings)
    execute_run(b["id"], settings)
    out = client.get("/api/v1/compare", params={"ids": f"{a['id']},{b['id']}", "metric": "val_error"}).json()
    CompareOut.model_validate(out)
    assert out["epochs"] == [1, 2, 3]
    assert len(out["series"][str(a["id"])]) == 3 and out["series"][str(a["id"])][2] is None
    assert out["config_diff"] == {"activations.r": [0.5, 0.25], "name": ["a", "b"], "train.epochs": [2, 3]}
    assert set(out["layers"][str(b["id"])]) == {"fc1", "fc2"}
    assert out["missing"] == []
    assert client.get("/api/v1/compare", params={"ids": "1;2"}).status_code == 422

    # A saved comparison whose run is gone: a 404 naming it, or with skip_missing the others and the gone ids.
    assert client.delete(f"/api/v1/runs/{a['id']}").status_code == 204
    ids = f"{a['id']},{b['id']},999999999999"
    assert client.get("/api/v1/compare", params={"ids": f"{a['id']},{b['id']}"}).json()["detail"] == \
        f"run {a['id']} not found"
    out = client.get("/api/v1/compare", params={"ids": ids, "skip_missing": "true"}).json()
    CompareOut.model_validate(out)
    assert [r["id"] for r in out["runs"]] == [b["id"]] and out["missing"] == [a["id"], 999999999999]
    assert list(out["series"]) == [str(b["id"])] and out["epochs"] == [1, 2, 3] and out["config_diff"] == {}
    gone = client.get("/api/v1/compare", params={"ids": f"{a['id']}", "skip_missing": "true"}).json()
    assert gone["runs"] == [] and gone["missing"] == [a["id"]] and gone["epochs"] == []


def test_events_stream_epochs_and_the_final_status(client, settings):
    run = submit(client)
    execute_run(run["id"], settings)
    with client.stream("GET", f"/api/v1/runs/{run['id']}/events", params={"after": 1}) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        text = "".join(resp.iter_text())
    events = [blk for blk in text.strip().split("\n\n") if blk]
    kinds = [next(ln.split(": ", 1)[1] for ln in blk.splitlines() if ln.startswith("event:")) for blk in events]
    assert kinds == ["epoch", "epoch", "progress", "status"]
    assert "id: 3" in events[1]
    assert json.loads(events[-1].split("data: ", 1)[1])["status"] == "succeeded"


def test_catalog_lists_everything_a_form_needs(client):
    cat = client.get("/api/v1/catalog").json()
    assert {d["name"] for d in cat["datasets"]} >= {"digits", "mnist5k", "mnist", "cifar10"}
    assert {w["name"] for w in cat["windows"]} == {"rect", "tri", "gauss", "exp"}
    presets = {"quick", "mnist-paper", "cifar-paper", "quick-fp", "mnist-paper-fp", "cifar-paper-fp"}
    assert presets <= set(cat["presets"])
    assert cat["defaults"]["weights"]["N"] == 1
    assert cat["schema"]["properties"]["train"]
    digits = next(d for d in cat["datasets"] if d["name"] == "digits")  # from the dataset registry
    assert digits["bundled"] and digits["input_shape"] == [1, 8, 8]
    assert (digits["train_pool"], digits["test_size"], digits["num_classes"]) == (1438, 359, 10)
    assert [a["name"] for a in cat["architectures"]] == ["mlp", "mnist_cnn", "cifar_vgg"]
    assert all(a["help"] for a in cat["architectures"])
    assert cat["optimizers"] == ["sgd", "momentum", "adam", "layer_rms"]


def test_progress_is_published_while_an_epoch_runs(client, settings):
    import threading
    import time

    run = submit(client, model={"hidden": [512, 512]}, train={"epochs": 1, "batch_size": 10})  # 130 batches
    worker = threading.Thread(target=execute_run, args=(run["id"], settings))
    worker.start()
    seen = set()
    while worker.is_alive():
        p = client.get(f"/api/v1/runs/{run['id']}").json()["progress"]
        if p["epochs_done"] == 0 and 0 < p["fraction"] < 1:
            seen.add(round(p["fraction"], 3))
        time.sleep(0.02)
    worker.join()
    assert len(seen) >= 2  # the fraction advanced mid-epoch, several times
    assert client.get(f"/api/v1/runs/{run['id']}").json()["progress"] == {
        "epoch": 1, "fraction": 1.0, "epochs_done": 1, "total_epochs": 1}


def test_limits_body_size_queue_cap_and_model_size(tmp_path):
    settings = Settings(data_dir=tmp_path / "limits", max_queued_runs=2, max_weights=100_000,
                        max_body_bytes=4096, admin_token=ADMIN)
    with TestClient(create_app(settings), headers=AS_ADMIN) as client:
        big = {"config": {"name": "x" * 100, "project": "p"}, "pad": "y" * 5000}
        assert client.post("/api/v1/runs", json=big).status_code == 413
        resp = client.post("/api/v1/runs", json={"config": {"model": {"hidden": [16384]}}})
        assert resp.status_code == 422 and resp.json()["field"] == "config.model"
        assert "weights" in resp.json()["message"]
        for _ in range(2):
            assert client.post("/api/v1/runs", json={"config": QUICK}).status_code == 201
        full = client.post("/api/v1/runs", json={"config": QUICK})
        assert full.status_code == 429 and "queued" in full.json()["detail"]
        assert client.get("/api/v1/runs").json()["total"] == 2  # nothing half-stored


def test_hostile_names_are_stored_verbatim_and_checkpoints_cannot_escape_the_artifact_dir(client, settings):
    from sqlalchemy import update

    from app.db import session_scope
    from app.models import Artifact

    payload = "<img src=x onerror=alert(1)>\"'&"
    run = submit(client, name=payload, project="<b>team</b>")
    assert client.get(f"/api/v1/runs/{run['id']}").json()["name"] == payload
    assert client.get("/api/v1/runs", params={"q": "<img"}).json()["items"][0]["project"] == "<b>team</b>"
    execute_run(run["id"], settings)
    outside = settings.data_dir.parent / "secret.txt"
    outside.write_text("not yours")
    with session_scope(settings.db_url) as s:  # a tampered artifact row pointing outside
        s.execute(update(Artifact).where(Artifact.run_id == run["id"]).values(path="../../secret.txt"))
    resp = client.get(f"/api/v1/runs/{run['id']}/checkpoint")
    assert resp.status_code == 404 and b"not yours" not in resp.content
