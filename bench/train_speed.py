"""Epoch time of GXNOR vs its full-precision baseline, same network, same data, one process.

    python -m bench.train_speed [--epochs 3] [--rounds 3] [--arch mnist_cnn] [--dataset mnist5k] [--threads N]

Three variants: GXNOR with the XNOR layers' forward on the integer kernels (``train.integer_forward: on``,
the CPU default), the same GXNOR network with the float forward (``off``), and the full-precision baseline.
Runs alternate (GXNOR, GXNOR float, baseline, GXNOR, …) so machine noise hits all alike; the figure is the
median training-loop time per epoch (evaluation and probes excluded, they are reported separately), and
the ratios GXNOR / baseline (target ≤ 0.9) and integer / float forward, and the kernel the integer forward
measured fastest for each XNOR layer's shape (``integer_forward.measured``).  ``--threads`` sets PyTorch's (and
numba's) thread count; the load average before and after is printed, as the figures mean little without it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics

import torch

from gxnor_core import Reporter, integer_forward, kernels, train


class _Times(Reporter):
    """Collects the training-loop seconds (samples / samples-per-second) of every epoch."""

    def __init__(self, batch_size: int = 100):
        self.batch_size = batch_size
        self.train_s, self.epoch_s = [], []

    def epoch(self, metrics, layers, checkpoint):
        self.train_s.append(self.samples / metrics["samples_per_second"])
        self.epoch_s.append(metrics["epoch_seconds"])

    def start(self, info):
        self.samples = info["batches_per_epoch"] * self.batch_size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--arch", default="mnist_cnn")
    ap.add_argument("--dataset", default="mnist5k")
    ap.add_argument("--optimizer", default="adam")
    ap.add_argument("--threads", type=int, default=None, help="torch/numba threads (default: torch's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    base = {
        "dataset": {"name": args.dataset},
        "model": {"arch": args.arch},
        "dst": {"optimizer": args.optimizer},
        "train": {"epochs": args.epochs, "batch_size": 100, "device": "cpu"},
    }
    variants = {
        "gxnor": {**base, "train": {**base["train"], "integer_forward": "on"}},
        "gxnor_float_forward": {**base, "train": {**base["train"], "integer_forward": "off"}},
        "full_precision": {**base, "weights": {"discrete": False}, "activations": {"discrete": False}},
    }
    times = {k: _Times() for k in variants}
    # One warm-up epoch of each (numba compilation, allocator), not counted.
    for cfg in variants.values():
        train({**cfg, "train": {**cfg["train"], "epochs": 1}}, _Times())
    for _ in range(args.rounds):
        for name, cfg in variants.items():
            train(cfg, times[name])
    med = {k: statistics.median(t.train_s) for k, t in times.items()}
    med_epoch = {k: statistics.median(t.epoch_s) for k, t in times.items()}
    result = {
        "torch_threads": torch.get_num_threads(),
        "epochs_measured": {k: len(t.train_s) for k, t in times.items()},
        "train_seconds_per_epoch_median": med,
        "whole_epoch_seconds_median": med_epoch,
        "ratio_train": med["gxnor"] / med["full_precision"],
        "ratio_whole_epoch": med_epoch["gxnor"] / med_epoch["full_precision"],
        "ratio_train_float_forward": med["gxnor_float_forward"] / med["full_precision"],
        "ratio_train_integer_vs_float_forward": med["gxnor"] / med["gxnor_float_forward"],
        "target_ratio": 0.9,
        "popcount_tiles": kernels.tiles(),
        # the kernel each XNOR layer's training forward measured fastest, per shape (ms of each candidate)
        "integer_forward_kernels": {" ".join(map(str, key)): {"chosen": min(t, key=t.get),
                                                              **{k: round(1e3 * v, 3) for k, v in t.items()}}
                                    for key, t in integer_forward.measured.items()},
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
