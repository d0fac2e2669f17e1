"""``gxnor submit``: queue one run through the REST API, and follow it if asked: a progress bar that says
whether the run is still waiting in the queue or training, then a few lines of summary.  ``gxnor tag``: add or
remove tags on runs."""

from __future__ import annotations

import argparse
import json
import sys

from gxnor_cli import summary
from gxnor_cli.client import api_error, client, json_flag, queue_and_follow, server_flags
from gxnor_cli.common import fail
from gxnor_client import ApiError, Client, Run

POLL_S = 1.0


def register(sub) -> None:
    p = sub.add_parser("submit", help="queue a run through the REST API")
    p.add_argument("config", help="config file (JSON or YAML) or a preset name")
    server_flags(p)
    p.add_argument("--set", action="append", metavar="KEY.PATH=VALUE", help="override a config field")
    p.add_argument("--follow", action="store_true", help="show progress until the run ends")
    p.add_argument("--team", help="the team to queue it in (default: your only team)")
    json_flag(p)
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("tag", help="add tags to runs (or remove them with --remove)")
    p.add_argument("ids", nargs="+", type=int, metavar="RUN_ID")
    p.add_argument("-t", "--tag", dest="tags", action="append", required=True, metavar="TAG",
                   help="a tag (repeat for several)")
    p.add_argument("--remove", action="store_true", help="remove the tags instead of adding them")
    server_flags(p)
    p.set_defaults(func=cmd_tag)


def cmd_submit(args: argparse.Namespace) -> int:
    from gxnor_core import FieldError, apply_overrides
    from gxnor_core.config import load_config_file

    try:
        config = apply_overrides(load_config_file(args.config), args.set or [])
    except FieldError as exc:
        return fail(str(exc))
    return queue_and_follow(args, lambda c: c.submit(config, team=args.team),
                            lambda run: {"id": run.id, "status": run.status},
                            lambda run, url: summary.run_queued(run.raw, url),
                            lambda c, run, url: _follow(c, run, url, args.json))


def _follow(c: Client, run: Run, url: str, as_json: bool) -> int:
    from tqdm import tqdm

    total = run.progress.total_epochs
    with tqdm(total=total, unit="epoch", desc=run.name, file=sys.stderr, postfix=_state(run),
              bar_format="{l_bar}{bar}| {n:.2f}/{total} epochs [{elapsed}<{remaining}]{postfix}") as bar:

        def show(now: Run) -> None:
            state = _state(now)
            bar.update(min(now.progress.epochs, total) - bar.n)
            if state != bar.postfix:  # queued → running → …: shown at once, even while no epoch moves
                bar.set_postfix_str(state, refresh=False)
                bar.refresh()

        run = c.wait(run.id, show, poll_s=POLL_S)
    if as_json:
        print(json.dumps({"id": run.id, "status": run.status, "summary": run.summary,
                          "error": (run.error or "").split("\n")[0] or None}))
    else:
        print("\n".join(summary.run_lines(run.raw, url)))
    return 0 if run.status == "succeeded" else 1


def cmd_tag(args: argparse.Namespace) -> int:
    """Tag runs (or untag them): one line per run, exit 2 if any was refused (missing, another team's)."""
    try:
        with client(args) as c:
            done = (c.untag if args.remove else c.tag)(args.ids, args.tags)
    except ApiError as err:
        return api_error(err)
    verb = "untagged" if args.remove else "tagged"
    for r in done.results:
        print(f"run #{r['id']}: {verb} {', '.join(args.tags)}" if r["ok"] else f"run #{r['id']}: {r['status']}: "
              f"{r['detail']}")
    return 0 if not done.failed else fail(f"{len(done.failed)} of {len(done.results)} runs not {verb}")


def _state(run: Run) -> str:
    """What the bar says after its figures: waiting in the queue, or training (and in which epoch)."""
    if run.status == "queued":
        return "queued: waiting for a worker"
    if run.status == "running":
        return f"running: epoch {max(run.progress.epoch, 1)}/{run.progress.total_epochs}"
    return run.status
