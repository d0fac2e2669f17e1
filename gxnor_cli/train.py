"""``gxnor train``: one run locally, with a progress bar, into a run directory."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

from gxnor_cli.common import fail


def register(sub) -> None:
    p = sub.add_parser("train", help="train one run locally with a progress bar")
    p.add_argument("config", help="config file (JSON or YAML) or a preset name (quick, mnist-paper, …)")
    p.add_argument("--set", action="append", metavar="KEY.PATH=VALUE", help="override a config field")
    p.add_argument("--out", metavar="DIR", help="output directory (default runs/NAME-TIMESTAMP)")
    p.add_argument("--resume", action="store_true", help="continue from DIR/checkpoint.pt")
    p.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from gxnor_core import DatasetError, FieldError, apply_overrides, check_fits_dataset, train, validate_config
    from gxnor_core.config import load_config_file
    from gxnor_core.models import model_size
    from gxnor_core.reporters import DirectoryReporter

    try:
        cfg = validate_config(apply_overrides(load_config_file(args.config), args.set or []))
        check_fits_dataset(cfg)  # a batch larger than the training split
        model_size(cfg)  # a network the dataset's inputs are too small for
    except FieldError as exc:
        return fail(str(exc))
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
        return fail(f"--out {out}: {exc.strerror}")

    def _interrupt(signum, frame):  # Ctrl-C: stop between batches, keep what was recorded
        reporter.stop_requested = True

    previous = signal.signal(signal.SIGINT, _interrupt)
    try:
        summary = train(cfg, reporter)
    except (DatasetError, FileNotFoundError) as exc:
        return fail(str(exc))
    finally:
        signal.signal(signal.SIGINT, previous)
        if reporter.bar is not None:
            reporter.bar.close()
    reporter.finish(summary)
    print(json.dumps({"out": str(out), **summary}, indent=2, default=str))
    return 0 if summary["status"] == "succeeded" else 130
