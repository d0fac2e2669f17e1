"""What a run costs, in seconds: one estimator for the team budget (app.budget), the estimate endpoint
(``POST /api/v1/estimate``) and, later, sweep cost estimates and queue ETAs (docs/DESIGN.md, "Run-cost estimates").

The unit is **seconds per epoch** of an architecture × dataset (``model.arch`` × ``dataset.name``), and a
run's cost is its epochs times that (``run_seconds``; a queued run that resumes from a checkpoint costs its
remaining epochs: ``remaining_seconds``).

**Learned.**  For each architecture × dataset × device the median of ``(finished_at − started_at) /
epochs_done`` over the last ``WINDOW`` runs of that kind that succeeded in one attempt (a run that was
requeued or handed back has a gap in its wall time), read from existing columns: the device is the one the
worker recorded (``info.device``: ``cpu``, ``cuda``).  That is wall time per epoch as the queue sees it —
loading the dataset, evaluation and checkpoints included.  The device matters (a GPU worker runs the CNNs
many times faster), but a run's worker is not known before it starts: a config with ``train.device: auto``
gets the median over every device (what this server's workers actually took), one that names ``cpu`` or
``cuda`` that device's median when runs of it have finished.

**Default table**, for a kind no run has finished yet: seconds per epoch at the config's defaults (batch
100, validation share 0.1, MLP 256-256, width 1) on one CPU worker.  ``MEASURED`` was timed with ``gxnor
train`` on the development machine (2 CPU cores, shared; the median of epochs 2 on); every other pair is
scaled from the architecture's ``mnist5k`` figure by the network's MACs per sample
(gxnor_core.models.model_size) and the samples an epoch touches (``train + (val + test) / 3``: evaluation is a
forward pass, about a third of a training step), so a dataset registered later gets a default too.  A GPU
worker is much faster than the table: the first finished run of a kind replaces it.

Learned figures are cached per process for ``CACHE_S`` (one query per database then, none per request);
``forget()`` drops the cache.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Run
from gxnor_core.config import ExperimentConfig, validate_config
from gxnor_core.data import DATASETS
from gxnor_core.errors import ConfigError
from gxnor_core.models import ARCHITECTURES, model_size

CACHE_S = 60.0  # learned figures are this fresh at most
WINDOW = 50  # the most recent finished runs of a kind that its median is taken over
SCAN = 5000  # the most recent successful runs read per refresh
ANY_DEVICE = "*"

# Seconds per epoch timed with `gxnor train` (the default config but for arch and dataset) on the development
# machine: 2 CPU cores shared with other work (load average 3–4 then, so these err on the slow side), PyTorch on
# the CPU; the median of epochs 2 on (the first carries warm-up).  cifar_vgg on mnist5k from its first five
# batches (5.2–6.0 s per batch of 100: 36 batches, plus evaluating 1 400 samples); the epoch was not finished.
# Every other pair is scaled from (arch, "mnist5k"): see default_seconds_per_epoch.  The scaling is rough: it
# predicts cifar_vgg on digits at 7.1 s (9.2 measured), but a small MLP's epoch is mostly per-batch overhead
# (0.03 s predicted for mlp on digits, 0.16 measured) — for the full-size datasets the MACs dominate.
MEASURED: dict[tuple[str, str], float] = {
    ("mlp", "digits"): 0.16,  # epochs 2–5: 0.15, 0.15, 0.16, 0.17 s
    ("mlp", "mnist5k"): 0.28,  # 0.27, 0.26, 0.28, 0.33 s
    ("mnist_cnn", "mnist5k"): 2.7,  # 10.8 (a load burst), 2.69, 2.52 s
    ("cifar_vgg", "digits"): 9.2,  # 5.6, 12.8 s
    ("cifar_vgg", "mnist5k"): 240.0,
}
REFERENCE_DATASET = "mnist5k"
EVAL_SHARE = 1 / 3  # an evaluated sample costs about a third of a trained one (forward pass only)


@dataclass(frozen=True)
class Estimate:
    """Seconds per epoch of one kind of run, and what it rests on."""

    seconds_per_epoch: float
    learned_from: int  # finished runs it is the median of; 0: the default table

    @property
    def source(self) -> str:
        if not self.learned_from:
            return "default table"
        return f"learned from {self.learned_from} run{'' if self.learned_from == 1 else 's'}"


def _reference_config(arch: str, dataset: str) -> ExperimentConfig:
    return validate_config({"model": {"arch": arch}, "dataset": {"name": dataset}})


@cache
def _epoch_work(arch: str, dataset: str) -> float | None:
    """MACs × samples of one epoch at the defaults (None when the network cannot take the dataset's inputs)."""
    config = _reference_config(arch, dataset)
    try:
        _, macs = model_size(config)
    except ConfigError:
        return None
    sizes = DATASETS[dataset].split_sizes(config.dataset.val_fraction)
    return macs * (sizes.train + (sizes.val + sizes.test) * EVAL_SHARE)


@cache
def default_seconds_per_epoch(arch: str, dataset: str) -> float:
    """The default table's entry: measured, or scaled from the architecture's ``mnist5k`` figure (an unknown
    pair, or one whose network cannot take the inputs, gets the largest figure of the architecture)."""
    if (arch, dataset) in MEASURED:
        return MEASURED[arch, dataset]
    ref = MEASURED.get((arch, REFERENCE_DATASET))
    if ref is None or arch not in ARCHITECTURES or dataset not in DATASETS:
        return max([v for (a, _), v in MEASURED.items() if a == arch] or MEASURED.values())
    work, ref_work = _epoch_work(arch, dataset), _epoch_work(arch, REFERENCE_DATASET)
    if work is None or not ref_work:
        return max(v for (a, _), v in MEASURED.items() if a == arch)
    return ref * work / ref_work


def default_table() -> dict[tuple[str, str], float]:
    """Every registered architecture × dataset whose network takes the dataset's inputs, and its default."""
    return {(a, d): default_seconds_per_epoch(a, d) for a in ARCHITECTURES for d in DATASETS
            if _epoch_work(a, d) is not None}


# --- learned ---------------------------------------------------------------------------------------------------

ARCH = Run.config[("model", "arch")].as_string()
DATASET = Run.config[("dataset", "name")].as_string()
_WORKER_DEVICE = Run.info["device"].as_string()
# Newest first by id (the primary key's index, scanned backwards): no sort of every finished run.
_FINISHED = (select(ARCH, DATASET, _WORKER_DEVICE, Run.started_at, Run.finished_at, Run.epochs_done)
             .where(Run.status == "succeeded", Run.attempt == 1, Run.epochs_done > 0,
                    Run.started_at.is_not(None), Run.finished_at.is_not(None))
             .order_by(Run.id.desc()).limit(SCAN))

Learned = dict[tuple[str, str, str], Estimate]
_cache: dict[str, tuple[float, Learned]] = {}
_lock = threading.Lock()


def _device_kind(device: str | None) -> str | None:
    return device.split(":", 1)[0] if device else None


def learn(session: Session) -> Learned:
    """The medians, from the database (no cache): per (arch, dataset, device kind) and (arch, dataset, "*")."""
    samples: dict[tuple[str, str, str], list[float]] = {}
    for arch, dataset, device, started, finished, epochs in session.execute(_FINISHED):
        seconds = (finished - started).total_seconds() / epochs
        if seconds < 0 or arch is None or dataset is None:
            continue
        kinds = (ANY_DEVICE,) if _device_kind(device) is None else (ANY_DEVICE, _device_kind(device))
        for kind in kinds:
            got = samples.setdefault((arch, dataset, kind), [])
            if len(got) < WINDOW:
                got.append(seconds)
    return {key: Estimate(statistics.median(values), len(values)) for key, values in samples.items()}


def learned(session: Session) -> Learned:
    """``learn``, cached per process and database for ``CACHE_S``."""
    url = str(session.get_bind().url)
    now = time.monotonic()
    hit = _cache.get(url)
    if hit is not None and now - hit[0] < CACHE_S:
        return hit[1]
    with _lock:
        hit = _cache.get(url)
        if hit is not None and now - hit[0] < CACHE_S:
            return hit[1]
        table = learn(session)
        _cache[url] = (time.monotonic(), table)
        return table


def forget() -> None:
    """Drop the cached learned figures (the next estimate reads the database)."""
    with _lock:
        _cache.clear()


# --- estimates -------------------------------------------------------------------------------------------------


def per_epoch(session: Session, arch: str, dataset: str, device: str = "auto") -> Estimate:
    """Seconds per epoch of ``arch`` on ``dataset``; ``device`` is the config's ``train.device`` (auto, cpu,
    cuda): learned on that device, else on any, else the default table."""
    table = learned(session)
    kind = ANY_DEVICE if device == "auto" else device
    found = table.get((arch, dataset, kind)) or table.get((arch, dataset, ANY_DEVICE))
    return found or Estimate(default_seconds_per_epoch(arch, dataset), 0)


def for_config(session: Session, config: ExperimentConfig) -> Estimate:
    return per_epoch(session, config.model.arch, config.dataset.name, config.train.device)


def run_seconds(session: Session, config: ExperimentConfig) -> float:
    """A config's whole estimated cost: its epochs × seconds per epoch."""
    return config.train.epochs * for_config(session, config).seconds_per_epoch


def remaining_seconds(estimate: Estimate, total_epochs: int, epochs_done: float) -> float:
    """What is left of a run that has ``epochs_done`` of ``total_epochs`` (a requeued run resumes; a running
    one may have done part of an epoch: app.workers)."""
    return max(0, total_epochs - epochs_done) * estimate.seconds_per_epoch


def total_seconds(session: Session, configs: Iterable[ExperimentConfig]) -> float:
    """Several configs' cost (a sweep's)."""
    return sum(run_seconds(session, c) for c in configs)


def human(seconds: float) -> str:
    """``seconds`` for a person: 45 s, 12 min, 3.5 h, 2.1 days."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.1f} days"
