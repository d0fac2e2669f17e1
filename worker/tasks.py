"""Tasks are thin: hand a run id to the runner, which is testable without Celery."""

from celery.worker import state as worker_state

from app.settings import get_settings
from worker.celery_app import TASK_NAME, celery_app
from worker.runner import execute_run


def _worker_is_stopping() -> bool:
    return bool(worker_state.should_stop or worker_state.should_terminate)


@celery_app.task(name=TASK_NAME)
def run_training(run_id: int) -> str:
    outcome = execute_run(run_id, get_settings(), should_shutdown=_worker_is_stopping)
    if outcome == "requeue":  # warm shutdown: the run goes back to the queue, resumes from its checkpoint
        celery_app.send_task(TASK_NAME, args=[run_id])
    return outcome
