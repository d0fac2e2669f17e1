"""From submit to a comparison table with the Python client (docs/CLIENT.md): queue a preset a few times with
different pseudo-derivative windows ``activations.a``, follow the runs to their end, print one row per run.

    export GXNOR_TOKEN=gx_...        # the token `gxnor up` printed
    python docs/examples/compare_runs.py --server http://127.0.0.1:8000 --a 0.25 0.5 1.0 --epochs 3

tests/test_client.py runs it against a real server, so it keeps working.
"""

from __future__ import annotations

import argparse
import sys

from gxnor_client import ApiError, Client, Run


def percent(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.2f} %"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--server", default="http://127.0.0.1:8000")
    p.add_argument("--token", help="API token (default: GXNOR_TOKEN)")
    p.add_argument("--preset", default="quick", help="a config preset of the server (GET /catalog → presets)")
    p.add_argument("--a", type=float, nargs="+", default=[0.25, 0.5, 1.0], help="the values of activations.a")
    p.add_argument("--epochs", type=int, help="train.epochs (default: the preset's)")
    args = p.parse_args(argv)

    with Client(args.server, args.token) as gx:
        try:
            # 1. Submit: one run per value, the preset with two fields changed (a 422 would name the bad one).
            common = {"train.epochs": args.epochs} if args.epochs else {}
            runs = [gx.submit(args.preset, {**common, "activations.a": a}, name=f"{args.preset} a={a}")
                    for a in args.a]
            for run in runs:
                print(f"queued run #{run.id} {run.name!r}: {gx.url(run)}", file=sys.stderr)

            # 2. Wait: follow each run to its end (the callback sees every look at it).
            def show(run: Run) -> None:
                print(f"\r  run #{run.id}: {run.status}, {run.progress.epochs:.1f}/{run.progress.total_epochs} epochs",
                      end="", file=sys.stderr)

            done = [gx.wait(run.id, show) for run in runs]
            print(file=sys.stderr)

            # 3. Compare: the configs' differences and the validation error per epoch, side by side.
            cmp = gx.compare([run.id for run in done], "val_error")
        except ApiError as err:
            print(f"error: {err}" + (f" (field {err.field})" if err.field else ""), file=sys.stderr)
            return 2

    # 4. The table: one row per run — what differs, how it ended, its summary figures.
    print(f"{'run':>5}  {'activations.a':>13}  {'status':<10}  {'epochs':>6}  {'best val err':>12}  "
          f"{'test err':>9}  {'last val err':>12}")
    for run, a in zip(done, cmp.config_diff.get("activations.a", args.a), strict=True):
        series = [v for v in cmp.series[run.id] if v is not None]
        print(f"{run.id:>5}  {a:>13}  {run.status:<10}  {run.progress.epochs_done:>6}  "
              f"{percent(run.summary.get('best_val_error')):>12}  {percent(run.summary.get('test_error')):>9}  "
              f"{percent(series[-1] if series else None):>12}")
    return 0 if all(run.status == "succeeded" for run in done) else 1


if __name__ == "__main__":
    sys.exit(main())
