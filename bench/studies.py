"""The paper's studies as sweeps on mnist5k (results: docs/STUDIES.md): r, a × window, m, the number of states.

    python -m bench.studies [--presets paper-r paper-m …] [--jobs 2] [--out docs/STUDIES.md]
                            [--seeds 0 1 2] [--set train.epochs=1 …]

The four study presets of ``gxnor_core.sweeps`` (not ``paper-baselines``: that table is ``bench.paper_baselines``'s)
are expanded with ``expand``; each distinct config
is trained once with ``gxnor_core.train`` (the full-precision baseline and the base point
are common to several presets), in ``--jobs`` processes with one torch thread each.  The
runs are aggregated per point over seeds with ``aggregate`` and written as one markdown
table per preset.  ``--set`` changes the presets' base (``--set train.epochs=1 --seeds 0``
is a smoke test of the whole path in about a minute).

All four presets: 123 runs, 105 distinct, on ``mnist_cnn`` for 15 epochs: 28 min with two processes on this
project's 2-core machine (2026-12-06; docs/STUDIES.md).  (On the MLP they used before, 50 epochs, 11 minutes.)
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import shlex
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from datetime import datetime, timezone
from pathlib import Path

import torch

from gxnor_core import apply_overrides, train
from gxnor_core.metrics import PARETO, VIEWS, run_metric, run_metric_names
from gxnor_core.sweeps import (
    SWEEP_PRESET_DESCRIPTIONS,
    SWEEP_PRESETS,
    aggregate,
    expand,
    front_groups,
    is_baseline,
    parse_spec,
    swept_fields,
)


def _one_thread() -> None:
    torch.set_num_threads(1)


def run_config(config: dict) -> tuple[dict | None, float]:
    """Train one config; (its summary — every run metric of the catalog, as the service stores it — or None if
    it did not finish, seconds)."""
    t0 = time.perf_counter()
    summary = train(config)
    seconds = time.perf_counter() - t0
    if summary["status"] != "succeeded":
        return None, seconds
    return {k: summary[k] for k in run_metric_names()}, seconds


def _config_key(config: dict) -> str:
    """Runs that differ only in their name are the same run."""
    return json.dumps({k: v for k, v in config.items() if k != "name"}, sort_keys=True)


def _mean_std(stat: dict, scale: float, digits: int) -> str:
    if stat["mean"] is None:
        return "–"
    return f"{stat['mean'] * scale:.{digits}f} ± {stat['std'] * scale:.{digits}f}"


def _value(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _scale(metric) -> tuple[str, float, int]:
    """A column's header, scale and decimals: percentages for fractions."""
    if metric.format == "percent":
        return f"{metric.label} (%)", 100.0, metric.digits
    return metric.label, 1.0, 3


def render_table(rows: list[dict]) -> list[str]:
    """Markdown lines: one row per point, the full-precision baseline last, ◆ on the Pareto front; the columns
    are the catalog's ``studies`` view (gxnor_core.metrics.VIEWS)."""
    fields = swept_fields(rows)
    front = set(front_groups(rows))
    columns = [(name, *_scale(run_metric(name))) for name in VIEWS["studies"]]
    lines = [
        "| " + " | ".join(f"`{f}`" for f in fields) + " | n | " + " | ".join(c[1] for c in columns) + " |",
        "|" + "---|" * (len(fields) + 1 + len(columns)),
    ]
    for r in rows:
        if is_baseline(r):
            cells = ["full precision (float weights, ReLU)"] + ["–"] * (len(fields) - 1)
        else:
            cells = [_value(r["overrides"][f]) if f in r["overrides"] else "–" for f in fields]
        m = r["metrics"]
        n = str(r["n"]) if r["n_done"] == r["n"] else f"{r['n_done']}/{r['n']}"
        cells.append(n)
        for name, _, scale, digits in columns:
            mark = " ◆" if name == PARETO["y"] and r["group"] in front else ""
            cells.append(_mean_std(m[name], scale, digits) + mark)
        lines.append("| " + " | ".join(cells) + " |")
    return lines


STUDIES = ("paper-r", "paper-a-window", "paper-m", "paper-n-grid")  # the studies of docs/STUDIES.md


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", nargs="+", choices=sorted(SWEEP_PRESETS), default=list(STUDIES),
                    help="default: the four studies (paper-baselines is bench.paper_baselines' table)")
    ap.add_argument("--jobs", type=int, default=2, help="processes, one torch thread each")
    ap.add_argument("--out", default="docs/STUDIES.md")
    ap.add_argument("--seeds", type=int, nargs="+", default=None, help="instead of the presets' seeds")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="change the presets' base config, e.g. --set train.epochs=1")
    args = ap.parse_args()
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()

    specs, points = {}, {}
    for name in args.presets:
        spec = {"name": name, "preset": name, "base": apply_overrides({}, args.set)}
        if args.seeds is not None:
            spec["seeds"] = args.seeds
        specs[name] = parse_spec(spec)
        points[name] = expand(specs[name])
    configs = {_config_key(c): c for ps in points.values() for c in (p.config.model_dump(mode="json") for p in ps)}
    n_points = sum(len(ps) for ps in points.values())
    print(json.dumps({"presets": args.presets, "runs": n_points, "distinct_runs": len(configs)}), flush=True)

    # Children must start with one OpenMP thread: spawn them fresh rather than fork a process
    # whose OpenMP runtime is already up (gxnor_core._threads starts it at import).
    os.environ["OMP_NUM_THREADS"] = "1"
    done: dict[str, tuple[dict | None, float]] = {}
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_one_thread) as pool:
        futures = {pool.submit(run_config, c): key for key, c in configs.items()}
        for fut in as_completed(futures):
            key = futures[fut]
            try:
                done[key] = fut.result()
            except Exception as exc:  # noqa: BLE001 - one failed run leaves a gap in the table, not a crash
                done[key] = (None, float("nan"))
                print(json.dumps({"run": configs[key]["name"], "error": f"{type(exc).__name__}: {exc}"}), flush=True)
                continue
            summary, seconds = done[key]
            print(json.dumps({"done": len(done), "of": len(configs), "run": configs[key]["name"],
                              "seconds": round(seconds, 1),
                              "test_error": summary and summary["test_error"]}), flush=True)
    wall = time.perf_counter() - t0

    command = shlex.join(["python", "-m", "bench.studies", *sys.argv[1:]])
    lines = [
        "# Studies — the paper's sweeps on mnist5k",
        "",
        f"Generated by `{command}` on {started:%Y-%m-%d %H:%M} UTC.",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{args.jobs} processes × 1 thread. Total wall time **{wall / 60:.1f} min** for {len(configs)} distinct runs "
        f"({n_points} across the presets; a run common to several presets is trained once).",
        "",
        "Mean ± sample std over seeds (n = finished runs); fractions in %. What each column is and what it is a "
        "fraction of: docs/METRICS.md. "
        f"◆: on the Pareto front of {run_metric(PARETO['y']).label.lower()} and "
        f"{run_metric(PARETO['x']).label.lower()} (both lower is better), baseline left out.",
    ]
    for name, ps in points.items():
        results = {p.index: done[_config_key(p.config.model_dump(mode="json"))][0] for p in ps}
        run_seconds = sum(done[_config_key(p.config.model_dump(mode="json"))][1] for p in ps)
        seeds = sorted({p.seed for p in ps})
        lines += [
            "", f"## {name}", "", SWEEP_PRESET_DESCRIPTIONS[name], "",
            f"Base: `{json.dumps(specs[name].base)}`; seeds {', '.join(map(str, seeds))}; "
            f"{len(ps)} runs, {run_seconds / 60:.1f} min of run time.",
            "", *render_table(aggregate(ps, results)),
        ]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print(json.dumps({"out": str(out), "wall_seconds": round(wall, 1)}), flush=True)


if __name__ == "__main__":
    main()
