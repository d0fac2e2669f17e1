"""``gxnor sweep``: queue a parameter sweep (a spec file or a preset) through the REST API, and follow it if
asked: a progress bar with its runs done, running and queued, then a few lines of results."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from gxnor_cli import summary
from gxnor_cli.client import json_flag, queue_and_follow, server_flags
from gxnor_cli.common import fail
from gxnor_client import Client, Sweep

POLL_S = 2.0


def register(sub) -> None:
    p = sub.add_parser("sweep", help="queue a parameter sweep through the REST API")
    p.add_argument("spec", help="sweep spec file (YAML or JSON: name, base, grid | list | random, seeds, …) "
                   "or preset:NAME (paper-r, paper-a-window, paper-m, paper-n-grid)")
    server_flags(p)
    p.add_argument("--set", action="append", metavar="KEY.PATH=VALUE", help="override a field of the base config")
    p.add_argument("--name", help="the sweep's name (default: the spec's, or the preset's)")
    p.add_argument("--follow", action="store_true", help="show progress until every run ends, then the results")
    p.add_argument("--team", help="the team to queue it in (default: your only team)")
    json_flag(p)
    p.set_defaults(func=cmd_sweep)


def cmd_sweep(args: argparse.Namespace) -> int:
    """Queue a sweep (a YAML/JSON spec file, or preset:NAME) through the REST API."""
    from gxnor_core import FieldError, apply_overrides
    from gxnor_core.config import read_mapping
    from gxnor_core.sweeps import SWEEP_PRESETS

    name = args.spec.removeprefix("preset:")
    if args.spec.startswith("preset:") or (name in SWEEP_PRESETS and not Path(args.spec).exists()):
        if name not in SWEEP_PRESETS:
            return fail(f"spec: unknown sweep preset {name!r}; presets: {', '.join(SWEEP_PRESETS)}")
        spec: dict = {"name": args.name or name, "preset": name}
    elif not Path(args.spec).exists():
        return fail(f"spec: no such file or sweep preset: {args.spec} (presets: "
                    f"{', '.join(f'preset:{n}' for n in SWEEP_PRESETS)})")
    else:
        try:
            spec = read_mapping(args.spec, "spec")
        except FieldError as exc:
            return fail(str(exc))
        if args.name:
            spec["name"] = args.name
    try:
        if args.set:
            spec["base"] = apply_overrides(spec.get("base") or {}, args.set)
    except FieldError as exc:
        return fail(f"--set {exc}")
    return queue_and_follow(args, lambda c: c.sweep(spec, team=args.team), lambda sweep: {
        "id": sweep.id, "runs": len(sweep.run_ids), "fields": sweep.fields},
        lambda sweep, url: summary.sweep_queued(sweep.raw, url),
        lambda c, sweep, url: _follow_sweep(c, sweep, url, args.json))


def _counts(sweep: dict) -> str:
    """The bar's postfix: how many runs are done, training and still waiting in the queue."""
    c = {**dict.fromkeys(("queued", "running", "succeeded", "failed", "cancelled"), 0), **sweep["counts"]}
    done = c["succeeded"] + c["failed"] + c["cancelled"]
    return (f"{done}/{sweep['total']} done, {c['running']} running, {c['queued']} queued"
            + (f", {c['failed']} failed" if c["failed"] else ""))


def _follow_sweep(c: Client, sweep: Sweep, url: str, as_json: bool) -> int:
    from tqdm import tqdm

    started = time.monotonic()
    with tqdm(total=1.0, desc=sweep.name, file=sys.stderr, postfix=_counts(sweep.raw),
              bar_format="{l_bar}{bar}| {n:.0%} [{elapsed}<{remaining}]{postfix}") as bar:

        def show(now: Sweep) -> None:
            bar.set_postfix_str(_counts(now.raw), refresh=False)
            bar.update(now.progress - bar.n)
            bar.refresh()

        sweep = c.wait_sweep(sweep.id, show, poll_s=POLL_S)
    ok = sweep.counts.get("failed", 0) == 0 and sweep.status == "finished"
    if not as_json:
        print("\n".join(summary.sweep_lines(sweep.raw, url, time.monotonic() - started)))
        return 0 if ok else 1
    print(json.dumps({"id": sweep.id, "status": sweep.status, "counts": sweep.counts,
                      "results": [{"overrides": r["overrides"], "n_done": r["n_done"],
                                   **{k: v["mean"] for k, v in r["metrics"].items()}} for r in sweep.results]}))
    return 0 if ok else 1
