import contextlib
import json
import re
import socket
import subprocess
import sys
import threading
import time

import httpx
import numpy as np
import pytest
import torch
import uvicorn

from app.main import create_app
from app.settings import Settings
from gxnor_core import PRESETS, load_dataset, load_model, validate_config
from gxnor_core.export import export_checkpoint, read_model
from gxnor_core.reporters import DirectoryReporter
from gxnor_core.train import evaluate, train
from worker.runner import execute_run


def gxnor(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "gxnor_cli", *args], capture_output=True, text=True, cwd=cwd)


@pytest.mark.slow
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


def test_resume_continues_where_the_checkpoint_left_off(tmp_path, gxnor_here):
    a, b = tmp_path / "a", tmp_path / "b"
    quick = ("train", "quick", "--set", "train.epochs=3", "--set", "model.hidden=[16]")
    assert gxnor_here(*quick, "--out", a).returncode == 0
    assert gxnor_here(*quick, "--out", b).returncode == 0
    # Pretend b was interrupted after epoch 3 of 3 and resumed: nothing is duplicated.
    res = gxnor_here(*quick, "--out", b, "--resume")
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
    (["--set", "train.batch_size=1295"], "train.batch_size"),  # digits trains on 1 294 samples
    (["--set", "dataset.limit=40"], "train.batch_size"),  # quick's batches are 50
    (["--set", "model.arch=mnist_cnn"], "model.arch"),  # digits' 8×8 images are too small for it
])
def test_invalid_config_exits_2_with_one_line_naming_the_field(tmp_path, gxnor_here, args, field):
    res = gxnor_here("train", "quick", *args, "--out", tmp_path / "x")
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and field in lines[0]


def test_config_file_errors_exit_2(tmp_path, gxnor_here):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: {epochs: [}\n")
    res = gxnor("train", str(bad))
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    res = gxnor_here("train", tmp_path / "missing.json")
    assert res.returncode == 2 and "no such file" in res.stderr


def test_usage_errors_exit_2_with_one_line():
    res = gxnor("train")
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1


TOKEN = "gx_cli-test-admin-token"


@contextlib.contextmanager
def api_server(settings: Settings):
    """The real API in a thread on a free port; yields its base URL."""
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_submit_refused_by_the_server_exits_2_with_its_one_line_reason(tmp_path, gxnor_here):
    """A real API (in a thread) refuses a batch larger than the training split: 422, so exit 2, one line."""
    with api_server(Settings(data_dir=tmp_path / "data", admin_token=TOKEN)) as url:
        res = gxnor("submit", "quick", "--server", url, "--token", TOKEN, "--set", "train.batch_size=1295")
        assert res.returncode == 2, res.stderr
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and "422: config.train.batch_size: 1295 is larger than the training split" in lines[0]
        ok = gxnor_here("submit", "quick", "--server", url, "--token", TOKEN, "--set", "train.batch_size=1294")
        assert ok.returncode == 0, ok.stderr
        assert re.fullmatch(rf"Queued run #(\d+) \"quick-\1\" \(10 epochs\): {url}/#/runs/\1\n", ok.stdout), ok.stdout
        as_json = gxnor_here("submit", "quick", "--server", url, "--token", TOKEN, "--json")
        assert as_json.returncode == 0 and json.loads(as_json.stdout)["status"] == "queued", as_json.stderr


def test_a_name_that_is_neither_a_file_nor_a_preset_lists_the_presets(tmp_path, gxnor_here):
    presets = ", ".join(PRESETS)
    for run, cmd in ((gxnor, ["submit", "nope", "--server", "http://127.0.0.1:9"]), (gxnor_here, ["train", "nope"])):
        res = run(*cmd, cwd=tmp_path)
        assert res.returncode == 2
        assert res.stderr.splitlines() == [f"gxnor: error: config: no such file or preset: nope (presets: {presets})"]
    res = gxnor_here("submit", "preset:nope", "--server", "http://127.0.0.1:9", cwd=tmp_path)
    assert res.returncode == 2
    assert res.stderr.splitlines() == [f"gxnor: error: config: unknown preset 'nope'; presets: {presets}"]
    res = gxnor_here("sweep", "nope", "--server", "http://127.0.0.1:9", cwd=tmp_path)
    assert res.returncode == 2 and len(res.stderr.splitlines()) == 1
    assert "no such file or sweep preset: nope" in res.stderr and "preset:paper-r" in res.stderr


def _admin(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=30, headers={"Authorization": f"Bearer {TOKEN}"})


def _cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "gxnor_cli", *args, "--token", TOKEN], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait(predicate, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.1)
    raise AssertionError("timed out")


class _Lines:
    """What a process writes to a pipe, collected as it comes (the progress bar rewrites one line with \\r)."""

    def __init__(self, pipe):
        self.text = ""
        self._thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self._thread.start()

    def _read(self, pipe) -> None:
        while chunk := pipe.read(1):
            self.text += chunk

    def done(self) -> str:
        self._thread.join(timeout=30)
        return self.text


@pytest.mark.slow
def test_submit_follow_shows_queued_then_running_and_ends_with_a_readable_summary(tmp_path):
    """The real CLI follows runs on a real API; the real runner trains them here, in a thread."""
    settings = Settings(data_dir=tmp_path / "data", admin_token=TOKEN, progress_interval_s=0.1)
    tiny = ("--set", "model.hidden=[16]")
    with api_server(settings) as url, _admin(url) as api:
        # The bar says whether the run waits in the queue or trains, and which epoch.
        cli = _cli("submit", "quick", "--server", url, "--set", "name=long", *tiny, "--set", "train.epochs=2000",
                   "--follow")
        err = _Lines(cli.stderr)
        run_id = _wait(lambda: [r["id"] for r in api.get("/api/v1/runs").json()["items"]])[0]
        _wait(lambda: "queued: waiting for a worker" in err.text)
        worker = threading.Thread(target=execute_run, args=(run_id, settings))
        worker.start()
        _wait(lambda: "running: epoch " in err.text, timeout=120)
        assert api.post(f"/api/v1/runs/{run_id}/cancel").status_code == 200
        worker.join(timeout=120)
        assert cli.wait(timeout=60) == 1  # it did not succeed
        text, out = err.done(), cli.stdout.read()
        assert text.index("queued: waiting for a worker") < text.index("running: epoch ")
        assert re.search(r"running: epoch \d+/2000", text) and text.rstrip().endswith("cancelled"), text[-300:]
        assert re.match(rf'Run #{run_id} "long" cancelled: \d+/2000 epochs in ', out.splitlines()[1]), out

        # A run to its end: the summary's figures, rounded, and its address.
        cli = _cli("submit", "quick", "--server", url, "--set", "name=cli-follow", *tiny, "--set", "train.epochs=2",
                   "--follow")
        queued = {"status": "queued"}
        run_id = _wait(lambda: [r["id"] for r in api.get("/api/v1/runs", params=queued).json()["items"]])[0]
        assert execute_run(run_id, settings) == "succeeded"
        out, err = cli.communicate(timeout=120)
        run = api.get(f"/api/v1/runs/{run_id}").json()
    assert cli.returncode == 0, err
    s, link = run["summary"], f"{url}/#/runs/{run_id}"
    lines = out.splitlines()
    assert lines[0] == f'Queued run #{run_id} "cli-follow" (2 epochs): {link}'
    assert re.fullmatch(rf'Run #{run_id} "cli-follow" succeeded: 2/2 epochs in (\d+ s|\d+ min \d\d s)', lines[1])
    assert lines[2] == (f"  best validation error {100 * s['best_val_error']:.2f} % (epoch {s['best_epoch']}), "
                        f"test error {100 * s['test_error']:.2f} %")
    assert lines[3:] == [f"  {link}"]


@pytest.mark.slow
def test_sweep_follow_ends_with_a_readable_summary(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", admin_token=TOKEN)
    spec = tmp_path / "sweep.yaml"
    spec.write_text("name: cli-sweep\nbase: {model: {hidden: [16]}, train: {epochs: 2}}\n"
                    "list: [{activations.r: 0.25}, {activations.r: 1.0}]\n")
    with api_server(settings) as url, _admin(url) as api:
        cli = _cli("sweep", str(spec), "--server", url, "--follow")
        err = _Lines(cli.stderr)
        sweep_id = _wait(lambda: [s["id"] for s in api.get("/api/v1/sweeps").json()["items"]])[0]
        _wait(lambda: "0/2 done, 0 running, 2 queued" in err.text)  # it shows both runs waiting
        run_ids = [r["id"] for r in api.get(f"/api/v1/sweeps/{sweep_id}").json()["runs"]]
        assert [execute_run(i, settings) for i in run_ids] == ["succeeded", "succeeded"]
        assert cli.wait(timeout=120) == 0, err.done()
        out, err = cli.stdout.read(), err.done()
        sweep = api.get(f"/api/v1/sweeps/{sweep_id}").json()
    assert "0/2 done, 0 running, 2 queued" in err and "2/2 done, 0 running, 0 queued" in err, err
    link = f"{url}/#/sweeps/{sweep_id}"
    test_errors = [r["metrics"]["test_error"]["mean"] for r in sweep["results"]]
    val_errors = [r["metrics"]["best_val_error"]["mean"] for r in sweep["results"]]
    lines = out.splitlines()
    assert lines[0] == f'Queued sweep #{sweep_id} "cli-sweep": 2 runs over activations.r: {link}'
    assert re.fullmatch(rf'Sweep #{sweep_id} "cli-sweep" finished: 2 runs \(2 succeeded\), 2 epochs each, '
                        r"in (\d+ s|\d+ min \d\d s)", lines[1]), lines[1]
    assert lines[2:4] == [f"  activations.r={r:<4}  test error {100 * t:.2f} %, best validation error {100 * v:.2f} % "
                          "(1/1 runs)" for r, t, v in zip((0.25, 1.0), test_errors, val_errors, strict=True)]
    best = min(zip((0.25, 1.0), test_errors, strict=True), key=lambda x: x[1])
    assert lines[4:] == [f"  best: activations.r={best[0]} — test error {100 * best[1]:.2f} %", f"  {link}"]


def _read_message(sock: socket.socket, buf: bytes) -> tuple[bytes | None, bytes]:
    """One HTTP/1.1 message (headers and a Content-Length body) from ``sock``: (message or None at EOF, the rest)."""
    while b"\r\n\r\n" not in buf:
        if not (chunk := sock.recv(65536)):
            return None, buf
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    length = next((int(v) for k, _, v in (ln.partition(b":") for ln in head.split(b"\r\n")[1:])
                   if k.strip().lower() == b"content-length"), 0)
    while len(rest) < length and (chunk := sock.recv(65536)):
        rest += chunk
    return head + b"\r\n\r\n" + rest[:length], rest[length:]


class LosesFirstAnswer:
    """A TCP relay in front of the API that passes every request on but, for the first one, closes the client's
    connection instead of passing the answer back: the server did the work, the client never hears of it."""

    def __init__(self, upstream: str):
        host, port = upstream.removeprefix("http://").split(":")
        self.upstream = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.requests: list[bytes] = []
        self.answers: list[bytes | None] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:  # closed
                return
            threading.Thread(target=self._relay, args=(conn,), daemon=True).start()

    def _relay(self, conn: socket.socket) -> None:
        with conn, socket.create_connection(self.upstream) as up:
            buf = upbuf = b""
            while True:
                request, buf = _read_message(conn, buf)
                if request is None:
                    return
                up.sendall(request)
                answer, upbuf = _read_message(up, upbuf)
                self.requests.append(request)
                self.answers.append(answer)
                if len(self.answers) == 1 or answer is None:
                    return  # the connection closes without the answer
                conn.sendall(answer)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.listener.close()


def test_submit_retries_a_lost_answer_with_the_same_idempotency_key_and_makes_one_run(tmp_path, gxnor_here):
    with api_server(Settings(data_dir=tmp_path / "data", admin_token=TOKEN)) as url, _admin(url) as api, \
            LosesFirstAnswer(url) as relay:
        res = gxnor("submit", "quick", "--server", relay.url, "--token", TOKEN)
        assert res.returncode == 0, res.stderr
        runs = api.get("/api/v1/runs").json()
        # The server made the run and answered; the answer was lost; the CLI sent the request again with the
        # same key and got the first answer back (replayed), not a second run.
        assert runs["total"] == 1
        assert res.stdout.startswith(f"Queued run #{runs['items'][0]['id']} ")
        keys = [re.search(rb"\r\nidempotency-key: *([^\r]+)", r, re.I).group(1) for r in relay.requests]
        assert [r.split(b" ", 2)[:2] for r in relay.requests] == [[b"POST", b"/api/v1/runs"]] * 2
        assert keys[0] == keys[1]
        assert relay.answers[0].startswith(b"HTTP/1.1 201") and relay.answers[1].startswith(b"HTTP/1.1 201")
        assert b"idempotent-replayed: true" in relay.answers[1].lower()
        # Each command has a key of its own: a second submit is a second run.
        again = gxnor_here("submit", "quick", "--server", relay.url, "--token", TOKEN)
        assert again.returncode == 0, again.stderr
        assert re.search(rb"\r\nidempotency-key: *([^\r]+)", relay.requests[-1], re.I).group(1) != keys[0]
        assert api.get("/api/v1/runs").json()["total"] == 2


# ------------------------------------------------------------------------------ gxnor export and gxnor infer
# (the .gxn format and the engine themselves: tests/test_export.py, tests/test_engine.py)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    train({"name": "exp", "model": {"hidden": [16]}, "train": {"epochs": 2, "batch_size": 200}},
          DirectoryReporter(out))
    return out


def test_export_writes_a_model_from_a_checkpoint_or_a_run_directory(run_dir, tmp_path, gxnor_here):
    out = tmp_path / "model.gxn"
    res = gxnor("export", str(run_dir / "checkpoint.pt"), "-o", str(out))
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(f"Wrote {out}: ") and "2 layers (fc1, fc2), input 1×8×8, 10 classes" in res.stdout
    assert read_model(out).meta["source"]["epoch"] == 2
    assert out.read_bytes() == export_checkpoint((run_dir / "checkpoint.pt").read_bytes(),
                                                 {"checkpoint": "checkpoint.pt"})
    best = torch.load(run_dir / "best.pt", weights_only=True)["epoch"]
    for args, epoch in ((["--which", "latest"], 2), ([], best)):
        res = gxnor_here("export", run_dir, "-o", out, *args)
        assert res.returncode == 0, res.stderr
        assert read_model(out).meta["source"]["epoch"] == epoch


@pytest.mark.parametrize("make,args,message", [
    (None, ["nope.pt"], "nope.pt: no such file or run directory"),
    (lambda d: (d / "x.pt").write_bytes(b"hello"), ["x.pt"], "x.pt: not a GXNOR checkpoint"),
    (lambda d: torch.save({"format": "other"}, d / "y.pt"), ["y.pt"], "y.pt: not a GXNOR checkpoint"),
    (lambda d: (d / "x.pt").write_bytes(b"hello"), ["x.pt", "--which", "best"], "--which chooses a run"),
    (lambda d: (d / "empty").mkdir(), ["empty"], "no best.pt in this run directory"),
    (None, ["12"], "name its server with --server"),
    (None, ["--which", "first", "1"], "invalid choice: 'first'"),
])
def test_export_of_bad_input_exits_2_with_one_line(tmp_path, gxnor_here, make, args, message):
    if make:
        make(tmp_path)
    res = gxnor_here("export", *args, "-o", "m.gxn", cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert not (tmp_path / "m.gxn").exists()


def test_export_of_a_full_precision_checkpoint_exits_2_naming_the_field(tmp_path):
    train({"name": "fp", "model": {"hidden": [8]}, "weights": {"discrete": False},
           "train": {"epochs": 1, "batch_size": 400}}, DirectoryReporter(tmp_path))
    res = gxnor("export", str(tmp_path / "checkpoint.pt"), "-o", str(tmp_path / "m.gxn"))
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        f"gxnor: error: {tmp_path / 'checkpoint.pt'}: weights.discrete is false: a full-precision network has "
        "no XNOR layers to export"]


@pytest.mark.slow
def test_export_of_a_run_id_downloads_its_best_model_from_the_server(tmp_path, gxnor_here):
    settings = Settings(data_dir=tmp_path / "data", admin_token=TOKEN)
    config = {"name": "exp", "model": {"hidden": [8]},
              "train": {"epochs": 4, "batch_size": 200, "lr": 0.1, "lr_final": 0.1}}
    with api_server(settings) as url, _admin(url) as api:
        run_id = api.post("/api/v1/runs", json={"config": config}).json()["id"]
        assert execute_run(run_id, settings) == "succeeded"
        best_epoch = api.get(f"/api/v1/runs/{run_id}").json()["summary"]["best_epoch"]
        assert best_epoch < 4  # the best and the latest differ (which epoch is best depends on float rounding)
        for run, args, epoch, which in ((gxnor, [], best_epoch, "best"),
                                        (gxnor_here, ["--which", "latest"], 4, "latest")):
            out = tmp_path / f"{which}.gxn"
            res = run("export", str(run_id), "-o", str(out), "--server", url, "--token", TOKEN, *args)
            assert res.returncode == 0, res.stderr
            source = read_model(out).meta["source"]
            assert (source["epoch"], source["run_id"], source["which"]) == (epoch, run_id, which)
        missing = gxnor_here("export", "999", "-o", str(tmp_path / "x.gxn"), "--server", url, "--token", TOKEN)
        assert missing.returncode == 2 and missing.stderr.strip().splitlines() == [
            "gxnor: error: 404: run 999 not found"]


@pytest.fixture(scope="module")
def exported(run_dir):
    """The run's best model exported, that model in PyTorch, and digits test inputs."""
    model_path = run_dir / "model.gxn"
    model_path.write_bytes(export_checkpoint((run_dir / "best.pt").read_bytes()))
    data = load_dataset(validate_config({"dataset": {"name": "digits"}}).dataset)
    return model_path, load_model(str(run_dir / "best.pt")), data.test_x[:50]


def test_infer_writes_the_models_logits_exactly(exported, tmp_path, gxnor_here):
    model_path, model, x = exported
    with torch.no_grad():
        expected = model(x)
    np.save(tmp_path / "x.npy", x.numpy())
    res = gxnor("infer", str(model_path), str(tmp_path / "x.npy"), "-o", str(tmp_path / "logits.npy"))
    assert res.returncode == 0, res.stderr
    logits = np.load(tmp_path / "logits.npy")
    assert logits.dtype == np.float32 and np.array_equal(logits, expected.numpy())
    report = json.loads(res.stdout)
    assert report["samples"] == 50 and report["predictions"] == expected.argmax(1).tolist()
    assert list(report["events_per_sample"]) == ["fc2"] and report["events_per_sample"]["fc2"] > 0
    assert report["logits"] == str(tmp_path / "logits.npy") and report["seconds"] > 0
    assert report["kernel_tuning_seconds"] > 0  # a new process measures the kernels once, reported apart
    # Without -o the logits are in the JSON line; flat rows and a single sample are inputs too.
    np.save(tmp_path / "flat.npy", x.numpy().reshape(50, 64).astype(np.float64))
    flat = gxnor_here("infer", model_path, tmp_path / "flat.npy", "--kernel", "portable")
    assert flat.returncode == 0, flat.stderr
    assert torch.equal(torch.tensor(json.loads(flat.stdout)["logits"]), expected)
    assert json.loads(flat.stdout)["kernels"] == {"fc2": "portable"}
    np.save(tmp_path / "one.npy", x[0].numpy())
    one = gxnor_here("infer", model_path, tmp_path / "one.npy")
    assert one.returncode == 0 and json.loads(one.stdout)["predictions"] == expected.argmax(1).tolist()[:1]
    # The 8-bit first layer: its own report, predictions judged against the model's (digits are 4-bit images)
    eight = gxnor_here("infer", model_path, tmp_path / "x.npy", "--first-layer", "int8")
    assert eight.returncode == 0, eight.stderr
    agree = np.mean(np.array(json.loads(eight.stdout)["predictions"]) == expected.argmax(1).numpy())
    assert json.loads(eight.stdout)["first_layer"] == "int8" and agree >= 0.9


@pytest.mark.parametrize("make,args,message", [
    (None, ["nope.gxn", "x.npy"], "nope.gxn: No such file or directory"),
    (lambda d, m: (d / "m.pt").write_bytes(b"PK\x03\x04" * 20), ["m.pt", "x.npy"], "not a GXNOR model file"),
    (lambda d, m: (d / "cut.gxn").write_bytes(m.read_bytes()[:-9]), ["cut.gxn", "x.npy"], "truncated"),
    (None, ["MODEL", "missing.npy"], "missing.npy: No such file or directory"),
    (lambda d, m: np.save(d / "bad.npy", np.zeros((2, 1, 9, 8))), ["MODEL", "bad.npy"],
     "bad.npy: shape 2×1×9×8; this model takes N×1×8×8 (or N×64, or one 1×8×8 sample)"),
    (lambda d, m: np.save(d / "obj.npy", np.array([{}, 1], dtype=object)), ["MODEL", "obj.npy"],
     "obj.npy: not a .npy array of numbers"),
    (lambda d, m: np.save(d / "nan.npy", np.full((1, 64), np.nan)), ["MODEL", "nan.npy"], "NaN or infinite"),
    (lambda d, m: np.save(d / "s.npy", np.array(["a"] * 64)), ["MODEL", "s.npy"], "holds <U1 values"),
    (lambda d, m: np.save(d / "x.npy", np.zeros((1, 64))), ["MODEL", "x.npy", "--kernel", "gpu"],
     "unknown kernel 'gpu'; one of popcount, int8, onednn, portable"),
])
def test_infer_of_bad_input_exits_2_with_one_line(exported, tmp_path, gxnor_here, make, args, message):
    model_path = exported[0]
    if make:
        make(tmp_path, model_path)
    args = [str(model_path) if a == "MODEL" else a for a in args]
    res = gxnor_here("infer", *args, "-o", "logits.npy", cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert not (tmp_path / "logits.npy").exists()


def test_a_missing_model_or_checkpoint_is_refused_at_once_by_the_real_command(tmp_path):
    """The real process says it in one line on stderr and exits 2, before loading PyTorch or numpy: a typo costs
    no seconds of start-up (``-X importtime`` lists on stderr every module the command imported)."""
    for args, message in (
            (["infer", "nope.gxn", "x.npy", "-o", "logits.npy"], "nope.gxn: No such file or directory"),
            (["export", "nope.pt", "-o", "m.gxn"], "nope.pt: no such file or run directory (nor a run id)")):
        res = subprocess.run([sys.executable, "-X", "importtime", "-m", "gxnor_cli", *args], capture_output=True,
                             text=True, cwd=tmp_path)
        assert res.returncode == 2, res.stderr
        timed = [ln for ln in res.stderr.splitlines() if ln.startswith("import time:")]
        assert [ln for ln in res.stderr.splitlines() if ln not in timed] == [f"gxnor: error: {message}"]
        imported = {ln.rsplit("|", 1)[-1].strip().split(".")[0] for ln in timed}
        assert "gxnor_cli" in imported and not imported & {"torch", "numpy", "gxnor_core"}, args
        assert list(tmp_path.iterdir()) == []
