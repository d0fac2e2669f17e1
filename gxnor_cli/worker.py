"""``gxnor worker``: a Celery worker that trains queued runs, one at a time.

Below INFO (``--loglevel WARNING``, what ``gxnor up`` runs) it starts quietly: no Celery banner, and Celery's
ten-line warning about running as root becomes one line.  That warning is advice (least privilege); the danger
Celery refuses to run as root with — unpickling messages — does not exist here: the queue accepts JSON only
(app/queue.py).  So it is kept, on one line, rather than dropped.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings

from gxnor_cli.common import datasets_flag, service_env, service_flags


def register(sub) -> None:
    p = sub.add_parser("worker", help="a Celery worker that trains queued runs")
    p.add_argument("--name", help="worker node name")
    p.add_argument("--loglevel", default="INFO", help="INFO (default) shows Celery's banner and each run; WARNING "
                   "and above start quietly")
    p.add_argument("--ready-fd", dest="ready_fd", type=int, help=argparse.SUPPRESS)  # `gxnor up`: written when ready
    service_flags(p)
    datasets_flag(p)
    p.set_defaults(func=cmd_worker)


def cmd_worker(args: argparse.Namespace) -> int:
    service_env(args)
    from app.db import migrate
    from app.settings import get_settings
    from worker.tasks import celery_app

    settings = get_settings()
    settings.ensure_dirs()
    migrate(settings.db_url)
    name = args.name or f"gxnor-{os.getpid()}@%h"
    quiet = logging.getLevelName(args.loglevel.upper()) in (logging.WARNING, logging.ERROR, logging.CRITICAL)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        from celery.exceptions import SecurityWarning

        warnings.filterwarnings("ignore", message="You're running the worker with superuser", category=SecurityWarning)
        print("gxnor worker: running as root; a worker needs no privileges — run it as an ordinary user where you "
              "can", file=sys.stderr, flush=True)
    if args.ready_fd is not None:
        _signal_ready(args.ready_fd)
    celery_app.worker_main([*(["--quiet"] if quiet else []), "worker", "--pool=solo", "--concurrency=1",
                            "-Q", settings.queue, "-n", name, f"--loglevel={args.loglevel}", "--without-gossip",
                            "--without-mingle"])
    return 0


def _signal_ready(fd: int) -> None:
    """Write to ``fd`` (and close it) once the worker consumes from its queue: `gxnor up` waits for it."""
    from celery.signals import worker_ready

    def ready(**_) -> None:
        try:
            os.write(fd, b"ready\n")
            os.close(fd)
        except OSError:  # `gxnor up` stopped listening: nothing to tell
            pass

    worker_ready.connect(ready, weak=False)
