"""The worker's Celery app and its one task.  Tasks are thin: hand a run id to the runner, which is
testable without Celery.  The app itself is app.queue's (the API sends to it by ``TASK_NAME``)."""

import threading

from celery.signals import worker_ready, worker_shutdown, worker_shutting_down

from app.lifecycle import enqueue
from app.queue import TASK_NAME, make_celery
from app.reaper import start_reaper
from app.settings import get_settings
from worker import heartbeat
from worker.runner import execute_run

celery_app = make_celery(get_settings())

_stopping = threading.Event()


@worker_shutting_down.connect
def _on_shutdown(**_kwargs) -> None:
    """Warm or cold shutdown (SIGTERM, Ctrl-C): a running run stops at the next batch."""
    _stopping.set()


@worker_ready.connect
def _start_reaper(**_kwargs) -> None:
    """Workers reap too, so dead runs are requeued even when no API process is running."""
    start_reaper(get_settings(), celery_app)


@worker_ready.connect
def _start_heartbeat(sender=None, **_kwargs) -> None:
    """The worker's heartbeat row (app.workers), from the moment it takes runs: GET /workers shows it alive."""
    controller = getattr(sender, "controller", None)
    heartbeat.start(get_settings(), concurrency=int(getattr(controller, "concurrency", None) or 1))


@worker_shutdown.connect
def _stop_heartbeat(**_kwargs) -> None:
    """After a warm shutdown (its run handed back): the row goes, so the worker is gone rather than dead."""
    heartbeat.stop()


@celery_app.task(name=TASK_NAME)
def run_training(run_id: int) -> str:
    outcome = execute_run(run_id, get_settings(), should_shutdown=_stopping.is_set)
    if outcome == "requeue":  # the run went back to queued; its message goes back to the queue
        enqueue(celery_app, get_settings(), [run_id])
    return outcome
