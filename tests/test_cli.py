import json
import subprocess
import sys

import pytest

from gxnor_core import load_dataset, load_model, validate_config
from gxnor_core.train import evaluate


def gxnor(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "gxnor_cli", *args], capture_output=True, text=True, cwd=cwd)


def test_train_writes_metrics_layers_summary_and_a_loadable_checkpoint(tmp_path):
    out = tmp_path / "run"
    res = gxnor("train", "quick", "--set", "train.epochs=2", "--set", "model.hidden=[64]", "--out", str(out))
    assert res.returncode == 0, res.stderr
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    layers = [json.loads(line) for line in (out / "layers.jsonl").read_text().splitlines()]
    summary = json.loads((out / "summary.json").read_text())
    assert [m["epoch"] for m in metrics] == [1, 2]
    assert [(r["epoch"], r["layer"]) for r in layers] == [(1, "fc1"), (1, "fc2"), (2, "fc1"), (2, "fc2")]
    assert summary["status"] == "succeeded" and summary["epochs_completed"] == 2

    model = load_model(str(out / "checkpoint.pt"))
    assert not model.training
    cfg = validate_config({"dataset": {"name": "digits"}})
    data = load_dataset(cfg.dataset)
    _, test_error = evaluate(model, data.test_x, data.test_y, "squared_hinge")
    assert test_error == pytest.approx(metrics[-1]["test_error"])


def test_resume_continues_where_the_checkpoint_left_off(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert gxnor("train", "quick", "--set", "train.epochs=3", "--out", str(a)).returncode == 0
    assert gxnor("train", "quick", "--set", "train.epochs=3", "--out", str(b)).returncode == 0
    # Pretend b was interrupted after epoch 3 of 3 and resumed: nothing is duplicated.
    res = gxnor("train", "quick", "--set", "train.epochs=3", "--out", str(b), "--resume")
    assert res.returncode == 0, res.stderr
    strip = lambda p: [{k: v for k, v in json.loads(ln).items() if k not in ("epoch_seconds", "samples_per_second")}
                       for ln in (p / "metrics.jsonl").read_text().splitlines()]
    assert strip(a) == strip(b)


@pytest.mark.parametrize("args,field", [
    (["--set", "weights.N=9"], "weights.N"),
    (["--set", "activations.window=box"], "activations.window"),
    (["--set", "train.epochs=0"], "train.epochs"),
    (["--set", "model.colour=red"], "model.colour"),
    (["--set", "dataset.name=/etc/passwd"], "dataset.name"),
])
def test_invalid_config_exits_2_with_one_line_naming_the_field(tmp_path, args, field):
    res = gxnor("train", "quick", *args, "--out", str(tmp_path / "x"))
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and field in lines[0]


def test_config_file_errors_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: {epochs: [}\n")
    res = gxnor("train", str(bad))
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    res = gxnor("train", str(tmp_path / "missing.json"))
    assert res.returncode == 2 and "no such file" in res.stderr


def test_usage_errors_exit_2_with_one_line():
    res = gxnor("train")
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
