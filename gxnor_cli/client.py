"""Talking to a running server's REST API (``submit``, ``sweep``): the client, its errors, post-and-follow.

A request that may not have reached the server, or whose answer was lost (a dropped connection, a timeout, a
502/503/504), is sent again, up to ``ATTEMPTS`` times in all.  The POST that creates a run or a sweep carries
an ``Idempotency-Key`` (one fresh key per command, the same on each of its retries), so a retry after a lost
answer gets the first answer back instead of making a second run (docs/API.md, "Retrying safely").
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
import uuid

from gxnor_cli.common import fail

ATTEMPTS = 4
RETRY_STATUSES = frozenset({502, 503, 504})
MAX_RETRY_AFTER_S = 10.0


def client(args: argparse.Namespace):
    import httpx

    token = args.token or os.environ.get("GXNOR_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=args.server.rstrip("/"), timeout=30, headers=headers)


def send(c, method: str, url: str, **kwargs):
    """``c.request(method, url, **kwargs)``, sent again after a transport error or a 502/503/504: after the
    ``Retry-After`` the server names (at most 10 s), else 0.5, 1, 2 s.  The last failure is raised or returned."""
    import httpx

    for attempt in range(ATTEMPTS):
        pause = 0.5 * 2 ** attempt
        try:
            resp = c.request(method, url, **kwargs)
        except httpx.TransportError:
            if attempt == ATTEMPTS - 1:
                raise
        else:
            if resp.status_code not in RETRY_STATUSES or attempt == ATTEMPTS - 1:
                return resp
            with contextlib.suppress(ValueError):
                pause = min(float(resp.headers.get("Retry-After", pause)), MAX_RETRY_AFTER_S)
        time.sleep(pause)
    raise AssertionError("unreachable")


def api_error(resp) -> int | None:
    """Exit code 2 with the server's one-line reason for a refused request, None when it succeeded."""
    if resp.status_code < 400:
        return None
    try:
        body = resp.json()
    except ValueError:
        body = {}
    message = body.get("message") or body.get("detail") or resp.text
    if resp.status_code == 401:
        message = f"{message} (pass --token or set GXNOR_TOKEN)"
    return fail(f"{resp.status_code}: {message}")


def json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true",
                   help="print JSON lines (the queued object, and with --follow the final one) instead of text")


def post_and_follow(args: argparse.Namespace, kind: str, body: dict, describe, queued, follow) -> int:
    """POST /api/v1/KIND (with an Idempotency-Key), say what was queued — one JSON line (``describe`` + its UI
    link) with --json, else ``queued(made, url)`` — then ``follow(client, made, url)`` it if asked."""
    import httpx

    base = args.server.rstrip("/")
    key = str(uuid.uuid4())  # one per command: its own retries reuse it
    try:
        with client(args) as c:
            resp = send(c, "POST", f"/api/v1/{kind}", json=body, headers={"Idempotency-Key": key})
            if (code := api_error(resp)) is not None:
                return code
            made = resp.json()
            url = f"{base}/#/{kind}/{made['id']}"
            print(json.dumps({**describe(made), "url": url}) if args.json else queued(made, url), flush=True)
            return follow(c, made, url) if args.follow else 0
    except httpx.HTTPError as exc:
        print(f"gxnor: error: {base}: {exc}", file=sys.stderr)
        return 1
