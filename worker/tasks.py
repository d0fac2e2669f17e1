"""Tasks are thin: hand a run id to the runner, which is testable without Celery."""

import threading

from celery.signals import worker_ready, worker_shutting_down

from app.reaper import start_reaper
from app.settings import get_settings
from worker.celery_app import TASK_NAME, celery_app
from worker.runner import execute_run

_stopping = threading.Event()


@worker_shutting_down.connect
def _on_shutdown(**_kwargs) -> None:
    """Warm or cold shutdown (SIGTERM, Ctrl-C): a running run stops at the next batch."""
    _stopping.set()


@worker_ready.connect
def _start_reaper(**_kwargs) -> None:
    """Workers reap too, so dead runs are requeued even when no API process is running."""
    start_reaper(get_settings(), celery_app)


@celery_app.task(name=TASK_NAME)
def run_training(run_id: int) -> str:
    outcome = execute_run(run_id, get_settings(), should_shutdown=_stopping.is_set)
    if outcome == "requeue":  # the run went back to queued; its message goes back to the queue
        celery_app.send_task(TASK_NAME, args=[run_id], queue=get_settings().queue)
    return outcome
