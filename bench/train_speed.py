"""Epoch time of GXNOR vs its full-precision baseline, same network, same data, one process.

    python -m bench.train_speed [--epochs 3] [--rounds 3] [--arch mnist_cnn] [--dataset mnist5k] [--threads N]
                                [--phases STEPS]

Three variants: GXNOR with the XNOR layers' forward on the integer kernels (``train.integer_forward: on``,
the CPU default), the same GXNOR network with the float forward (``off``), and the full-precision baseline.
Runs alternate (GXNOR, GXNOR float, baseline, GXNOR, …) so machine noise hits all alike; the figure is the
median training-loop time per epoch (evaluation and probes excluded, they are reported separately), and
the ratios GXNOR / baseline (target ≤ 0.9) and integer / float forward, and the kernel the integer forward
measured fastest for each XNOR layer's shape (``integer_forward.measured``).  ``--threads`` sets PyTorch's (and
numba's) thread count; the load average before and after is printed, as the figures mean little without it.

``--phases STEPS`` adds one step timed phase by phase — forward with the loss, ``zero_grad`` + backward, the
optimizer's step — for each variant, the variants taking turns every step (in an order that rotates), medians
over STEPS steps after ten untimed ones, and their step ratio GXNOR / full precision.  On a host whose speed
drifts over seconds this ratio is steadier than the epochs' (docs/BENCHMARKS.md, session 15): the variants
alternate every few milliseconds instead of every epoch.  With them, the mean time a step spent in the OS kernel
and its minor page faults (``gxnor_core._malloc``: glibc now keeps freed memory; in a process that had not
evaluated yet, GXNOR's steps took ≈ 500 faults and 1.4 ms in the kernel each without it).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import time

import torch

from gxnor_core import Reporter, integer_forward, kernels, load_dataset, train, validate_config
from gxnor_core._malloc import keep_freed_memory
from gxnor_core.train import loss_fn, model_and_optimizer

WARMUP_STEPS = 10  # untimed steps of each variant before ``step_phases`` times any


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


def step_phases(variants: dict[str, dict], steps: int) -> dict[str, dict[str, float]]:
    """Per variant, the median ms of each phase of a training step and of the whole step (its phases' sum, median
    over steps), and the mean per step of the process's time in the OS kernel (ms, all threads, as the OS
    samples it) and of its minor page faults (a count, though under ``step_phases_ms``): the
    variants built as ``train`` builds them (seed, integer forward, DST over the base rule, glibc keeping freed
    memory) and stepped in turns, the order rotating every step, over the training split's batches in a seeded
    order."""
    keep_freed_memory()  # as ``train`` does
    nets = {}
    for name, config in variants.items():
        cfg = validate_config(config)
        data = load_dataset(cfg.dataset)
        gen_dst = torch.Generator().manual_seed(cfg.train.seed + 1)
        model, opt = model_and_optimizer(cfg, data.input_shape, "cpu", gen_dst)
        model.train()
        order = torch.randperm(data.train_x.shape[0], generator=torch.Generator().manual_seed(cfg.train.seed))
        nets[name] = (cfg, model, opt, data, order)
    times = {name: [] for name in nets}
    names = list(nets)
    for i in range(WARMUP_STEPS + steps):
        for name in names[i % len(names):] + names[:i % len(names)]:
            cfg, model, opt, data, order = nets[name]
            bs = cfg.train.batch_size
            b = i % max(1, data.train_x.shape[0] // bs)
            idx = order[b * bs:(b + 1) * bs]
            xb, yb = data.train_x[idx], data.train_y[idx]
            use0 = resource.getrusage(resource.RUSAGE_SELF)
            t0 = time.perf_counter()
            loss = loss_fn(cfg.train.loss, model(xb), yb)
            t1 = time.perf_counter()
            opt.zero_grad()
            loss.backward()
            t2 = time.perf_counter()
            opt.step()
            t3 = time.perf_counter()
            use1 = resource.getrusage(resource.RUSAGE_SELF)
            if i >= WARMUP_STEPS:
                times[name].append((t1 - t0, t2 - t1, t3 - t2, use1.ru_stime - use0.ru_stime,
                                    use1.ru_minflt - use0.ru_minflt))
    return {name: {**{phase: 1e3 * statistics.median(t[k] for t in rows)
                      for k, phase in enumerate(("forward", "backward", "optimizer"))},
                   "step": 1e3 * statistics.median(sum(t[:3]) for t in rows),
                   "kernel_ms_mean": 1e3 * statistics.mean(t[3] for t in rows),
                   "page_faults_mean": statistics.mean(t[4] for t in rows)}
            for name, rows in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--arch", default="mnist_cnn")
    ap.add_argument("--dataset", default="mnist5k")
    ap.add_argument("--optimizer", default="adam")
    ap.add_argument("--threads", type=int, default=None, help="torch/numba threads (default: torch's)")
    ap.add_argument("--phases", type=int, default=0, metavar="STEPS",
                    help="also time STEPS training steps phase by phase, the variants taking turns every step")
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
        **({"step_phases_ms": (phases := step_phases(variants, args.phases)),
            "ratio_step": phases["gxnor"]["step"] / phases["full_precision"]["step"]} if args.phases > 0 else {}),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
