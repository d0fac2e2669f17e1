"""The commands that talk to a running server's REST API (``submit``, ``sweep``, ``tag``, ``export RUN_ID``) do it
through ``gxnor_client.Client`` (its retries and Idempotency-Keys: docs/CLIENT.md); here is what they share:
the client made from ``--server`` and ``--token``, its errors as one line and an exit code, queue-and-follow."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from gxnor_cli.common import fail
from gxnor_client import ApiError, Client


def client(args: argparse.Namespace) -> Client:
    return Client(args.server, args.token)  # (no --token: GXNOR_TOKEN)


def server_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--server", required=True, help="e.g. http://127.0.0.1:8000")
    p.add_argument("--token", help="API token (default: GXNOR_TOKEN)")


def api_error(err: ApiError) -> int:
    """One line on stderr: exit 2 with the server's reason for a refused request, 1 when it could not be asked."""
    if err.status is None:
        print(f"gxnor: error: {err.message}", file=sys.stderr)
        return 1
    message = f"{err.message} (pass --token or set GXNOR_TOKEN)" if err.status == 401 else err.message
    return fail(f"{err.status}: {message}")


def json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true",
                   help="print JSON lines (the queued object, and with --follow the final one) instead of text")


def queue_and_follow(args: argparse.Namespace, create: Callable, describe: Callable, queued: Callable,
                     follow: Callable) -> int:
    """``create(client)`` a run or sweep, say what was queued — one JSON line (``describe`` + its UI link) with
    --json, else ``queued(made, url)`` — then ``follow(client, made, url)`` it if asked."""
    try:
        with client(args) as c:
            made = create(c)
            url = c.url(made)
            print(json.dumps({**describe(made), "url": url}) if args.json else queued(made, url), flush=True)
            return follow(c, made, url) if args.follow else 0
    except ApiError as err:
        return api_error(err)
