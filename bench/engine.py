"""The integer engine (docs/EXPORT.md) against PyTorch fp32 on this CPU, every ratio measured in one run.

    python -m bench.engine [--repeats 5] [--batches 1,64] [--archs mnist_cnn,cifar_vgg] [--threads N] [--json]

1. Kernels: every ternary × ternary product of ``mnist_cnn`` and ``cifar_vgg`` (the paper's widths; a
   convolution as its im2col product, rows = batch × output pixels) at each batch size, timed as fp32
   ``F.linear``, ``popcount`` (packing the activations included), ``int8`` (``torch._int_mm``) and ``onednn``
   (oneDNN's int8 inner product, the weights reordered beforehand as the engine does once per model); the ratio
   is fp32 time / kernel time, and which kernel the engine measured fastest for that layer and batch on the
   end-to-end input (``Engine(tune=True)``, the default; the fixed rule ``kernels.choose``'s pick is in
   ``--json``).  Targets: ≥ 8× at batch 64, ≥ 10× at batch 1.
2. End to end: the exported network on the engine against the same GXNOR model in eager PyTorch and against
   its full-precision twin (ReLU, float weights) in eager PyTorch, per batch — both with PyTorch's own
   ``nn.MaxPool2d`` (stock PyTorch; the product's networks pool with ``gxnor_core.pooling.MaxPool2x2``, whose
   twin is timed too, as ``fp32_fast_pool``) — and against ``torch.compile`` of the stock twin where it
   compiles on this machine (compilation excluded; the reason is reported where it does not).  Target
   (``mnist_cnn``, the first layer in float): ≥ 4× the full-precision twin at batch 64; with the engine's
   8-bit first layer (``Engine(..., first_layer="int8")``, judged by test error, not equality; here the share
   of the batch whose prediction equals the model's): ≥ 5×.  The engine with the fixed kernel rule
   (``tune=False``) is timed beside the default (kernels measured per machine), and the measuring's one-time
   cost reported.
3. Size at rest: the ``.gxn`` file against the full-precision twin's fp32 state dict (``torch.save``).
   Target ≤ 1/18.

Kernels: medians of ``--repeats`` samples each, a sample one call or, for a call under 1 ms, the mean of
enough back-to-back calls to last 1 ms (``median_time``).  End to end: medians of ``--repeats`` timings after
a warm-up, engine and PyTorch alternating — in a new random order every repeat: each function meets the caches
the one before it left (one engine right after another finds its code warm), and a fixed or rotated order
would favour the same function every time.  All in one process with PyTorch's thread count (``--threads``;
numba's follows it).  On a machine shared with other work, one thread gives steadier ratios: two threads wait
at every parallel region's barrier for a descheduled partner.  The networks have random weight states and
BatchNorm statistics taken from their inputs (digits of mnist5k for ``mnist_cnn``, uniform 8-bit noise for
``cifar_vgg``), so about a third of the activations are zero, as in trained networks.
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import random
import statistics
import time
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F

from gxnor_core import build_model, load_dataset, validate_config
from gxnor_core.data import DATASETS
from gxnor_core.engine import Engine
from gxnor_core.export import export_model
from gxnor_core.kernels import KERNELS, TernaryMatrix, choose, cpu_features, fast_int8, onednn_int8, tiles
from gxnor_core.pooling import MaxPool2x2

CONFIGS = {"mnist_cnn": {"dataset": {"name": "mnist5k"}, "model": {"arch": "mnist_cnn"}},
           "cifar_vgg": {"dataset": {"name": "cifar10"}, "model": {"arch": "cifar_vgg"}}}
FAST = ("popcount", "int8", "onednn")  # the kernels timed (``portable`` is a reference, not a contender)
MAX_ROWS = 1 << 16  # rows timed per product (a cifar_vgg batch of 64 has exactly this many in conv1–2)


SAMPLE_S = 1e-3  # a product's timing sample lasts at least this long (back-to-back calls, averaged)


def median_time(fn, repeats: int, sample_s: float = SAMPLE_S) -> float:
    """Median seconds per call of ``fn`` over ``repeats`` samples, after a warm-up call; a sample is one call, or
    for a call shorter than ``sample_s`` the mean of as many back-to-back calls as last that long (timeit's
    way): a single call of a few µs — a batch-1 or an output layer's product — timed the host's jitter and a
    cold start more than the product (docs/BENCHMARKS.md, session 15)."""
    fn()
    calls = 1
    while calls < 10_000:  # double the calls until a batch of them lasts a sample (one stalled call can't decide)
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        if time.perf_counter() - t0 >= sample_s:
            break
        calls *= 2
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - t0) / calls)
    return statistics.median(times)


def calibrated(config: dict, inputs: torch.Tensor, seed: int = 0):
    """The GXNOR network of config with random states, its BatchNorm statistics averaged over ``inputs``."""
    cfg = validate_config(config)
    model = build_model(cfg)
    g = torch.Generator().manual_seed(seed)
    for layer in model.discrete_layers():
        layer.state.copy_(torch.randint(0, layer.space.num_states, layer.state.shape, generator=g))
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.momentum = None  # a cumulative average over the calibration batches
    model.train()
    with torch.no_grad():
        for chunk in inputs.split(100):
            model(chunk)
    return cfg, model.eval()


def product_shapes(model, input_shape, batch: int) -> list[tuple[str, int, int, int]]:
    """(layer, rows, inputs, outputs) of each XNOR layer's product for a batch."""
    shapes, names = [], list(model.blocks)
    hooks = [model.blocks[n][0].register_forward_hook(
        lambda m, i, o, n=n: shapes.append((n, o[0].numel() // o.shape[1] if o.dim() == 4 else 1,
                                            int(np.prod(m.state.shape[1:])), m.state.shape[0])))
        for n in names[1:]]
    with torch.no_grad():
        model(torch.zeros(1, *input_shape))
    for h in hooks:
        h.remove()
    return [(n, min(rows * batch, MAX_ROWS), k, o) for n, rows, k, o in shapes]


def kernel_table(model, input_shape, batch: int, repeats: int, engine_choice: dict) -> list[dict]:
    rng = np.random.default_rng(0)
    rows_out = []
    for name, rows, k, outs in product_shapes(model, input_shape, batch):
        x = rng.integers(-1, 2, (rows, k)).astype(np.int8)
        x[rng.random(x.shape) < 0.35] = 0
        w = rng.integers(-1, 2, (outs, k)).astype(np.int8)
        matrix = TernaryMatrix.of(w)
        xf, wf = torch.from_numpy(x).float(), torch.from_numpy(w).float()
        t = {"fp32": median_time(partial(F.linear, xf, wf), repeats)}
        if onednn_int8():
            _ = matrix.onednn_packed  # reordered once, as the engine does when it loads a model
        for kernel in FAST:
            t[kernel] = median_time(partial(KERNELS[kernel], x, matrix), repeats)
        best = min(FAST, key=t.get)
        # the kernel the engine measured fastest for this layer and batch on the end-to-end input (a convolution's
        # ``onednn`` there runs on the image itself, without the im2col timed here), and the fixed rule's
        chosen = engine_choice[batch][name]
        rule = choose(rows, k, outs, int8=fast_int8(), onednn=onednn_int8(), conv=name.startswith("conv"))
        rows_out.append({"layer": name, "batch": batch, "rows": rows, "inputs": k, "outputs": outs,
                         "fp32_ms": 1e3 * t["fp32"], **{f"{kernel}_x": t["fp32"] / t[kernel] for kernel in FAST},
                         "best": best, "chosen": chosen, "chosen_x": t["fp32"] / t[chosen], "rule": rule})
    return rows_out


def stock(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``model`` pooling with PyTorch's ``nn.MaxPool2d(2)`` (same values) instead of ``MaxPool2x2``."""
    model = copy.deepcopy(model)
    for block in model.blocks.values():
        for i, module in enumerate(block):
            if isinstance(module, MaxPool2x2):
                block[i] = torch.nn.MaxPool2d(2)
    return model


def compiled(model: torch.nn.Module, x: torch.Tensor):
    """``torch.compile(model)``, compiled by one call on ``x``; or the reason it does not compile here."""
    try:
        torch._dynamo.reset()  # a graph for this batch size, not one recompiled with a dynamic batch
        fn = torch.compile(model, dynamic=False)
        fn(x)
        return fn
    except Exception as exc:  # noqa: BLE001 - a missing compiler, an unsupported op: reported, not fatal
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"


def end_to_end(arch: str, batches: list[int], repeats: int, compile_float: bool = True) -> dict:
    config = CONFIGS[arch]
    shape = DATASETS[config["dataset"]["name"]].input_shape
    if arch == "mnist_cnn":
        inputs = load_dataset(validate_config({"dataset": {"name": "mnist5k"}}).dataset).test_x[:640]
    else:
        pixels = torch.randint(0, 256, (640, *shape), generator=torch.Generator().manual_seed(0))
        inputs = pixels.to(torch.float32) * (2 / 255) - 1  # 8-bit noise, scaled as the datasets scale images
    cfg, model = calibrated(config, inputs[:300])
    blob = export_model(model, cfg, shape)
    engine = Engine(blob)
    engine8 = Engine(blob, first_layer="int8")
    engine_rule = Engine(blob, tune=False)  # the fixed rule ``kernels.choose`` instead of measuring
    fast_full = build_model(validate_config({**config, "weights": {"discrete": False},
                                             "activations": {"discrete": False}})).eval()
    full, model = stock(fast_full), stock(model)
    buf = io.BytesIO()
    torch.save(full.state_dict(), buf)
    out = {"arch": arch, "gxn_bytes": len(blob), "fp32_state_dict_bytes": buf.tell(),
           "size_ratio": len(blob) / buf.tell(), "batches": []}
    with torch.no_grad():
        for batch in batches:
            x = inputs[:batch].contiguous()
            first = engine.run(x)  # the first batch of this size: the kernels are measured
            assert torch.equal(first.logits, model(x))  # the engine's answer is the model's
            tuning_s = first.tuning_seconds
            runs = {"engine": partial(engine, x), "engine_rule": partial(engine_rule, x),
                    "engine_8bit": partial(engine8, x),
                    "gxnor_eager": partial(model, x), "fp32_eager": partial(full, x),
                    "fp32_fast_pool": partial(fast_full, x)}
            fn = compiled(full, x) if compile_float else "not asked (--no-compile)"
            if callable(fn):
                runs["fp32_compiled"] = partial(fn, x)
            else:
                out.setdefault("compile_error", {})[batch] = fn
            times = {key: [] for key in runs}
            for fn in runs.values():
                fn()
            keys, order = list(runs), random.Random(batch)
            for _ in range(repeats):  # a new order every repeat: the caches each function meets are whatever
                order.shuffle(keys)  # the one before it left, and a fixed order would favour the same ones
                for key in keys:
                    t0 = time.perf_counter()
                    runs[key]()
                    times[key].append(time.perf_counter() - t0)
            med = {k: statistics.median(v) for k, v in times.items()}
            sparsity = float(np.mean([(t == 0).mean() for t in engine.run(x, trace=True).trits.values()]))
            out["batches"].append({"batch": batch, **{f"{k}_ms": 1e3 * v for k, v in med.items()},
                                   "vs_fp32_eager": med["fp32_eager"] / med["engine"],
                                   "vs_fp32_fast_pool": med["fp32_fast_pool"] / med["engine"],
                                   **({"vs_fp32_compiled": med["fp32_compiled"] / med["engine"]}
                                      if "fp32_compiled" in med else {}),
                                   "vs_gxnor_eager": med["gxnor_eager"] / med["engine"],
                                   "rule_vs_measured": med["engine_rule"] / med["engine"],
                                   "kernel_tuning_ms": 1e3 * tuning_s,
                                   "rule_kernels": engine_rule.run(x).kernels,
                                   "8bit_vs_fp32_eager": med["fp32_eager"] / med["engine_8bit"],
                                   "8bit_agrees": float((engine8(x).argmax(1) == model(x).argmax(1)).float().mean()),
                                   "activation_sparsity": sparsity,
                                   "kernels": engine.run(x).kernels})
    return out, model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batches", default="1,64")
    ap.add_argument("--archs", default="mnist_cnn,cifar_vgg")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads(), help="PyTorch's (and numba's) threads")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile baseline")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    batches = [int(b) for b in args.batches.split(",")]
    report = {"threads": torch.get_num_threads(), "cpu": cpu_features(), "popcount_tiles": tiles(), "archs": []}
    for arch in args.archs.split(","):
        e2e, model = end_to_end(arch, batches, args.repeats, not args.no_compile)
        shape = DATASETS[CONFIGS[arch]["dataset"]["name"]].input_shape
        choice = {b["batch"]: b["kernels"] for b in e2e["batches"]}
        e2e["kernels"] = [row for b in batches for row in kernel_table(model, shape, b, args.repeats, choice)]
        report["archs"].append(e2e)
        if not args.json:
            _print(e2e)
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print(f"threads {report['threads']}, popcount tiles {report['popcount_tiles']}, CPU {report['cpu']}")


def _print(r: dict) -> None:
    print(f"\n{r['arch']}: size at rest {r['gxn_bytes']:,} B vs fp32 state dict {r['fp32_state_dict_bytes']:,} B "
          f"= 1/{1 / r['size_ratio']:.1f}")
    print("  kernels (ratio = fp32 F.linear time / kernel time)")
    print(f"  {'layer':6} {'batch':>5} {'rows':>6} {'in':>5} {'out':>5} {'fp32 ms':>8} {'popcount':>9} "
          f"{'int8':>6} {'onednn':>7}  the engine's measured choice")
    for k in r["kernels"]:
        mark = "" if k["chosen"] == k["best"] else f"  (best here: {k['best']})"
        print(f"  {k['layer']:6} {k['batch']:5} {k['rows']:6} {k['inputs']:5} {k['outputs']:5} {k['fp32_ms']:8.3f} "
              f"{k['popcount_x']:8.1f}× {k['int8_x']:5.1f}× {k['onednn_x']:6.1f}×  {k['chosen']} "
              f"{k['chosen_x']:.1f}×{mark}")
    print("  end to end (ms per batch; ratio = PyTorch time / engine time)")
    for b in r["batches"]:
        print(f"  batch {b['batch']:3}: engine {b['engine_ms']:.3f}  GXNOR eager {b['gxnor_eager_ms']:.3f} "
              f"({b['vs_gxnor_eager']:.1f}×)  fp32 eager {b['fp32_eager_ms']:.3f} ({b['vs_fp32_eager']:.1f}×)  "
              f"fp32 with MaxPool2x2 {b['fp32_fast_pool_ms']:.3f} ({b['vs_fp32_fast_pool']:.1f}×)  "
              + (f"fp32 torch.compile {b['fp32_compiled_ms']:.3f} ({b['vs_fp32_compiled']:.1f}×)  "
                 if "fp32_compiled_ms" in b else "")
              + f"activation sparsity {b['activation_sparsity']:.2f}")
        print(f"             kernels by the fixed rule (tune=False): engine {b['engine_rule_ms']:.3f} "
              f"({b['rule_vs_measured']:.2f}× the measured choice's time); measuring them took "
              f"{b['kernel_tuning_ms']:.0f} ms once")
        print(f"             8-bit first layer: engine {b['engine_8bit_ms']:.3f} ({b['8bit_vs_fp32_eager']:.1f}× fp32 "
              f"eager), predictions equal to the model's on {100 * b['8bit_agrees']:.1f} % of the batch")
    if "compile_error" in r:
        for batch, error in r["compile_error"].items():
            print(f"  torch.compile of the fp32 twin did not run at batch {batch}: {error}")


if __name__ == "__main__":
    main()
