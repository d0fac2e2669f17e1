"""The ``gxnor`` command line (SPEC §5).

Bad input exits with code 2 and one line naming the problem.
"""

from __future__ import annotations

import argparse
import json
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


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="gxnor", description="GXNOR Lab: gated XNOR networks, trained without hidden weights.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("train", help="train one run locally with a progress bar")
    p.add_argument("config", help="config file (JSON or YAML) or a preset name (quick, mnist-paper, …)")
    p.add_argument("--set", action="append", metavar="KEY.PATH=VALUE", help="override a config field")
    p.add_argument("--out", metavar="DIR", help="output directory (default runs/NAME-TIMESTAMP)")
    p.add_argument("--resume", action="store_true", help="continue from DIR/checkpoint.pt")
    p.set_defaults(func=cmd_train)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
