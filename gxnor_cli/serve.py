"""``gxnor up`` (the whole product on one machine) and ``gxnor api`` (the REST API and UI alone).

``gxnor up`` says how to sign in last, once the API answers and its worker is ready, so that nothing the start
prints pushes the sign-in link off screen (the worker starts quietly: no banner at its WARNING level).
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import sys
import threading

from gxnor_cli.common import datasets_flag, fail, local_data_dir, service_env, service_flags

WORKER_READY_TIMEOUT_S = 300.0


def register(sub) -> None:
    p = sub.add_parser("up", help="the whole product on one machine: API + UI + a local worker")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--no-auth", action="store_true", help="no tokens (only on a loopback address)")
    service_flags(p, data_dir_default=local_data_dir())
    datasets_flag(p)
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("api", help="the REST API and UI (distributed mode)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1, choices=range(1, 65), metavar="N",
                   help="API processes (uvicorn workers; default 1)")
    p.add_argument("--health-port", type=int, default=None, metavar="PORT",
                   help="also answer /healthz on PORT, off the event loop: fast under any load, 503 when the "
                        "process is stuck (for a load balancer's probe; each process of --workers answers)")
    p.add_argument("--no-auth", action="store_true", help="no tokens (only on a loopback address)")
    service_flags(p)
    datasets_flag(p)
    p.set_defaults(func=cmd_api)


class _Refused(Exception):
    pass


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _open_refusal(host: str) -> str | None:
    """Why a server with auth off may not listen on ``host`` (None: a loopback address, it may)."""
    if _is_loopback(host):
        return None
    return (f"refusing to listen on {host} with auth switched off (GXNOR_AUTH=false / --no-auth): "
            "anyone who can reach it could use it. Bind to 127.0.0.1, or leave auth on.")


def _serve_checks(args: argparse.Namespace, settings) -> list[str]:
    """Refuse an open server; migrate; on first start make the admin.  Returns the lines that say how to sign
    in, the link last."""
    if not settings.auth and (refusal := _open_refusal(args.host)):
        raise _Refused(refusal)
    from app.main import prepare_database

    token = prepare_database(settings)
    where = f"http://{'127.0.0.1' if args.host in ('0.0.0.0', '::') else args.host}:{args.port}"
    if not settings.auth:
        return ["GXNOR Lab: auth is off (loopback only): no token needed.", f"  Open: {where}/"]
    if token:
        return ["GXNOR Lab: first start — created user 'admin' (team 'default').",
                f"  API token (shown once; keep it): {token}", f"  Sign in: {where}/#token={token}"]
    return ["GXNOR Lab: sign in with your API token (`gxnor token` makes a new admin token).",
            f"  Sign in: {where}/"]


def cmd_api(args: argparse.Namespace) -> int:
    if args.no_auth and (refusal := _open_refusal(args.host)):  # said before the slow imports (PyTorch)
        return fail(refusal)
    from app import serving
    from app.main import create_app
    from app.settings import Settings

    service_env(args)
    settings = Settings()
    settings.ensure_dirs()  # (a SQLite database needs its directory before the migrations run)
    try:
        print("\n".join(_serve_checks(args, settings)), flush=True)
    except _Refused as exc:
        return fail(str(exc))
    if args.workers > 1:  # each process builds the app from the same GXNOR_* environment
        serving.run("app.main:create_app", workers=args.workers, host=args.host, port=args.port)
    else:
        serving.run(create_app(settings), host=args.host, port=args.port)
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    """API + UI + one local worker on SQLite and a filesystem queue, all under --data-dir."""
    if args.no_auth and (refusal := _open_refusal(args.host)):  # said before the slow imports (PyTorch)
        return fail(refusal)
    import subprocess

    from app import serving
    from app.main import create_app
    from app.settings import Settings
    from app.supervisor import requeue_orphans

    service_env(args)
    settings = Settings()
    settings.ensure_dirs()
    try:
        sign_in = _serve_checks(args, settings)
    except _Refused as exc:
        return fail(str(exc))
    requeue_orphans(settings)
    ready, ready_w = os.pipe()  # the worker writes to it once it takes runs (--ready-fd)
    worker = subprocess.Popen([sys.executable, "-m", "gxnor_cli", "worker", "--loglevel", "WARNING",
                               "--ready-fd", str(ready_w)], env=os.environ.copy(), pass_fds=(ready_w,),
                              start_new_session=True, preexec_fn=_die_with_parent)
    os.close(ready_w)
    lines = [f"GXNOR Lab: http://{args.host}:{args.port}/  (data in {settings.data_dir.resolve()}; "
             f"datasets in {settings.datasets_root})", *sign_in]
    announce = threading.Thread(target=_announce, args=(ready, worker, lines), daemon=True, name="announce")
    try:
        serving.run(create_app(settings), host=args.host, port=args.port, log_level="warning",
                    on_started=announce.start)
    finally:
        worker.send_signal(signal.SIGTERM)  # warm shutdown: a running run checkpoints and goes back to the queue
        try:
            worker.wait(timeout=120)
        except subprocess.TimeoutExpired:
            worker.kill()
    return 0


def _announce(ready: int, worker, lines: list[str]) -> None:
    """Once the API listens (this runs then): wait for the worker to be ready, then print ``lines`` — the sign-in
    link last, after anything the worker printed while starting."""
    try:
        readable, _, _ = select.select([ready], [], [], WORKER_READY_TIMEOUT_S)
        said = os.read(ready, 64) if readable else b""
    finally:
        os.close(ready)
    if not said:
        code = worker.poll()
        state = f"exited (code {code})" if code is not None else "is not ready yet"
        lines = [f"GXNOR Lab: the local worker {state}; runs wait in the queue until a worker takes them.", *lines]
    print("\n".join(lines), flush=True)


def _die_with_parent() -> None:
    """Linux: the local worker gets SIGTERM (a warm shutdown) if `gxnor up` itself is killed."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass
