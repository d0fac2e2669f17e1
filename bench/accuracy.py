"""Accuracy of GXNOR (ternary weights and activations) vs its full-precision baseline.

    python -m bench.accuracy [--epochs 15] [--seeds 0] [--dataset mnist5k] [--arch mnist_cnn]

Same network, data, optimiser, schedule and epochs; the figure is the test error at
the epoch of best validation error, and the gap GXNOR - baseline in points.
Target gap ≤ 1.5 points (mnist_cnn on mnist5k).
"""

from __future__ import annotations

import argparse
import json
import statistics

from gxnor_core import train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--dataset", default="mnist5k")
    ap.add_argument("--arch", default="mnist_cnn")
    args = ap.parse_args()
    base = {
        "dataset": {"name": args.dataset},
        "model": {"arch": args.arch},
        "train": {"epochs": args.epochs, "batch_size": 100, "lr": 0.01, "lr_final": 0.001},
    }
    variants = {
        "gxnor": base,
        "full_precision": {**base, "weights": {"discrete": False}, "activations": {"discrete": False}},
    }
    errors: dict[str, list[float]] = {k: [] for k in variants}
    for seed in args.seeds:
        for name, cfg in variants.items():
            summary = train({**cfg, "train": {**cfg["train"], "seed": seed}})
            errors[name].append(100 * summary["test_error"])
            print(json.dumps({"variant": name, "seed": seed, "test_error_pct": errors[name][-1]}), flush=True)
    mean = {k: statistics.mean(v) for k, v in errors.items()}
    print(json.dumps({
        "test_error_pct": errors,
        "mean_test_error_pct": mean,
        "gap_points": mean["gxnor"] - mean["full_precision"],
        "target_gap_points": 1.5,
    }, indent=2))


if __name__ == "__main__":
    main()
