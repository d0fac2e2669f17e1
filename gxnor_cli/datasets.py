"""``gxnor datasets``: which registered datasets this machine has, where, and whether their files hold what the
registry says (docs/CONFIG.md, "Datasets").  Run it on a server — where the API and the workers read the
datasets directory (``GXNOR_DATASETS_DIR``) — after putting files there.

Exit code 1 when a dataset whose files are present fails verification, or when one named on the command line
is missing; 0 otherwise (listing all, a missing dataset is just not served here); 2 for an unknown name.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from gxnor_cli.common import fail


def register(sub) -> None:
    p = sub.add_parser("datasets", help="list the datasets this machine has and verify their files")
    p.add_argument("names", nargs="*", metavar="NAME", help="only these datasets (default: every registered one)")
    p.add_argument("--datasets-dir", dest="datasets_dir", metavar="DIR",
                   help="the datasets directory (default: GXNOR_DATASETS_DIR, else ~/.cache/gxnor/datasets)")
    p.set_defaults(func=cmd_datasets)


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def cmd_datasets(args: argparse.Namespace) -> int:
    from gxnor_core.data import DATASETS, default_root, verify_dataset

    unknown = [n for n in args.names if n not in DATASETS]
    if unknown:
        return fail(f"unknown dataset {unknown[0]!r}; registered: {', '.join(DATASETS)}")
    root = Path(args.datasets_dir).expanduser() if args.datasets_dir else default_root()
    source = "--datasets-dir" if args.datasets_dir else (
        "GXNOR_DATASETS_DIR" if os.environ.get("GXNOR_DATASETS_DIR") else "the default; set GXNOR_DATASETS_DIR")
    print(f"Datasets directory: {root.resolve()}  ({source})")
    names = args.names or list(DATASETS)
    width = max(map(len, names))
    failed = missing = 0
    for name in names:
        ds, check = DATASETS[name], verify_dataset(name, root)
        if check.state == "missing":
            if ds.bundled:  # its package is broken: that is a failure here, not a dataset left out
                print(f"{name:<{width}}  missing — {'; '.join(check.problems)}")
                failed += 1
                continue
            missing += 1
            print(f"{name:<{width}}  missing — put {', '.join(ds.files)} (each plain or .gz) in "
                  f"{check.looked_in[0]}/")
            continue
        where = (f"bundled with the {ds.package.split('.')[0]} package" if ds.bundled else
                 f"found in {check.where} ({len(check.files)} files, {_mb(sum(n for _, n in check.files))})")
        if check.ok:
            print(f"{name:<{width}}  {where} — verified: {ds.pool:,} + {ds.test:,} images, "
                  f"{'×'.join(map(str, ds.input_shape))}, {ds.num_classes} classes")
        else:
            failed += 1
            print(f"{name:<{width}}  {where} — FAILED verification:")
            for problem in check.problems:
                print(f"{'':<{width}}    {problem}")
    asked_missing = missing if args.names else 0
    ready = len(names) - failed - missing
    print(f"{ready} of {len(names)} ready here" + (f"; {failed} failed verification" if failed else "")
          + (f"; {missing} missing" if missing else ""))
    return 1 if failed or asked_missing else 0
