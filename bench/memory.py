"""Persistent training state per discrete weight: the integer state plus what the base rule keeps.

    python -m bench.memory [--arch mnist_cnn] [--dataset mnist5k]

Measured on the real tensors after training steps (states + optimiser state of the
discrete weights), for each base rule driving DST.  The reference code keeps a
float32 hidden weight plus Adam's two float32 moments: 12 bytes per weight.
Target: 1 byte per weight with SGD-driven DST (and with the stateless layer_rms rule).
"""

from __future__ import annotations

import argparse
import json

import torch

from gxnor_core import DATASETS, build_model, validate_config
from gxnor_core.dst import OPTIMIZERS, DSTOptimizer
from gxnor_core.train import loss_fn

REFERENCE_BYTES_PER_WEIGHT = 12  # fp32 weight + Adam m and v


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="mnist_cnn")
    ap.add_argument("--dataset", default="mnist5k")
    args = ap.parse_args()
    cfg = validate_config({"dataset": {"name": args.dataset}, "model": {"arch": args.arch}})
    results = {}
    for base in OPTIMIZERS:
        torch.manual_seed(0)
        model = build_model(cfg)
        opt = DSTOptimizer(model, base, 0.01, 3.0, torch.Generator().manual_seed(0))
        x = torch.rand(16, *DATASETS[args.dataset].input_shape) * 2 - 1
        for _ in range(2):
            opt.zero_grad()
            loss_fn("squared_hinge", model(x), torch.randint(0, 10, (16,))).backward()
            opt.step()
        n = sum(m.num_weights for m in model.discrete_layers())
        leftovers = [m for m in model.discrete_layers() if m.value is not None]
        results[base] = {
            "bytes_per_weight": opt.persistent_bytes() / n,
            "vs_reference_code": opt.persistent_bytes() / n / REFERENCE_BYTES_PER_WEIGHT,
            "float_weight_copies_left": len(leftovers),
        }
    print(json.dumps({"discrete_weights": n, "reference_code_bytes_per_weight": 12, "rules": results}, indent=2))


if __name__ == "__main__":
    main()
