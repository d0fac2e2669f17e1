import gzip
import pickle
import struct
import typing

import numpy as np
import pytest
import torch

from gxnor_core import ARCHITECTURES, DATASETS, OPTIMIZERS, WINDOWS, DatasetError, load_dataset
from gxnor_core.config import ActivationConfig, DatasetConfig, DSTConfig, ModelConfig


def _splits_are_disjoint(d):
    seen = set()
    for x in (d.train_x, d.val_x, d.test_x):
        rows = {bytes(r.numpy().tobytes()) for r in x}
        assert not (rows & seen)
        seen |= rows


@pytest.mark.parametrize("name,shape,n_total", [("digits", (1, 8, 8), 1797), ("mnist5k", (1, 28, 28), 5000)])
def test_bundled_datasets_load_scaled_with_fixed_splits(name, shape, n_total):
    d = load_dataset(DatasetConfig(name=name, val_fraction=0.1))
    assert d.input_shape == shape
    assert d.train_x.dtype == torch.float32 and d.train_y.dtype == torch.int64
    assert len(d.train_x) + len(d.val_x) + len(d.test_x) == n_total
    assert len(d.test_x) == round(n_total * 0.2)
    assert float(d.train_x.min()) == -1.0 and float(d.train_x.max()) == 1.0
    assert set(d.test_y.tolist()) == set(range(10))
    again = load_dataset(DatasetConfig(name=name, val_fraction=0.1))
    assert torch.equal(again.val_x, d.val_x)  # the split does not depend on the run
    limited = load_dataset(DatasetConfig(name=name, limit=100))
    assert len(limited.train_x) == 100


@pytest.mark.parametrize("name", ["digits", "mnist5k"])
@pytest.mark.parametrize("val_fraction,limit", [(0.1, None), (0.0, None), (0.5, None), (1 / 6, 100), (0.25, 5000)])
def test_the_registry_knows_the_split_sizes_load_dataset_makes(name, val_fraction, limit):
    entry = DATASETS[name]
    d = load_dataset(DatasetConfig(name=name, val_fraction=val_fraction, limit=limit))
    assert entry.split_sizes(val_fraction, limit) == (len(d.train_x), len(d.val_x), len(d.test_x))
    assert d.input_shape == entry.input_shape and entry.num_classes == len(set(d.test_y.tolist()))
    assert entry.bundled and all(f.endswith(".csv.gz") for f in entry.files)


def test_every_choice_of_the_config_is_a_registry_entry():
    def choices(model, field):
        return typing.get_args(model.model_fields[field].annotation)

    assert choices(DatasetConfig, "name") == tuple(DATASETS)
    assert choices(ModelConfig, "arch") == tuple(ARCHITECTURES)
    assert choices(DSTConfig, "optimizer") == tuple(OPTIMIZERS)
    assert choices(ActivationConfig, "window") == tuple(WINDOWS)
    for entry in DATASETS.values():  # standard files: where they are looked for and fetched from
        assert entry.bundled or (entry.files and entry.dirs and entry.url and entry.fetch)


def test_mnist5k_has_real_digits():
    d = load_dataset(DatasetConfig(name="mnist5k"))
    # MNIST background is -1 and strokes reach +1: about a fifth of pixels are ink.
    ink = float((d.train_x > 0).float().mean())
    assert 0.1 < ink < 0.3
    _splits_are_disjoint(d)


def _write_idx(path, array, gz):
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + b"".join(struct.pack(">I", s) for s in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    (gzip.open if gz else open)(path, "wb").write(data)


@pytest.mark.parametrize("name,gz", [("mnist", True), ("fashion_mnist", False)])
def test_idx_datasets_load_from_local_files(tmp_path, name, gz):
    rng = np.random.default_rng(0)
    folder = tmp_path / name
    folder.mkdir()
    suffix = ".gz" if gz else ""
    _write_idx(folder / f"train-images-idx3-ubyte{suffix}", rng.integers(0, 256, (50, 28, 28)), gz)
    _write_idx(folder / f"train-labels-idx1-ubyte{suffix}", np.arange(50) % 10, gz)
    _write_idx(folder / f"t10k-images-idx3-ubyte{suffix}", np.full((20, 28, 28), 255), gz)
    _write_idx(folder / f"t10k-labels-idx1-ubyte{suffix}", np.arange(20) % 10, gz)
    d = load_dataset(DatasetConfig(name=name, root=str(tmp_path), val_fraction=0.2))
    assert (len(d.train_x), len(d.val_x), len(d.test_x)) == (40, 10, 20)
    assert d.input_shape == (1, 28, 28)
    assert torch.all(d.test_x == 1.0)
    assert d.test_y.tolist() == [i % 10 for i in range(20)]


def test_cifar10_loads_from_the_python_batches(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for f in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), b"labels": [0, 1, 2, 3]}
        (folder / f).write_bytes(pickle.dumps(batch))
    d = load_dataset(DatasetConfig(name="cifar10", root=str(tmp_path), val_fraction=0.1))
    assert d.input_shape == (3, 32, 32)
    assert len(d.train_x) + len(d.val_x) == 20 and len(d.test_x) == 4


def test_svhn_loads_from_the_mat_files(tmp_path):
    from scipy.io import savemat

    folder = tmp_path / "svhn"
    folder.mkdir()
    for f, n in (("train_32x32.mat", 10), ("test_32x32.mat", 5)):
        savemat(folder / f, {"X": np.zeros((32, 32, 3, n), np.uint8), "y": (np.arange(n) % 10 + 1)[:, None]})
    d = load_dataset(DatasetConfig(name="svhn", root=str(tmp_path), val_fraction=0.2))
    assert d.input_shape == (3, 32, 32)
    assert sorted(d.test_y.tolist()) == [1, 2, 3, 4, 5]  # label 10 means digit 0


def test_missing_dataset_says_where_it_looked(tmp_path):
    with pytest.raises(DatasetError) as err:
        load_dataset(DatasetConfig(name="cifar10", root=str(tmp_path)))
    msg = str(err.value)
    assert str(tmp_path) in msg and "data_batch_1" in msg and "download" in msg
