"""What ``gxnor submit`` and ``gxnor sweep`` print at the end: a few readable lines, figures rounded, and the
dashboard's address of the run or sweep.  (``--json`` prints the API's objects instead.)"""

from __future__ import annotations

from datetime import datetime

MAX_ROWS = 12  # a sweep's configs listed one per line; beyond, the best ones and a count
BASELINE = "baseline (full precision)"


def percent(x) -> str:
    """A fraction as a percentage with two decimals (``0.04183`` → ``4.18 %``); ``—`` for none."""
    return "—" if x is None else f"{100 * x:.2f} %"


def duration(seconds: float | None) -> str:
    """``41 s``, ``3 min 05 s``, ``2 h 07 min``."""
    if seconds is None:
        return "—"
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def _seconds(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def run_queued(run: dict, url: str) -> str:
    return f"Queued run #{run['id']} \"{run['name']}\" ({run['progress']['total_epochs']} epochs): {url}"


def run_lines(run: dict, url: str) -> list[str]:
    """The end of a followed run: its outcome, epochs and duration; its best validation error and test error."""
    p, summary = run["progress"], run.get("summary") or {}
    epochs = f"{p['epochs_done']}/{p['total_epochs']} epochs"
    took = _seconds(run.get("started_at"), run.get("finished_at"))
    when = f"{epochs} in {duration(took)}" if took is not None else f"{epochs}, never started"
    head = f"Run #{run['id']} \"{run['name']}\" {run['status']}: {when}"
    if run.get("error"):
        head += f" — {run['error'].splitlines()[0]}"
    lines = [head]
    if summary.get("best_val_error") is not None or summary.get("test_error") is not None:
        at = f" (epoch {summary['best_epoch']})" if summary.get("best_epoch") else ""
        lines.append(f"  best validation error {percent(summary.get('best_val_error'))}{at}, "
                     f"test error {percent(summary.get('test_error'))}")
    return [*lines, f"  {url}"]


def sweep_queued(sweep: dict, url: str) -> str:
    over = ", ".join(sweep["fields"]) or "one config"
    return f"Queued sweep #{sweep['id']} \"{sweep['name']}\": {len(sweep['run_ids'])} runs over {over}: {url}"


def _point(overrides: dict) -> str:
    from gxnor_core.sweeps import BASELINE_OVERRIDES

    if overrides == BASELINE_OVERRIDES:
        return BASELINE
    return ", ".join(f"{k}={v}" for k, v in overrides.items()) or "the base config"


def _stat(metric: dict | None) -> str:
    if not metric or metric.get("mean") is None:
        return "—"
    spread = f" ± {100 * metric['std']:.2f}" if metric.get("n", 0) > 1 and metric.get("std") is not None else ""
    return f"{percent(metric['mean'])}{spread}"


def sweep_lines(sweep: dict, url: str, seconds: float) -> list[str]:
    """The end of a followed sweep: its outcome, runs per status, epochs and duration; per config the mean test
    error (± its standard deviation over seeds) and best validation error; the best config."""
    counts = ", ".join(f"{n} {status}" for status, n in sweep["counts"].items() if n) or "no runs"
    epochs = {r["progress"]["total_epochs"] for r in sweep.get("runs", [])}
    each = f", {(n := epochs.pop())} epoch{'' if n == 1 else 's'} each" if len(epochs) == 1 else ""
    lines = [f"Sweep #{sweep['id']} \"{sweep['name']}\" {sweep['status']}: {sweep['total']} runs ({counts}){each}, "
             f"in {duration(seconds)}"]
    rows = sweep.get("results", [])
    scored = [r for r in rows if (r["metrics"].get("test_error") or {}).get("mean") is not None]
    shown = rows if len(rows) <= MAX_ROWS else sorted(scored, key=lambda r: r["metrics"]["test_error"]["mean"])[
        :MAX_ROWS]
    width = max((len(_point(r["overrides"])) for r in shown), default=0)
    for r in shown:
        m = r["metrics"]
        lines.append(f"  {_point(r['overrides']):<{width}}  test error {_stat(m.get('test_error'))}, best validation "
                     f"error {_stat(m.get('best_val_error'))} ({r['n_done']}/{r['n']} runs)")
    if len(shown) < len(rows):
        lines.append(f"  … and {len(rows) - len(shown)} more configs (the {len(shown)} best are listed)")
    candidates = [r for r in scored if _point(r["overrides"]) != BASELINE]
    if len(candidates) > 1:
        best = min(candidates, key=lambda r: r["metrics"]["test_error"]["mean"])
        error = percent(best["metrics"]["test_error"]["mean"])
        lines.append(f"  best: {_point(best['overrides'])} — test error {error}")
    return [*lines, f"  {url}"]
