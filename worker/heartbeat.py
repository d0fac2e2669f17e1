"""This worker process's heartbeat row (app.workers; docs/DESIGN.md, "Workers and the queue").

One per process: ``start`` writes the row and beats every ``GXNOR_WORKER_HEARTBEAT_S`` seconds from a daemon
thread; ``running(run_id)`` wraps a claimed run, so the row says what the worker trains the moment it takes
and finishes it; ``stop`` (a clean shutdown) deletes the row.  A database outage costs beats, never the worker
or its run: every failed write is logged and the next beat writes the whole row again.  This is not the run's
lease (app.lifecycle.Lease, renewed per run): a worker with no run beats too, so a page can say that someone
is there to take the queue.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from app import workers
from app.db import session_scope
from app.settings import Settings
from gxnor_core.train import resolve_device

log = logging.getLogger("gxnor.worker")


def training_device() -> str:
    """What a run with ``train.device: auto`` trains on here: ``cpu``, or ``cuda:<device name>``.  CUDA is
    initialised only when a device is there (the worker will train on it; its solo pool never forks)."""
    device = resolve_device("auto")
    if device.type != "cuda":
        return "cpu"
    import torch

    return f"cuda:{torch.cuda.get_device_name(device)}"


class Heartbeat:
    """The row's writer: ``beat`` writes now (from any thread); a daemon thread beats every period."""

    def __init__(self, settings: Settings, concurrency: int = 1, device: str | None = None):
        self.url = settings.db_url
        self.me = workers.WorkerInfo.local(os.getpid(), device or training_device(), concurrency,
                                           settings.worker_heartbeat_s)
        self.run_id: int | None = None
        self._lock = threading.Lock()  # one write at a time: a late beat must not undo a newer run change
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="gxnor-heartbeat", daemon=True)

    def beat(self, starting: bool = False) -> bool:
        """Write the row; False (logged) when the database is unreachable."""
        try:
            with self._lock, session_scope(self.url) as s:
                workers.beat(s, self.me, self.run_id, starting)
            return True
        except Exception:  # noqa: BLE001 - database away: the next beat writes the whole row again
            log.warning("worker %s: heartbeat not written (database unreachable?)", self.me.id, exc_info=True)
            return False

    def _loop(self) -> None:
        while not self._stop.wait(self.me.heartbeat_s):
            self.beat()

    def start(self) -> Heartbeat:
        self.beat(starting=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """A clean shutdown: no more beats, and the row is deleted (the worker is gone, not dead)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        try:
            with self._lock, session_scope(self.url) as s:
                workers.remove(s, self.me.id)
        except Exception:  # noqa: BLE001 - left to be seen dead, then pruned
            log.warning("worker %s: heartbeat row not removed", self.me.id, exc_info=True)

    @contextmanager
    def running(self, run_id: int) -> Iterator[None]:
        self.run_id = run_id
        self.beat()
        try:
            yield
        finally:
            self.run_id = None
            self.beat()


_current: Heartbeat | None = None


def start(settings: Settings, concurrency: int = 1) -> Heartbeat:
    """Start this process's heartbeat (the worker, once it consumes its queue)."""
    global _current
    _current = Heartbeat(settings, concurrency).start()
    return _current


def stop() -> None:
    global _current
    if _current is not None:
        _current.stop()
        _current = None


@contextmanager
def running(run_id: int) -> Iterator[None]:
    """The worker trains ``run_id`` meanwhile (nothing to say without a heartbeat: tests run runs bare)."""
    if _current is None:
        yield
        return
    with _current.running(run_id):
        yield
