"""Run one queued run through gxnor_core.train, recording every epoch in SQL.

Plain functions, testable without Celery.  A run is *claimed* with one atomic
UPDATE (queued → running), so a duplicate or redelivered message for a run that is
already running or finished does nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import torch
from sqlalchemy import delete, select, update

from app.db import session_scope
from app.models import Artifact, EpochMetric, LayerRecord, Run, utcnow
from app.settings import Settings
from gxnor_core import Reporter, train
from gxnor_core.reporters import json_safe, save_checkpoint

log = logging.getLogger("gxnor.worker")
WORKER_NAME = f"{socket.gethostname()}:{os.getpid()}"


class SQLReporter(Reporter):
    """Writes each epoch (metrics, layer records, checkpoint reference, progress) in one
    transaction; publishes progress and reads cancellation at most every few seconds."""

    def __init__(self, run_id: int, settings: Settings, should_shutdown: Callable[[], bool]):
        self.run_id = run_id
        self.url = settings.db_url
        self.artifacts = settings.artifacts
        self.interval = settings.progress_interval_s
        self.should_shutdown = should_shutdown
        self.cancel_requested = False
        self.shutdown = False
        self._last_progress = 0.0

    def resume_from(self) -> dict | None:
        with session_scope(self.url) as s:
            art = s.scalars(
                select(Artifact).where(Artifact.run_id == self.run_id, Artifact.kind == "checkpoint")
                .order_by(Artifact.epoch.desc()).limit(1)
            ).first()
            if art is None:
                return None
            path = self.artifacts / art.path
        return torch.load(path, map_location="cpu", weights_only=True)

    def start(self, info: dict) -> None:
        with session_scope(self.url) as s:
            s.execute(update(Run).where(Run.id == self.run_id).values(info=info, heartbeat_at=utcnow()))

    def progress(self, epoch: int, fraction: float) -> None:
        now = time.monotonic()
        if now - self._last_progress < self.interval:
            return
        self._last_progress = now
        with session_scope(self.url) as s:
            self.cancel_requested = bool(s.execute(
                update(Run).where(Run.id == self.run_id)
                .values(progress_epoch=epoch, progress_fraction=fraction, heartbeat_at=utcnow())
                .returning(Run.cancel_requested)
            ).scalar_one())

    def should_stop(self) -> bool:
        if self.should_shutdown():
            self.shutdown = True
        return self.cancel_requested or self.shutdown

    def epoch(self, metrics: dict, layers: list[dict], checkpoint: dict) -> None:
        epoch = metrics["epoch"]
        rel = Path("runs") / str(self.run_id) / f"checkpoint-{epoch:05d}.pt"
        path = self.artifacts / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        save_checkpoint(checkpoint, path)
        sel = checkpoint["selection"]
        try:
            with session_scope(self.url) as s:
                old = s.scalars(select(Artifact).where(Artifact.run_id == self.run_id,
                                                       Artifact.kind == "checkpoint")).all()
                s.add(EpochMetric(run_id=self.run_id, epoch=epoch, metrics=json_safe(metrics)))
                s.add_all(LayerRecord(run_id=self.run_id, epoch=epoch, layer=rec["layer"], record=json_safe(rec))
                          for rec in layers)
                s.execute(delete(Artifact).where(Artifact.id.in_([a.id for a in old])))
                s.add(Artifact(run_id=self.run_id, kind="checkpoint", epoch=epoch, path=str(rel),
                               size=path.stat().st_size))
                row = s.execute(
                    update(Run).where(Run.id == self.run_id).values(
                        epochs_done=epoch, progress_epoch=epoch, progress_fraction=1.0, heartbeat_at=utcnow(),
                        best_val_error=json_safe(sel["best_val_error"]), best_epoch=sel["best_epoch"],
                        test_error=sel["test_error_at_best"], best_test_error=json_safe(sel["best_test_error"]),
                        train_loss=metrics["train_loss"], gate_event_rate=metrics["gate_event_rate"],
                        activation_sparsity=metrics["activation_sparsity"],
                        weight_sparsity=metrics["weight_sparsity"], transition_rate=metrics["transition_rate"],
                    ).returning(Run.cancel_requested)
                ).scalar_one()
                self.cancel_requested = bool(row)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        for a in old:
            (self.artifacts / a.path).unlink(missing_ok=True)


def claim(run_id: int, url: str) -> bool:
    """queued → running, atomically; False if the run is not queued (any more)."""
    with session_scope(url) as s:
        return s.execute(
            update(Run).where(Run.id == run_id, Run.status == "queued").values(
                status="running", attempt=Run.attempt + 1, worker=WORKER_NAME,
                started_at=utcnow(), heartbeat_at=utcnow(), error=None,
            )
        ).rowcount == 1


def finish(run_id: int, url: str, status: str, error: str | None = None) -> None:
    with session_scope(url) as s:
        values = {"status": status, "error": error, "heartbeat_at": utcnow()}
        if status != "queued":
            values["finished_at"] = utcnow()
        s.execute(update(Run).where(Run.id == run_id).values(**values))


def execute_run(run_id: int, settings: Settings, should_shutdown: Callable[[], bool] = lambda: False) -> str:
    """Train run ``run_id``; returns its outcome: succeeded, failed, cancelled, requeue or skipped.

    ``requeue`` means the worker is shutting down: the run went back to ``queued`` and
    resumes from its last checkpoint on the next worker.
    """
    url = settings.db_url
    if not claim(run_id, url):
        log.info("run %s is not queued; skipping", run_id)
        return "skipped"
    with session_scope(url) as s:
        config = s.get(Run, run_id).config
    reporter = SQLReporter(run_id, settings, should_shutdown)
    log.info("run %s: training", run_id)
    try:
        summary = train(config, reporter)
    except Exception as exc:  # noqa: BLE001 - any failure of a run is recorded on the run
        message = f"{type(exc).__name__}: {exc}"
        log.exception("run %s failed", run_id)
        finish(run_id, url, "failed", f"{message}\n\n{traceback.format_exc()}")
        return "failed"
    if summary["status"] == "succeeded":
        finish(run_id, url, "succeeded")
        return "succeeded"
    if reporter.shutdown and not reporter.cancel_requested:
        finish(run_id, url, "queued")
        return "requeue"
    finish(run_id, url, "cancelled")
    return "cancelled"
