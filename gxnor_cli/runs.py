"""``gxnor submit``: queue one run through the REST API, and follow it if asked: a progress bar that says
whether the run is still waiting in the queue or training, then a few lines of summary."""

from __future__ import annotations

import argparse
import json
import sys
import time

from gxnor_cli import summary
from gxnor_cli.client import json_flag, post_and_follow, send
from gxnor_cli.common import fail

POLL_S = 1.0


def register(sub) -> None:
    p = sub.add_parser("submit", help="queue a run through the REST API")
    p.add_argument("config", help="config file (JSON or YAML) or a preset name")
    p.add_argument("--server", required=True, help="e.g. http://127.0.0.1:8000")
    p.add_argument("--set", action="append", metavar="KEY.PATH=VALUE", help="override a config field")
    p.add_argument("--follow", action="store_true", help="show progress until the run ends")
    p.add_argument("--team", help="the team to queue it in (default: your only team)")
    p.add_argument("--token", help="API token (default: GXNOR_TOKEN)")
    json_flag(p)
    p.set_defaults(func=cmd_submit)


def cmd_submit(args: argparse.Namespace) -> int:
    from gxnor_core import FieldError, apply_overrides
    from gxnor_core.config import load_config_file

    try:
        config = apply_overrides(load_config_file(args.config), args.set or [])
    except FieldError as exc:
        return fail(str(exc))
    body = {"config": config, **({"team": args.team} if args.team else {})}
    return post_and_follow(args, "runs", body, lambda run: {"id": run["id"], "status": run["status"]},
                           summary.run_queued, lambda c, run, url: _follow(c, run, url, args.json))


def _follow(client, run: dict, url: str, as_json: bool) -> int:
    from tqdm import tqdm

    total = run["progress"]["total_epochs"]
    with tqdm(total=total, unit="epoch", desc=run["name"], file=sys.stderr, postfix=_state(run),
              bar_format="{l_bar}{bar}| {n:.2f}/{total} epochs [{elapsed}<{remaining}]{postfix}") as bar:
        while run["status"] in ("queued", "running"):
            time.sleep(POLL_S)
            run = send(client, "GET", f"/api/v1/runs/{run['id']}").raise_for_status().json()
            p = run["progress"]
            done = p["epochs_done"] + (p["fraction"] if p["epoch"] > p["epochs_done"] else 0.0)
            state = _state(run)
            if state != bar.postfix:  # queued → running → …: shown at once, even while no epoch moves
                bar.set_postfix_str(state, refresh=False)
                bar.update(min(done, total) - bar.n)
                bar.refresh()
            else:
                bar.update(min(done, total) - bar.n)
    if as_json:
        print(json.dumps({"id": run["id"], "status": run["status"], "summary": run["summary"],
                          "error": (run["error"] or "").split("\n")[0] or None}))
    else:
        print("\n".join(summary.run_lines(run, url)))
    return 0 if run["status"] == "succeeded" else 1


def _state(run: dict) -> str:
    """What the bar says after its figures: waiting in the queue, or training (and in which epoch)."""
    if run["status"] == "queued":
        return "queued: waiting for a worker"
    if run["status"] == "running":
        p = run["progress"]
        return f"running: epoch {max(p['epoch'], 1)}/{p['total_epochs']}"
    return run["status"]
