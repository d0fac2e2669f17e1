"""Embedded mode: several runs writing into one SQLite file at once (WAL + busy timeout)."""

import multiprocessing as mp

import pytest
from sqlalchemy import func, select

from app.db import migrate, session_scope
from app.models import EpochMetric, LayerRecord, Run
from app.runs import create_run, default_team_id
from app.settings import Settings
from gxnor_core import validate_config

pytestmark = pytest.mark.slow  # four spawned processes each import torch and train: ~40 s

EPOCHS = 12  # (25 until the suite passed ten minutes: the training, not the writing, took the time)


def _work(data_dir: str, run_id: int) -> str:
    import torch

    from worker.runner import execute_run

    torch.set_num_threads(1)  # one thread per worker process, as deployed workers run (OMP_NUM_THREADS=1)
    return execute_run(run_id, Settings(data_dir=data_dir, progress_interval_s=0.01))


def test_several_runs_write_at_once_without_locking_errors_and_exact_row_counts(tmp_path):
    settings = Settings(data_dir=tmp_path / "data")
    settings.ensure_dirs()
    migrate(settings.db_url)
    # 400 training samples in batches of 50: training is not what is tested, and shorter epochs bring the four
    # writers' epoch commits closer together (more contention per second, not less); 8 batches an epoch still
    # publish progress between epochs.
    config = validate_config({"model": {"hidden": [16]}, "dataset": {"limit": 400},
                              "train": {"epochs": EPOCHS, "batch_size": 50}})
    with session_scope(settings.db_url) as s:
        ids = [create_run(s, config, default_team_id(s)).id for _ in range(4)]
    # Four processes, as four workers on one machine would be: each commits its epochs and
    # publishes progress every 10 ms into the same file.
    with mp.get_context("spawn").Pool(4) as pool:
        outcomes = pool.starmap(_work, [(str(settings.data_dir), i) for i in ids])
    assert outcomes == ["succeeded"] * 4
    with session_scope(settings.db_url) as s:
        for run_id in ids:
            assert s.scalar(select(Run.status).where(Run.id == run_id)) == "succeeded"
            epochs = list(s.scalars(select(EpochMetric.epoch).where(EpochMetric.run_id == run_id)
                                    .order_by(EpochMetric.epoch)))
            assert epochs == list(range(1, EPOCHS + 1))
            n_layers = s.scalar(select(func.count()).select_from(LayerRecord).where(LayerRecord.run_id == run_id))
            assert n_layers == EPOCHS * 2
