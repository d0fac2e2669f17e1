"""Run one queued run through gxnor_core.train, recording every epoch in SQL (the SQL reporter).

Plain functions, testable without Celery.  The run's state changes are app.lifecycle's transitions
(its docstring has the table); here they are used in order:

- the worker *claims* the run (queued → running, a lease, ``attempt`` + 1: the fencing token); a
  duplicate or redelivered message for a run that is running or finished therefore does nothing;
- a heartbeat thread renews the lease while the run trains;
- every write of the worker (progress, epochs, the final status) is fenced by its token, so once the
  lease lapsed and another worker took over, a stale worker's writes are rejected and it stops;
- the reaper (app.reaper) requeues runs whose lease lapsed; the next attempt resumes from the last
  committed epoch's checkpoint.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import torch
from sqlalchemy import delete, select
from sqlalchemy.exc import OperationalError

from app import batch_points, lifecycle, summaries
from app.budget import AtRunningLimit
from app.db import session_scope
from app.lifecycle import Lease, LeaseLost, finish, hand_back
from app.models import Artifact, EpochMetric, LayerRecord, Run, utcnow
from app.settings import Settings
from gxnor_core import Reporter, train
from gxnor_core.metrics import summarize
from gxnor_core.reporters import best_model, json_safe, save_checkpoint
from worker import heartbeat

log = logging.getLogger("gxnor.worker")
WORKER_NAME = f"{socket.gethostname()}:{os.getpid()}"


class SQLReporter(Reporter):
    """Writes each epoch (metrics, layer records, checkpoint reference, progress) in one
    transaction; publishes progress and reads cancellation at most every few seconds, with the
    within-epoch loss points reported since (app.batch_points)."""

    def __init__(self, run_id: int, token: int, settings: Settings, should_shutdown: Callable[[], bool]):
        self.run_id = run_id
        self.token = token
        self.lease = Lease(run_id, token, settings)
        self.url = settings.db_url
        self.artifacts = settings.artifacts
        self.interval = settings.progress_interval_s
        self.should_shutdown = should_shutdown
        self.cancel_requested = False
        self.shutdown = False
        self._last_progress = 0.0
        self._points: list[batch_points.Point] = []  # reported, not written yet

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
            self.lease.fenced(s, info=info, heartbeat_at=utcnow())
            batch_points.drop_after(s, self.run_id, info["start_epoch"])  # a previous attempt's partial epoch

    def batch_loss(self, epoch: int, fraction: float, loss: float, samples: int) -> None:
        self._points.append(batch_points.Point(epoch, fraction, loss, samples))

    def progress(self, epoch: int, fraction: float) -> None:
        now = time.monotonic()
        if now - self._last_progress < self.interval:
            return
        self._last_progress = now
        try:
            with session_scope(self.url) as s:
                self.cancel_requested = self.lease.fenced(s, progress_epoch=epoch, progress_fraction=fraction,
                                                          heartbeat_at=utcnow())
                batch_points.store(s, self.run_id, self._points)
            self._points = []
        except OperationalError:  # progress is best effort: training goes on while the database is away
            log.warning("run %s: progress not published (database unreachable)", self.run_id)

    def should_stop(self) -> bool:
        if self.should_shutdown():
            self.shutdown = True
        if self.lease.lost.is_set():
            raise LeaseLost(f"run {self.run_id}: lease of attempt {self.token} lost")
        return self.cancel_requested or self.shutdown

    def epoch(self, metrics: dict, layers: list[dict], checkpoint: dict) -> None:
        epoch = metrics["epoch"]
        # Artifacts by kind: the latest checkpoint (to resume from) every epoch, and the best-validation model
        # (gxnor_core.reporters.best_model, what an export reads) when this epoch is the best so far; each new
        # file replaces the previous one of its kind.  Named by attempt too, so a stale attempt can never
        # overwrite (or delete) the owner's file.
        states = {"checkpoint": checkpoint, "best": best_model(checkpoint)}
        files = {kind: Path("runs") / str(self.run_id) / f"{kind}-{epoch:05d}-a{self.token}.pt"
                 for kind, state in states.items() if state is not None}
        try:
            for kind, rel in files.items():
                (self.artifacts / rel).parent.mkdir(parents=True, exist_ok=True)
                save_checkpoint(states[kind], self.artifacts / rel)
            old = self._commit_epoch(epoch, metrics, layers, checkpoint["selection"], files)
        except BaseException:
            for rel in files.values():
                (self.artifacts / rel).unlink(missing_ok=True)
            raise
        for a in old:
            (self.artifacts / a.path).unlink(missing_ok=True)

    def _commit_epoch(self, epoch, metrics, layers, sel, files) -> list[Artifact]:
        """The epoch's one transaction, retried while the database is unreachable (nothing of a
        failed attempt is committed); a lost lease or a duplicate epoch is not retried."""
        delay = 1.0
        while True:
            try:
                return self._epoch_transaction(epoch, metrics, layers, sel, files)
            except OperationalError:
                if self.lease.lost.is_set():
                    raise
                log.warning("run %s: epoch %s not recorded yet (database unreachable); retrying in %.0f s",
                            self.run_id, epoch, delay)
                time.sleep(delay)
                delay = min(delay * 2, 30.0)

    def _epoch_transaction(self, epoch, metrics, layers, sel, files: dict[str, Path]) -> list[Artifact]:
        with session_scope(self.url) as s:
            # The fenced UPDATE goes first: a stale attempt is rejected before it writes anything,
            # and on PostgreSQL the run's row stays locked until this epoch commits.
            summary = summarize(metrics, sel)  # every run metric of the catalog (gxnor_core.metrics)
            self.cancel_requested = self.lease.fenced(
                s, epochs_done=epoch, progress_epoch=epoch, progress_fraction=1.0, heartbeat_at=utcnow(),
                summary=summary,
            )
            summaries.store(s, self.run_id, summary)  # its rows, which SQLite sorts lists by (app.summaries)
            batch_points.store(s, self.run_id, self._points)
            old = s.scalars(select(Artifact).where(Artifact.run_id == self.run_id,
                                                   Artifact.kind.in_(list(files)))).all()
            s.add(EpochMetric(run_id=self.run_id, epoch=epoch, metrics=json_safe(metrics)))
            s.add_all(LayerRecord(run_id=self.run_id, epoch=epoch, layer=rec["layer"], record=json_safe(rec))
                      for rec in layers)
            s.execute(delete(Artifact).where(Artifact.id.in_([a.id for a in old])))
            s.add_all(Artifact(run_id=self.run_id, kind=kind, epoch=epoch, path=str(rel),
                               size=(self.artifacts / rel).stat().st_size) for kind, rel in files.items())
        self._points = []
        return list(old)


def claim(run_id: int, settings: Settings) -> int | None:
    """This worker's claim on the run (app.lifecycle.claim): the attempt token, or None when the run is not
    queued (any more) or its attempt budget is spent."""
    with session_scope(settings.db_url) as s:
        return lifecycle.claim(s, run_id, settings.lease_seconds, WORKER_NAME, settings.team_max_running)


MAX_REASON = 500
# An absolute path (a directory or more): a server's layout is no business of the run's team.
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~-])(?:/[^\s/'\"(),;:]+){2,}/?")


def failure_reason(exc: BaseException) -> str:
    """The one line every team member sees for a failed run: the exception's type and the first line of its
    message, server paths shortened to their last part, bounded in length.  The traceback goes to
    ``Run.error_detail`` (admins only) and to the worker's log."""
    lines = str(exc).strip().splitlines()
    message = _ABSOLUTE_PATH.sub(lambda m: "…/" + m.group(0).rstrip("/").rsplit("/", 1)[-1], lines[0] if lines else "")
    reason = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return reason if len(reason) <= MAX_REASON else reason[:MAX_REASON - 1] + "…"


def execute_run(run_id: int, settings: Settings, should_shutdown: Callable[[], bool] = lambda: False) -> str:
    """Train run ``run_id``; returns its outcome: succeeded, failed, cancelled, requeue, lost, skipped or
    deferred (its team runs ``GXNOR_TEAM_MAX_RUNNING`` runs already: it stays queued, app.budget).

    ``requeue`` means the worker is shutting down: the run went back to ``queued`` and
    resumes from its last checkpoint on the next worker.  ``lost`` means another attempt
    took the run over (this one was presumed dead); nothing of this attempt was written
    after that.
    """
    try:
        token = claim(run_id, settings)
    except AtRunningLimit as exc:  # the message is dropped; the reaper re-sends the run once its team has room
        log.info("run %s stays queued: %s", run_id, exc)
        return "deferred"
    if token is None:
        log.warning("run %s is not queued (running elsewhere, finished or given up); message skipped", run_id)
        return "skipped"
    with session_scope(settings.db_url) as s:
        config = s.get(Run, run_id).config
    reporter = SQLReporter(run_id, token, settings, should_shutdown)
    log.info("run %s: attempt %s", run_id, token)
    with reporter.lease as lease, heartbeat.running(run_id):  # the worker's row names its run meanwhile
        try:
            summary = train(config, reporter)
            if summary["status"] == "succeeded":
                finish(lease, "succeeded")
                return "succeeded"
            if reporter.shutdown and not reporter.cancel_requested:
                hand_back(lease)  # not a failed attempt: it keeps its budget
                return "requeue"
            finish(lease, "cancelled")
            return "cancelled"
        except LeaseLost:
            log.warning("run %s: attempt %s lost its lease; stopping without writing", run_id, token)
            return "lost"
        except Exception as exc:  # noqa: BLE001 - any failure of a run is recorded on the run
            log.exception("run %s failed", run_id)
            try:
                finish(lease, "failed", failure_reason(exc), error_detail=traceback.format_exc())
            except LeaseLost:
                return "lost"
            return "failed"
