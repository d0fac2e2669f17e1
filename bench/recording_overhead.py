"""Recording overhead: a run through the worker (SQL reporter) vs the same run through `gxnor train`.

    python -m bench.recording_overhead [--epochs 4] [--rounds 2] [--database-url URL-of-an-empty-database]

Both paths train the same config with the same seed; the worker path also writes every
epoch (metrics, layer records, checkpoint reference, progress) into SQL — SQLite in a
temporary data directory unless --database-url is given — and publishes progress every
second.  The figure is wall time per epoch of the whole run, alternating the two paths
so machine noise hits both alike.  Target: ≤ 3 % extra.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from app.db import migrate, session_scope
from app.runs import create_run, default_team_id
from app.settings import Settings
from gxnor_core import train, validate_config
from gxnor_core.reporters import DirectoryReporter
from worker.runner import execute_run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--database-url", default=None)
    args = ap.parse_args()
    config = validate_config({"name": "overhead", "dataset": {"name": "mnist5k"}, "model": {"arch": "mnist_cnn"},
                              "train": {"epochs": args.epochs, "device": "cpu"}})
    tmp = Path(tempfile.mkdtemp(prefix="gxnor-overhead-"))
    settings = Settings(data_dir=tmp / "data", database_url=args.database_url)
    settings.ensure_dirs()
    migrate(settings.db_url)
    train({**config.model_dump(), "train": {**config.train.model_dump(), "epochs": 1}})  # warm-up (numba, data)

    per_epoch: dict[str, list[float]] = {"gxnor_train": [], "worker": []}
    for r in range(args.rounds):
        t0 = time.perf_counter()
        train(config, DirectoryReporter(tmp / f"cli-{r}"))
        per_epoch["gxnor_train"].append((time.perf_counter() - t0) / args.epochs)

        with session_scope(settings.db_url) as s:
            run_id = create_run(s, config, default_team_id(s)).id
        t0 = time.perf_counter()
        assert execute_run(run_id, settings) == "succeeded"
        per_epoch["worker"].append((time.perf_counter() - t0) / args.epochs)

    med = {k: statistics.median(v) for k, v in per_epoch.items()}
    print(json.dumps({
        "database": settings.db_url.split(":")[0],
        "seconds_per_epoch": per_epoch,
        "median_seconds_per_epoch": med,
        "extra_pct": 100 * (med["worker"] / med["gxnor_train"] - 1),
        "target_extra_pct": 3,
    }, indent=2))


if __name__ == "__main__":
    main()
