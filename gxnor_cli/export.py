"""``gxnor export``: a trained network as a ``.gxn`` model file (docs/EXPORT.md) — from a run on a server (its
checkpoint downloaded through the REST API) or from a local checkpoint or run directory.

SOURCE is a checkpoint file, a ``gxnor train`` run directory (its ``best.pt``, or with ``--which latest`` its
``checkpoint.pt``), or a run id with ``--server`` (the run's best-validation model by default).  Bad input —
a missing or unreadable file, a network the format cannot hold, a refused request — exits 2 with one line.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from gxnor_cli.common import fail

DIRECTORY_FILES = {"best": "best.pt", "latest": "checkpoint.pt"}


def register(sub) -> None:
    p = sub.add_parser("export", help="write a trained network as a packed .gxn model file")
    p.add_argument("source", metavar="RUN_ID|CHECKPOINT",
                   help="a run id (with --server), a checkpoint file, or a gxnor train run directory")
    p.add_argument("-o", "--out", required=True, metavar="MODEL.gxn", help="the model file to write")
    p.add_argument("--which", choices=("best", "latest"),
                   help="best: the best-validation epoch's model (default); latest: the last epoch's checkpoint "
                        "(for a run id or a run directory)")
    p.add_argument("--server", help="the API that holds the run, e.g. http://127.0.0.1:8000")
    p.add_argument("--token", help="API token (default: GXNOR_TOKEN)")
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    which = args.which or "best"
    path = Path(args.source)
    if path.is_dir():
        path = path / DIRECTORY_FILES[which]
        if not path.is_file():
            return fail(f"{args.source}: no {path.name} in this run directory")
    if path.is_file():
        if args.which and path.name not in DIRECTORY_FILES.values():
            return fail("--which chooses a run's checkpoint; a checkpoint file is exported as it is")
        try:
            checkpoint, source = path.read_bytes(), {"checkpoint": path.name}
        except OSError as exc:
            return fail(f"{args.source}: {exc.strerror}")
    elif args.source.isdigit():
        if not args.server:
            return fail(f"{args.source} is not a file; to export run {args.source}, name its server with --server")
        fetched = _download(args, int(args.source), which)
        if isinstance(fetched, int):
            return fetched
        checkpoint, source = fetched, {"run_id": int(args.source), "which": which}
    else:
        return fail(f"{args.source}: no such file or run directory (nor a run id)")

    # (only now: a mistyped source is answered at once, not after PyTorch has loaded)
    from gxnor_core.export import ExportError, FormatError, export_checkpoint, read_model

    try:
        data = export_checkpoint(checkpoint, source)
        model = read_model(data)  # what was written reads back
    except (ExportError, FormatError) as exc:
        return fail(f"{args.source}: {exc}")
    out = Path(args.out)
    tmp = out.with_name(out.name + ".tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        return fail(f"-o {args.out}: {exc.strerror}")
    meta = model.meta
    layers = meta["layers"]
    print(f"Wrote {out}: {len(data):,} bytes, {len(layers)} layers ({', '.join(e['name'] for e in layers)}), "
          f"input {'×'.join(map(str, meta['input_shape']))}, {meta['classes']} classes, "
          f"epoch {meta['source'].get('epoch')}")
    return 0


def _download(args: argparse.Namespace, run_id: int, which: str) -> bytes | int:
    """The run's checkpoint bytes, or an exit code (2: refused, with the server's reason; 1: unreachable)."""
    from gxnor_cli.client import api_error, client
    from gxnor_client import ApiError

    try:
        with client(args) as c:
            return c.checkpoint(run_id, which)
    except ApiError as err:
        return api_error(err)
