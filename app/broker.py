"""What the broker still holds for the queue: run ids of messages waiting or delivered-unacked.

Used by the reaper to resend queued runs whose message the broker lost (a Redis restart
without persistence, say).  Knows the two transports the product uses; for any other it
answers None and nothing is resent.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

from app.queue import TASK_NAME


def _run_id(payload: dict) -> int | None:
    headers = payload.get("headers") or {}
    if headers.get("task") != TASK_NAME:
        return None
    try:
        args = ast.literal_eval(headers.get("argsrepr", ""))
        return int(args[0])
    except (ValueError, SyntaxError, IndexError, TypeError):
        return None


def pending_run_ids(celery, queue: str) -> set[int] | None:
    with celery.connection_for_read() as conn:
        driver = conn.transport.driver_type
        if driver == "redis":
            channel = conn.default_channel
            client = channel.client
            raw = []
            for pri in channel.priority_steps:
                raw += client.lrange(channel._q_for_pri(queue, pri), 0, -1)
            payloads = [json.loads(m) for m in raw]
            payloads += [json.loads(m)[0] for m in client.hvals(channel.unacked_key)]
        elif driver == "filesystem":
            folder = Path(conn.transport_options["data_folder_in"])
            payloads = []
            for f in folder.glob(f"*.{queue}.msg"):
                try:
                    payloads.append(json.loads(f.read_text()))
                except (OSError, ValueError):  # taken by a worker meanwhile
                    continue
        else:
            return None
    return {i for i in map(_run_id, payloads) if i is not None}
