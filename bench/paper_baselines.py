"""DST's base rules against latent-weight training and full precision, on one protocol.

    python -m bench.paper_baselines [--seeds 0 1 2 3 4] [--epochs 15] [--limit N] [--device auto] [--out FILE]

The protocol: ``mnist_cnn`` on mnist5k with the base config of the sweep presets
(``gxnor_core.sweeps.PAPER_BASE``: batch 100, the same learning-rate schedule for every variant), 15 epochs,
5 seeds.  Variants (``VARIANTS``): GXNOR (ternary weights and activations) trained by DST with Adam, with the
stateless ``layer_rms`` rule and with plain SGD; the same network with latent weights (TWN quantizer, Adam);
and the full-precision network (Adam).

Per variant: the test error at the epoch of best validation error (mean over seeds and its 95 % t-interval;
the hold-out is 1 000 images, 0.1 point each), the persistent bytes per weight (the run metric
``persistent_bytes_per_weight``) and the epoch-time ratio to full precision (median training-loop seconds per
epoch, evaluation and probes excluded; runs alternate variants seed by seed, so machine noise hits all alike).
Then the two targets, each printed as met or missed with its gap:

- the stateless rule (1 byte per weight) within 0.5 points of Adam-DST;
- Adam-DST within 0.3 points of latent-weight ternary.

``--seeds 0 --epochs 1 --limit 300`` is a smoke test of the whole path in about a minute; anything but the
protocol's settings is labelled "reduced" in the output.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from typing import Any

import torch
from scipy import stats

from gxnor_core import Reporter, train
from gxnor_core.modes import RUN_MODES
from gxnor_core.sweeps import PAPER_BASE

PROTOCOL = {"seeds": [0, 1, 2, 3, 4], "epochs": 15, "limit": None}
_GXNOR = dict(RUN_MODES["gxnor"].fields)
_FP = dict(RUN_MODES["full_precision"].fields)
# name → (dotted overrides of PAPER_BASE); every variant keeps the base's schedule.
VARIANTS: dict[str, dict[str, Any]] = {
    "Adam-DST": {**_GXNOR, "weights.training": "dst", "dst.optimizer": "adam"},
    "layer_rms-DST": {**_GXNOR, "weights.training": "dst", "dst.optimizer": "layer_rms"},
    "SGD-DST": {**_GXNOR, "weights.training": "dst", "dst.optimizer": "sgd"},
    "latent ternary": {**_GXNOR, "weights.training": "latent", "dst.optimizer": "adam"},
    "full precision": {**_FP, "dst.optimizer": "adam"},
}
BASELINE = "full precision"
# (variant, reference, points): the variant's mean test error at most this far above the reference's.
TARGETS = (("layer_rms-DST", "Adam-DST", 0.5), ("Adam-DST", "latent ternary", 0.3))


class _Timing(Reporter):
    """Training-loop seconds of every epoch (samples seen / samples per second)."""

    def __init__(self, batch_size: int):
        self.batch_size, self.train_s = batch_size, []

    def start(self, info):
        self.samples = info["batches_per_epoch"] * self.batch_size

    def epoch(self, metrics, layers, checkpoint):
        self.train_s.append(self.samples / metrics["samples_per_second"])


def config_for(overrides: dict[str, Any], seed: int, epochs: int, limit: int | None, device: str) -> dict:
    """PAPER_BASE with a variant's dotted overrides, the seed and the run length."""
    cfg = json.loads(json.dumps(PAPER_BASE))
    for field, value in {**overrides, "train.seed": seed, "train.epochs": epochs, "train.device": device,
                         "dataset.limit": limit}.items():
        node = cfg
        *path, leaf = field.split(".")
        for key in path:
            node = node.setdefault(key, {})
        node[leaf] = value
    return cfg


def interval95(values: list[float]) -> float | None:
    """Half-width of the 95 % t-interval of the mean (None with fewer than two values)."""
    if len(values) < 2:
        return None
    return stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))


def check_targets(mean_pct: dict[str, float]) -> list[dict]:
    out = []
    for variant, reference, points in TARGETS:
        gap = mean_pct[variant] - mean_pct[reference]
        out.append({"target": f"{variant} within {points} points of {reference}", "gap_points": gap,
                    "limit_points": points, "met": gap <= points})
    return out


def run(seeds: list[int], epochs: int, limit: int | None, device: str = "auto") -> dict:
    """Train every variant for every seed (seed-major, variants alternating); the result as ``main`` prints it."""
    batch = PAPER_BASE["train"]["batch_size"]
    # One short warm-up run per variant (numba compilation, data loading), not counted.
    for overrides in VARIANTS.values():
        train(config_for(overrides, 0, 1, 100, device))
    errors: dict[str, list[float]] = {k: [] for k in VARIANTS}
    epoch_s: dict[str, list[float]] = {k: [] for k in VARIANTS}
    memory: dict[str, float] = {}
    for seed in seeds:
        for name, overrides in VARIANTS.items():
            timing = _Timing(batch)
            summary = train(config_for(overrides, seed, epochs, limit, device), timing)
            errors[name].append(100 * summary["test_error"])
            epoch_s[name] += timing.train_s
            memory[name] = summary["persistent_bytes_per_weight"]
            print(json.dumps({"variant": name, "seed": seed, "test_error_pct": errors[name][-1],
                              "best_epoch": summary["best_epoch"]}), flush=True)
    mean = {k: statistics.fmean(v) for k, v in errors.items()}
    median_s = {k: statistics.median(v) for k, v in epoch_s.items()}
    rows = {k: {"test_error_pct": errors[k], "mean_pct": mean[k], "ci95_pct": interval95(errors[k]),
                "persistent_bytes_per_weight": memory[k], "train_seconds_per_epoch": median_s[k],
                "epoch_time_ratio": median_s[k] / median_s[BASELINE]} for k in VARIANTS}
    reduced = {"seeds": seeds, "epochs": epochs, "limit": limit} != PROTOCOL
    return {"protocol": "reduced" if reduced else "full", "seeds": seeds, "epochs": epochs, "limit": limit,
            "base": PAPER_BASE, "torch_threads": torch.get_num_threads(), "variants": rows,
            "targets": check_targets(mean)}


def table(result: dict) -> list[str]:
    """The result as markdown lines: one row per variant, then the targets."""
    n = len(result["seeds"])
    lines = [f"Protocol: **{result['protocol']}** — {n} seed(s), {result['epochs']} epochs, training limit "
             f"{result['limit'] or 'none'}.", "",
             "| variant | test error % (mean ± 95 % CI) | bytes / weight | epoch time / full precision |",
             "|---|---|---|---|"]
    for name, row in result["variants"].items():
        ci = "–" if row["ci95_pct"] is None else f"{row['ci95_pct']:.2f}"
        lines.append(f"| {name} | {row['mean_pct']:.2f} ± {ci} | {row['persistent_bytes_per_weight']:.2f} | "
                     f"{row['epoch_time_ratio']:.2f} |")
    lines.append("")
    for t in result["targets"]:
        verdict = "met" if t["met"] else "missed"
        lines.append(f"- {t['target']}: **{verdict}** (gap {t['gap_points']:+.2f} points, limit "
                     f"{t['limit_points']})")
    return lines


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=PROTOCOL["seeds"])
    ap.add_argument("--epochs", type=int, default=PROTOCOL["epochs"])
    ap.add_argument("--limit", type=int, default=PROTOCOL["limit"], help="train on at most this many images")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--out", default=None, help="also write the result as JSON here")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    result = run(args.seeds, args.epochs, args.limit, args.device)
    result["wall_seconds"] = time.perf_counter() - t0
    result["command"] = " ".join(["python -m bench.paper_baselines", *(argv if argv is not None else sys.argv[1:])])
    print("\n".join(table(result)))
    print(json.dumps(result, indent=2))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
