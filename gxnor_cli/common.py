"""What every command shares: the one-line usage errors (exit 2) and the service flags."""

from __future__ import annotations

import argparse
import os
import sys

EXIT_USAGE = 2


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def fail(message: str) -> int:
    """Print ``gxnor: error: MESSAGE`` as one line on stderr; returns the usage exit code (2)."""
    print(f"gxnor: error: {' '.join(message.split())}", file=sys.stderr)
    return EXIT_USAGE


def service_flags(p: argparse.ArgumentParser, data_dir_default: str | None = None) -> None:
    p.add_argument("--data-dir", dest="data_dir", default=data_dir_default,
                   help="where everything is stored (GXNOR_DATA_DIR)")
    p.add_argument("--database-url", dest="database_url", help="GXNOR_DATABASE_URL (default: SQLite in data dir)")
    p.add_argument("--broker-url", dest="broker_url", help="GXNOR_BROKER_URL (default: files in data dir)")


def datasets_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--datasets-dir", dest="datasets_dir", metavar="DIR",
                   help="where the non-bundled datasets' files are: the same path for the API and every worker "
                        "(GXNOR_DATASETS_DIR; default ~/.cache/gxnor/datasets)")


def local_data_dir() -> str:
    """The data directory of the one-machine commands (``up``, ``token``) when no flag names one."""
    return os.environ.get("GXNOR_DATA_DIR", "./gxnor-data")


def service_env(args: argparse.Namespace) -> None:
    """Flags become GXNOR_* variables, so every part (API, worker) reads one Settings.  Also: what the service
    writes (the SQLite database, checkpoints, queue files) is readable by its own user only (umask 077; the
    data directory itself is made 0700 by Settings.ensure_dirs)."""
    os.umask(0o077)
    for flag, var in (("data_dir", "GXNOR_DATA_DIR"), ("database_url", "GXNOR_DATABASE_URL"),
                      ("broker_url", "GXNOR_BROKER_URL"), ("datasets_dir", "GXNOR_DATASETS_DIR")):
        value = getattr(args, flag, None)
        if value:
            os.environ[var] = str(value)
    if getattr(args, "no_auth", False):
        os.environ["GXNOR_AUTH"] = "false"
    if getattr(args, "health_port", None) is not None:  # the health port listens where the API does
        os.environ["GXNOR_HEALTH_PORT"] = str(args.health_port)
        os.environ["GXNOR_HEALTH_HOST"] = args.host
