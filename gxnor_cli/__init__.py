"""The ``gxnor`` command line (SPEC §5).

Bad input exits with code 2 and one line naming the problem.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _fail(message: str) -> int:
    print(f"gxnor: error: {' '.join(message.split())}", file=sys.stderr)
    return EXIT_USAGE


def cmd_train(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from gxnor_core import ConfigError, DatasetError, apply_overrides, train, validate_config
    from gxnor_core.config import load_config_file
    from gxnor_core.reporters import DirectoryReporter

    try:
        cfg = validate_config(apply_overrides(load_config_file(args.config), args.set or []))
    except ConfigError as exc:
        return _fail(str(exc))
    out = Path(args.out) if args.out else Path("runs") / f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}"

    class _CLIReporter(DirectoryReporter):
        bar: tqdm | None = None

        def start(self, info: dict) -> None:
            self.batches = info["batches_per_epoch"]
            self.bar = tqdm(total=cfg.train.epochs * self.batches, unit="batch", dynamic_ncols=True,
                            initial=info["start_epoch"] * self.batches, desc=cfg.name, file=sys.stderr)

        def progress(self, epoch: int, fraction: float) -> None:
            self.bar.update(1)

        def epoch(self, metrics: dict, layers: list[dict], checkpoint: dict) -> None:
            super().epoch(metrics, layers, checkpoint)
            self.bar.set_postfix(epoch=metrics["epoch"], loss=f"{metrics['train_loss']:.4f}",
                                 val_err=f"{metrics['val_error']:.4f}", refresh=False)

    try:
        reporter = _CLIReporter(out, resume=args.resume)
    except OSError as exc:
        return _fail(f"--out {out}: {exc.strerror}")

    def _interrupt(signum, frame):  # Ctrl-C: stop between batches, keep what was recorded
        reporter.stop_requested = True

    previous = signal.signal(signal.SIGINT, _interrupt)
    try:
        summary = train(cfg, reporter)
    except (DatasetError, FileNotFoundError) as exc:
        return _fail(str(exc))
    finally:
        signal.signal(signal.SIGINT, previous)
        if reporter.bar is not None:
            reporter.bar.close()
    reporter.finish(summary)
    print(json.dumps({"out": str(out), **summary}, indent=2, default=str))
    return 0 if summary["status"] == "succeeded" else 130


def _service_env(args: argparse.Namespace) -> None:
    """Flags become GXNOR_* variables, so every part (API, worker) reads one Settings.  Also: what the service
    writes (the SQLite database, checkpoints, queue files) is readable by its own user only (umask 077; the
    data directory itself is made 0700 by Settings.ensure_dirs)."""
    os.umask(0o077)
    for flag, var in (("data_dir", "GXNOR_DATA_DIR"), ("database_url", "GXNOR_DATABASE_URL"),
                      ("broker_url", "GXNOR_BROKER_URL")):
        value = getattr(args, flag, None)
        if value:
            os.environ[var] = str(value)
    if getattr(args, "no_auth", False):
        os.environ["GXNOR_AUTH"] = "false"


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _serve_checks(args: argparse.Namespace, settings) -> str | None:
    """Refuse an open server; migrate; on first start make the admin and say how to sign in."""
    if not settings.auth and not _is_loopback(args.host):
        raise _Refused(f"refusing to listen on {args.host} with auth switched off (GXNOR_AUTH=false / --no-auth): "
                       "anyone who can reach it could use it. Bind to 127.0.0.1, or leave auth on.")
    from app.main import prepare_database

    token = prepare_database(settings)
    where = f"http://{'127.0.0.1' if args.host in ('0.0.0.0', '::') else args.host}:{args.port}"
    if not settings.auth:
        print("GXNOR Lab: auth is off (loopback only): no token needed.", flush=True)
    elif token:
        print(f"GXNOR Lab: first start — created user 'admin' (team 'default').\n"
              f"  API token (shown once; keep it): {token}\n"
              f"  Sign in: {where}/#token={token}", flush=True)
    else:
        print("GXNOR Lab: sign in with your API token (`gxnor token` makes a new admin token).", flush=True)
    return token


class _Refused(Exception):
    pass


def cmd_api(args: argparse.Namespace) -> int:
    from app import serving
    from app.main import create_app
    from app.settings import Settings

    _service_env(args)
    settings = Settings()
    settings.ensure_dirs()  # (a SQLite database needs its directory before the migrations run)
    try:
        _serve_checks(args, settings)
    except _Refused as exc:
        return _fail(str(exc))
    if args.workers > 1:  # each process builds the app from the same GXNOR_* environment
        serving.run("app.main:create_app", workers=args.workers, host=args.host, port=args.port)
    else:
        serving.run(create_app(settings), host=args.host, port=args.port)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    _service_env(args)
    from app.db import migrate
    from app.settings import get_settings
    from worker.celery_app import celery_app

    settings = get_settings()
    settings.ensure_dirs()
    migrate(settings.db_url)
    name = args.name or f"gxnor-{os.getpid()}@%h"
    celery_app.worker_main(["worker", "--pool=solo", "--concurrency=1", "-Q", settings.queue, "-n", name,
                            f"--loglevel={args.loglevel}", "--without-gossip", "--without-mingle"])
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    """API + UI + one local worker on SQLite and a filesystem queue, all under --data-dir."""
    import subprocess

    from app import serving
    from app.main import create_app
    from app.settings import Settings
    from app.supervisor import requeue_orphans

    _service_env(args)
    settings = Settings()
    settings.ensure_dirs()
    try:
        _serve_checks(args, settings)
    except _Refused as exc:
        return _fail(str(exc))
    requeue_orphans(settings)
    worker = subprocess.Popen([sys.executable, "-m", "gxnor_cli", "worker", "--loglevel", "WARNING"],
                              env=os.environ.copy(), start_new_session=True, preexec_fn=_die_with_parent)
    print(f"GXNOR Lab: http://{args.host}:{args.port}/  (data in {settings.data_dir.resolve()})", flush=True)
    try:
        serving.run(create_app(settings), host=args.host, port=args.port, log_level="warning")
    finally:
        worker.send_signal(signal.SIGTERM)  # warm shutdown: a running run checkpoints and goes back to the queue
        try:
            worker.wait(timeout=120)
        except subprocess.TimeoutExpired:
            worker.kill()
    return 0


def _die_with_parent() -> None:
    """Linux: the local worker gets SIGTERM (a warm shutdown) if `gxnor up` itself is killed."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def cmd_token(args: argparse.Namespace) -> int:
    """A new API token straight in the database (whoever can read the data directory is trusted)."""
    from sqlalchemy import select

    from app.auth import issue_token
    from app.db import session_scope
    from app.main import prepare_database
    from app.models import User
    from app.settings import Settings

    _service_env(args)
    settings = Settings()
    settings.ensure_dirs()
    prepare_database(settings)
    with session_scope(settings.db_url) as session:
        user = session.scalars(select(User).where(User.name == args.user)).first()
        if user is None:
            return _fail(f"--user: no user named {args.user!r}")
        if args.admin:  # restores admin rights from the server's shell (e.g. no admin is left)
            user.is_admin = True
        _, token = issue_token(session, user.id, args.token_name, expires_in_days=args.expires_in_days)
    print(token)
    return 0


def _days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of days: {text!r}") from None
    if not 1 <= days <= 3650:
        raise argparse.ArgumentTypeError(f"must be 1 to 3650 days, not {days}")
    return days


def _client(args: argparse.Namespace):
    import httpx

    token = args.token or os.environ.get("GXNOR_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=args.server.rstrip("/"), timeout=30, headers=headers)


def _api_error(resp) -> int | None:
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
    return _fail(f"{resp.status_code}: {message}")


def cmd_submit(args: argparse.Namespace) -> int:
    from gxnor_core import ConfigError, apply_overrides
    from gxnor_core.config import load_config_file

    try:
        config = apply_overrides(load_config_file(args.config), args.set or [])
    except ConfigError as exc:
        return _fail(str(exc))
    body = {"config": config, **({"team": args.team} if args.team else {})}
    return _post_and_follow(args, "runs", body, lambda run: {"id": run["id"], "status": run["status"]}, _follow)


def _post_and_follow(args: argparse.Namespace, kind: str, body: dict, describe, follow) -> int:
    """POST /api/v1/KIND, print one JSON line (``describe`` + its UI link), then ``follow`` it if asked."""
    import httpx

    base = args.server.rstrip("/")
    try:
        with _client(args) as client:
            resp = client.post(f"/api/v1/{kind}", json=body)
            if (code := _api_error(resp)) is not None:
                return code
            made = resp.json()
            print(json.dumps({**describe(made), "url": f"{base}/#/{kind}/{made['id']}"}))
            return follow(client, made) if args.follow else 0
    except httpx.HTTPError as exc:
        print(f"gxnor: error: {base}: {exc}", file=sys.stderr)
        return 1


def cmd_sweep(args: argparse.Namespace) -> int:
    """Queue a sweep (a YAML/JSON spec file, or preset:NAME) through the REST API."""
    from gxnor_core import ConfigError, apply_overrides
    from gxnor_core.config import read_mapping
    from gxnor_core.sweeps import SWEEP_PRESETS

    name = args.spec.removeprefix("preset:")
    if args.spec.startswith("preset:") or (name in SWEEP_PRESETS and not Path(args.spec).exists()):
        spec: dict = {"name": args.name or name, "preset": name}
    else:
        try:
            spec = read_mapping(args.spec, "spec")
        except ConfigError as exc:
            return _fail(str(exc))
        if args.name:
            spec["name"] = args.name
    try:
        if args.set:
            spec["base"] = apply_overrides(spec.get("base") or {}, args.set)
    except ConfigError as exc:
        return _fail(f"--set {exc}")
    if args.team:
        spec["team"] = args.team
    return _post_and_follow(args, "sweeps", spec, lambda sweep: {
        "id": sweep["id"], "runs": len(sweep["run_ids"]), "fields": sweep["fields"]}, _follow_sweep)


def _follow_sweep(client, sweep: dict) -> int:
    from tqdm import tqdm

    with tqdm(total=1.0, desc=sweep["name"], file=sys.stderr,
              bar_format="{l_bar}{bar}| {n:.0%} [{elapsed}<{remaining}]{postfix}") as bar:
        while sweep["status"] in ("queued", "running"):
            time.sleep(2.0)
            sweep = client.get(f"/api/v1/sweeps/{sweep['id']}").raise_for_status().json()
            bar.update(sweep["progress"] - bar.n)
            c = sweep["counts"]
            bar.set_postfix_str(f"{c['succeeded']}/{sweep['total']} done, {c['running']} running, "
                                f"{c['failed']} failed", refresh=False)
    print(json.dumps({"id": sweep["id"], "status": sweep["status"], "counts": sweep["counts"],
                      "results": [{"overrides": r["overrides"], "n_done": r["n_done"],
                                   **{k: v["mean"] for k, v in r["metrics"].items()}} for r in sweep["results"]]}))
    return 0 if sweep["counts"]["failed"] == 0 and sweep["status"] == "finished" else 1


def _follow(client, run: dict) -> int:
    from tqdm import tqdm

    total = run["progress"]["total_epochs"]
    with tqdm(total=total, unit="epoch", desc=run["name"], file=sys.stderr,
              bar_format="{l_bar}{bar}| {n:.2f}/{total} epochs [{elapsed}<{remaining}]") as bar:
        while run["status"] in ("queued", "running"):
            time.sleep(1.0)
            run = client.get(f"/api/v1/runs/{run['id']}").raise_for_status().json()
            p = run["progress"]
            done = p["epochs_done"] + (p["fraction"] if p["epoch"] > p["epochs_done"] else 0.0)
            bar.update(min(done, total) - bar.n)
            bar.set_postfix(status=run["status"], refresh=False)
    print(json.dumps({"id": run["id"], "status": run["status"], "summary": run["summary"],
                      "error": (run["error"] or "").split("\n")[0] or None}))
    return 0 if run["status"] == "succeeded" else 1


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="gxnor", description="GXNOR Lab: gated XNOR networks, trained without hidden weights.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("train", help="train one run locally with a progress bar")
    p.add_argument("config", help="config file (JSON or YAML) or a preset name (quick, mnist-paper, …)")
    p.add_argument("--set", action="append", metavar="KEY.PATH=VALUE", help="override a config field")
    p.add_argument("--out", metavar="DIR", help="output directory (default runs/NAME-TIMESTAMP)")
    p.add_argument("--resume", action="store_true", help="continue from DIR/checkpoint.pt")
    p.set_defaults(func=cmd_train)

    def service_flags(p, data_dir_default=None):
        p.add_argument("--data-dir", dest="data_dir", default=data_dir_default,
                       help="where everything is stored (GXNOR_DATA_DIR)")
        p.add_argument("--database-url", dest="database_url", help="GXNOR_DATABASE_URL (default: SQLite in data dir)")
        p.add_argument("--broker-url", dest="broker_url", help="GXNOR_BROKER_URL (default: files in data dir)")

    p = sub.add_parser("up", help="the whole product on one machine: API + UI + a local worker")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--no-auth", action="store_true", help="no tokens (only on a loopback address)")
    service_flags(p, data_dir_default=os.environ.get("GXNOR_DATA_DIR", "./gxnor-data"))
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("api", help="the REST API and UI (distributed mode)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1, choices=range(1, 65), metavar="N",
                   help="API processes (uvicorn workers; default 1)")
    p.add_argument("--no-auth", action="store_true", help="no tokens (only on a loopback address)")
    service_flags(p)
    p.set_defaults(func=cmd_api)

    p = sub.add_parser("worker", help="a Celery worker that trains queued runs")
    p.add_argument("--name", help="worker node name")
    p.add_argument("--loglevel", default="INFO")
    service_flags(p)
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("submit", help="queue a run through the REST API")
    p.add_argument("config", help="config file (JSON or YAML) or a preset name")
    p.add_argument("--server", required=True, help="e.g. http://127.0.0.1:8000")
    p.add_argument("--set", action="append", metavar="KEY.PATH=VALUE", help="override a config field")
    p.add_argument("--follow", action="store_true", help="show progress until the run ends")
    p.add_argument("--team", help="the team to queue it in (default: your only team)")
    p.add_argument("--token", help="API token (default: GXNOR_TOKEN)")
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("sweep", help="queue a parameter sweep through the REST API")
    p.add_argument("spec", help="sweep spec file (YAML or JSON: name, base, grid | list | random, seeds, …) "
                   "or preset:NAME (paper-r, paper-a-window, paper-m, paper-n-grid)")
    p.add_argument("--server", required=True, help="e.g. http://127.0.0.1:8000")
    p.add_argument("--set", action="append", metavar="KEY.PATH=VALUE", help="override a field of the base config")
    p.add_argument("--name", help="the sweep's name (default: the spec's, or the preset's)")
    p.add_argument("--follow", action="store_true", help="show progress until every run ends, then the results")
    p.add_argument("--team", help="the team to queue it in (default: your only team)")
    p.add_argument("--token", help="API token (default: GXNOR_TOKEN)")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("token", help="make a new API token directly in the database (server-side admin)")
    p.add_argument("--user", default="admin", help="whose token (default: admin)")
    p.add_argument("--name", dest="token_name", default="cli", help="a label for the token")
    p.add_argument("--expires-in-days", dest="expires_in_days", type=_days, metavar="N",
                   help="the token stops working N days from now (1-3650; default: never)")
    p.add_argument("--admin", action="store_true", help="also make the user an admin (restores admin rights)")
    service_flags(p, data_dir_default=os.environ.get("GXNOR_DATA_DIR", "./gxnor-data"))
    p.set_defaults(func=cmd_token)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
