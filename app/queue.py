"""The Celery app and the one task name: what the API, the reaper and the worker share about the queue.

Long jobs: late acks, prefetch 1, no result backend (results live in our tables).  The API and the reaper
only *send* ``TASK_NAME`` by name; the worker (``worker.tasks``) registers the task on an app made here.
"""

from __future__ import annotations

from celery import Celery

from app.settings import Settings

TASK_NAME = "gxnor.run"


def make_celery(settings: Settings) -> Celery:
    app = Celery("gxnor", broker=settings.broker)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_default_queue=settings.queue,
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_cancel_long_running_tasks_on_connection_loss=False,
    )
    if settings.broker_visibility_timeout_s is not None:
        v = settings.broker_visibility_timeout_s
        app.conf.broker_transport_options = {"visibility_timeout": v, "unacked_restore_interval": min(v, 10.0),
                                             "unacked_restore_throttle": 1}
    if settings.broker_url is None:
        # Embedded default: a queue of files under the data directory.  It needs no server
        # and keeps queued runs across a restart.
        app.conf.broker_transport_options = {
            "data_folder_in": str(settings.broker_dir / "queue"),
            "data_folder_out": str(settings.broker_dir / "queue"),
            "processed_folder": str(settings.broker_dir / "processed"),
            "control_folder": str(settings.broker_dir / "control"),
            "store_processed": False,
        }
    return app
