"""``gxnor infer``: score inputs with an exported ``.gxn`` model on the integer engine (docs/EXPORT.md).

INPUT.npy holds float inputs preprocessed as the model was trained (docs/METHOD.md §5): N×C×H×W, N×(C·H·W),
or one C×H×W sample.  With ``-o LOGITS.npy`` the logits (float32, N × classes) are written there; either way
one JSON line says the predicted classes, the time taken and the gate events executed per sample.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

from gxnor_cli.common import fail


def register(sub) -> None:
    p = sub.add_parser("infer", help="score a .npy batch with an exported .gxn model on the integer engine")
    p.add_argument("model", metavar="MODEL.gxn", help="a model written by gxnor export")
    p.add_argument("input", metavar="INPUT.npy", help="float inputs: N×C×H×W, N×features, or one C×H×W sample")
    p.add_argument("-o", "--out", metavar="LOGITS.npy", help="write the logits (float32, N × classes) here")
    p.add_argument("--kernel", metavar="NAME",
                   help="run every XNOR layer on this kernel: popcount, int8, onednn or portable (default: chosen per "
                        "layer shape; docs/EXPORT.md, \"Kernels\")")
    p.add_argument("--first-layer", choices=("float", "int8"), default="float",
                   help="the real-input first layer: float (the model's own ops, exact; default) or int8 (on 8-bit "
                        "pixels, in integers: faster, judged by test error; docs/EXPORT.md, \"The 8-bit first "
                        "layer\")")
    p.set_defaults(func=cmd_infer)


def cmd_infer(args: argparse.Namespace) -> int:
    try:  # read first: a mistyped name is answered at once, not after PyTorch has loaded (seconds)
        model = Path(args.model).read_bytes()
    except OSError as exc:
        return fail(f"{args.model}: {exc.strerror}")

    import numpy as np
    import torch

    from gxnor_core.engine import Engine
    from gxnor_core.export import FormatError

    try:
        engine = Engine(model, kernel=args.kernel, first_layer=args.first_layer)
    except FormatError as exc:
        return fail(f"{args.model}: {exc}")
    except ValueError as exc:  # an unknown --kernel (or GXNOR_ENGINE_KERNEL)
        return fail(str(exc))
    try:
        x = np.load(args.input, allow_pickle=False)
    except OSError as exc:
        return fail(f"{args.input}: {exc.strerror or exc}")
    except ValueError as exc:
        return fail(f"{args.input}: not a .npy array of numbers ({exc})")
    shape = engine.input_shape
    if x.dtype.kind not in "fiu":
        return fail(f"{args.input}: holds {x.dtype} values; the model takes real numbers")
    if tuple(x.shape) == shape:
        x = x[None]
    if x.ndim < 2 or (tuple(x.shape[1:]) != shape and x.shape[1:] != (math.prod(shape),)) or x.shape[0] == 0:
        wanted = "×".join(map(str, shape))
        return fail(f"{args.input}: shape {'×'.join(map(str, x.shape))}; this model takes N×{wanted} "
                    f"(or N×{math.prod(shape)}, or one {wanted} sample)")
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        return fail(f"{args.input}: holds NaN or infinite values")
    t0 = time.perf_counter()
    result = engine.run(torch.from_numpy(x))
    seconds = time.perf_counter() - t0 - result.tuning_seconds  # the kernels' first-time measuring left out
    logits = result.logits.numpy()
    report = {"samples": int(x.shape[0]), "predictions": logits.argmax(1).tolist(), "seconds": round(seconds, 6),
              "kernel_tuning_seconds": round(result.tuning_seconds, 6),
              "events_per_sample": {k: v / x.shape[0] for k, v in result.events.items()},
              "kernels": result.kernels, "first_layer": args.first_layer}
    if args.out:
        out = Path(args.out)
        tmp = out.with_name(out.name + ".tmp.npy")
        try:
            np.save(tmp, logits)
            os.replace(tmp, out)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            return fail(f"-o {args.out}: {exc.strerror}")
        report["logits"] = str(out)
    else:
        report["logits"] = logits.tolist()
    print(json.dumps(report))
    return 0
