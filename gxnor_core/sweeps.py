"""Parameter sweeps: one spec expands into validated run configs, and their results aggregate per point.

A sweep varies dotted config fields (``activations.r``) over a grid, an explicit list of
points or a seeded random search, and runs every point once per seed.  Pure library:
the API stores the points as JSON and queues their configs; ``bench.studies`` runs them
in-process.  The presets reproduce the paper's studies of r, a and its window, m and the
number of states on the bundled ``mnist5k`` (their results: docs/STUDIES.md).
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import random as _random
import statistics
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .config import CleanText, ConfigError, ExperimentConfig, TrainConfig, validate_config
from .errors import SweepSpecError
from .metrics import PARETO, seed_metrics
from .modes import RUN_MODES, mode_points, spelled_out_mode

# The run metrics aggregated over seeds (mean and sample std): the catalog's (gxnor_core.metrics), in its order.
METRICS = seed_metrics()
MODES = ("grid", "list", "random")
BASELINE_OVERRIDES: dict[str, Any] = dict(RUN_MODES["full_precision"].fields)
UNSWEEPABLE = {
    "train.seed": "train.seed is set by seeds, not swept",
    "name": "the run names are made by the sweep",
    "project": "a sweep's runs share the base's project",
}
MAX_NAME = 200
FLOAT_DIGITS = 6

# Module-level aliases: inside SweepSpec the field named ``list`` hides the builtin.
Values = Annotated[list[Any], Field(min_length=1, max_length=100)]
Overrides = dict[str, Any]  # one point of a sweep: dotted config field → value
OverridesList = Annotated[list[Overrides], Field(min_length=1, max_length=1000)]
Seeds = Annotated[list[Annotated[int, Field(ge=0, le=2**31 - 1)]], Field(min_length=1, max_length=100)]


class RandomRange(BaseModel):
    """One dimension of a random search: ``{"min", "max", "log", "int"}`` or ``{"choices": [...]}``.

    Uniform on [min, max]; with ``log`` uniform in log space (min > 0); with ``int`` an
    integer, both ends included.
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    min: float | None = None
    max: float | None = None
    log: bool = False
    choices: Annotated[list[Any], Field(min_length=1, max_length=100)] | None = None
    int: bool = False


class SweepSpec(BaseModel):
    """The body of ``POST /api/v1/sweeps`` (less the team): exactly one of grid, list or random."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: CleanText = Field(min_length=1, max_length=MAX_NAME)
    base: dict[str, Any] = Field(default_factory=dict, description="The config every point starts from.")
    preset: str | None = Field(None, description="A sweep preset; the fields given here override it.")
    grid: Annotated[dict[str, Values], Field(min_length=1, max_length=4)] | None = Field(
        None, description="Dotted field → values; the cartesian product, first field slowest."
    )
    list: OverridesList | None = Field(None, description="Explicit points, each {dotted field: value}.")
    random: Annotated[dict[str, RandomRange], Field(min_length=1, max_length=16)] | None = Field(
        None, description="Dotted field → range or choices; ``budget`` points drawn with ``seed``."
    )
    budget: Annotated[int, Field(ge=1, le=1000)] | None = None
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] = 0
    seeds: Seeds | None = Field(None, description="Every point runs once per seed (train.seed).")
    baseline: bool = Field(False, description="Add the full-precision network, run over the same seeds.")


@dataclass(frozen=True)
class SweepPoint:
    index: int
    group: int
    overrides: dict[str, Any]
    seed: int
    config: ExperimentConfig


# --- presets ---------------------------------------------------------------------------------

# The paper's MNIST network (its studies use it, not an MLP) on the bundled mnist5k, 15 epochs.  On 2 CPU
# cores one run takes ≈ 75 s with one torch thread (15 epochs × ≈ 5 s on 3 600 training images, measured
# beside other work), so the four presets' 105 distinct runs take about an hour in two processes
# (bench.studies).
PAPER_BASE: dict[str, Any] = {
    "dataset": {"name": "mnist5k"},
    "model": {"arch": "mnist_cnn"},
    "train": {"epochs": 15, "batch_size": 100, "lr": 0.01, "lr_final": 0.0001},
}
_PAPER = {"base": PAPER_BASE, "seeds": [0, 1, 2], "baseline": True}
SWEEP_PRESETS: dict[str, dict[str, Any]] = {
    "paper-r": {**_PAPER, "grid": {"activations.r": [0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0]}},
    "paper-a-window": {**_PAPER, "grid": {"activations.a": [0.25, 0.5, 1.0, 2.0],
                                          "activations.window": ["rect", "tri", "gauss", "exp"]}},
    "paper-m": {**_PAPER, "grid": {"dst.m": [0.5, 1.0, 3.0, 10.0, 30.0]}},
    "paper-n-grid": {**_PAPER, "grid": {"weights.N": [0, 1, 2], "activations.N": [0, 1, 2]}},
    "paper-baselines": {**_PAPER, "list": mode_points()},
}
SWEEP_PRESET_DESCRIPTIONS: dict[str, str] = {
    "paper-r": "Sparsity window r (|x| ≤ r → 0) from dense to very sparse: accuracy against "
               "activation sparsity and gate-event rate.",
    "paper-a-window": "Derivative window: half-width a × shape (rect is the paper's; tri, gauss and exp "
                      "are ours).",
    "paper-m": "DST transition nonlinearity m in τ = tanh(m·|ν|/Δz): how far the weights move per step.",
    "paper-n-grid": "Number of states: weights.N × activations.N (0 binary, 1 ternary, 2 five levels).",
    "paper-baselines": "The paper's comparison: GXNOR, TWN, BWN and BNN, each trained by DST and by latent "
                       "weights (GXNOR-DST, BWN-latent, …), and full precision (gxnor_core.modes).",
}


def sweep_preset(name: str) -> dict[str, Any]:
    """A copy of a preset's spec (without ``name``)."""
    if name not in SWEEP_PRESETS:
        raise SweepSpecError("preset", f"unknown sweep preset {name!r}; choose from {sorted(SWEEP_PRESETS)}")
    return copy.deepcopy(SWEEP_PRESETS[name])


# --- the spec --------------------------------------------------------------------------------


def parse_spec(data: SweepSpec | dict[str, Any]) -> SweepSpec:
    """Validate a spec and merge its preset; raise SweepSpecError naming the offending key.

    A preset fills every field the spec leaves out, except that giving any of grid, list
    or random replaces the preset's points (and budget) whole; ``base`` is merged key by key.
    """
    if isinstance(data, SweepSpec):
        spec = data
    else:
        if not isinstance(data, dict):
            raise SweepSpecError("", "a sweep must be a JSON object")
        try:
            spec = SweepSpec.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            raise SweepSpecError(".".join(str(p) for p in err["loc"]), msg) from None
    if spec.preset is not None:
        spec = _merge_preset(spec)
    given = [m for m in MODES if getattr(spec, m) is not None]
    if len(given) != 1:
        raise SweepSpecError(given[1] if given else "grid",
                          "give exactly one of grid, list or random" + (f" (got {', '.join(given)})" if given else ""))
    if spec.random is not None and spec.budget is None:
        raise SweepSpecError("budget", "random needs a budget: the number of points to draw")
    if spec.random is None and spec.budget is not None:
        raise SweepSpecError("budget", "budget is only used with random")
    if spec.seeds is not None and len(set(spec.seeds)) != len(spec.seeds):
        raise SweepSpecError("seeds", "seeds must be distinct")
    for field in spec.grid or {}:
        _check_field(f"grid.{field}", field)
    seen: dict[str, int] = {}
    for i, point in enumerate(spec.list or []):
        for field in point:
            _check_field(f"list.{i}.{field}", field)
        first = seen.setdefault(json.dumps(point, sort_keys=True, default=str), i)
        if first != i:
            raise SweepSpecError(f"list.{i}", f"repeats list.{first}")
    for field, rng in (spec.random or {}).items():
        _check_field(f"random.{field}", field)
        _check_range(f"random.{field}", rng)
    return spec


def _merge_preset(spec: SweepSpec) -> SweepSpec:
    preset = sweep_preset(spec.preset)
    given = spec.model_fields_set
    if given & {"grid", "list", "random"}:
        for key in ("grid", "list", "random", "budget"):
            preset.pop(key, None)
    merged = {**preset, **spec.model_dump(include=given - {"preset"}),
              "base": _deep_merge(preset.get("base", {}), spec.base)}
    return SweepSpec.model_validate(merged)


def _deep_merge(under: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(under)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _check_field(where: str, field: str) -> None:
    """A swept field is a leaf of the config (not a section), and not one the sweep sets itself."""
    if field in UNSWEEPABLE:
        raise SweepSpecError(where, UNSWEEPABLE[field])
    model: type[BaseModel] | None = ExperimentConfig
    for part in field.split("."):
        info = model.model_fields.get(part) if model is not None else None
        if info is None:
            raise SweepSpecError(where, "unknown config field")
        sub = info.annotation
        model = sub if isinstance(sub, type) and issubclass(sub, BaseModel) else None
    if model is not None:
        raise SweepSpecError(where, "is a section of the config, not a field")


def _check_range(where: str, rng: RandomRange) -> None:
    if rng.choices is not None:
        if rng.min is not None or rng.max is not None or rng.log or rng.int:
            raise SweepSpecError(where, "give either choices or min and max, not both")
        return
    for end in ("min", "max"):
        if getattr(rng, end) is None:
            raise SweepSpecError(f"{where}.{end}", "required (or give choices)")
    if rng.min > rng.max:
        raise SweepSpecError(f"{where}.max", f"max {_fmt(rng.max)} is below min {_fmt(rng.min)}")
    if rng.log and rng.min <= 0:
        raise SweepSpecError(f"{where}.min", "a log-uniform range needs min > 0")
    if rng.int:
        for end in ("min", "max"):
            if not float(getattr(rng, end)).is_integer():
                raise SweepSpecError(f"{where}.{end}", "an integer range needs integer ends")


def _mode(spec: SweepSpec) -> str:
    return next(m for m in MODES if getattr(spec, m) is not None)


def _seeds(spec: SweepSpec) -> list[int]:
    if spec.seeds is not None:
        return list(spec.seeds)
    train = spec.base.get("train")
    return [train.get("seed", TrainConfig.model_fields["seed"].default) if isinstance(train, dict)
            else TrainConfig.model_fields["seed"].default]


def count_runs(spec: SweepSpec | dict[str, Any]) -> int:
    """The number of runs ``expand`` makes, without building any config."""
    spec = parse_spec(spec)
    if spec.grid is not None:
        points = math.prod(len(v) for v in spec.grid.values())
    elif spec.list is not None:
        points = len(spec.list)
    else:
        points = spec.budget
    return (points + (1 if spec.baseline else 0)) * len(_seeds(spec))


# --- expansion -------------------------------------------------------------------------------


def _draw(rng: _random.Random, r: RandomRange) -> Any:
    """One value of a random dimension; floats keep 6 significant digits so labels stay readable."""
    if r.choices is not None:
        return rng.choice(r.choices)
    lo, hi = r.min, r.max
    if r.int:
        lo, hi = int(lo), int(hi)
        if r.log:  # log-uniform over [lo, hi + 1), floored: every integer can come up
            return min(hi, int(math.exp(rng.uniform(math.log(lo), math.log(hi + 1)))))
        return rng.randint(lo, hi)
    x = math.exp(rng.uniform(math.log(lo), math.log(hi))) if r.log else rng.uniform(lo, hi)
    return min(hi, max(lo, float(f"{x:.{FLOAT_DIGITS}g}")))


def _points(spec: SweepSpec) -> list[tuple[str, dict[str, Any]]]:
    """(sweep key of the point, its overrides) in run order, before seeds."""
    if spec.grid is not None:
        fields = list(spec.grid)
        return [("grid", dict(zip(fields, combo))) for combo in itertools.product(*spec.grid.values())]
    if spec.list is not None:
        return [(f"list.{i}", dict(point)) for i, point in enumerate(spec.list)]
    rng = _random.Random(spec.seed)
    return [("random", {f: _draw(rng, r) for f, r in spec.random.items()}) for _ in range(spec.budget)]


def _set_path(data: dict[str, Any], field: str, value: Any) -> None:
    """``a.b = value`` in nested dicts, as ``config.apply_overrides`` does for strings."""
    keys = field.split(".")
    node = data
    for depth, k in enumerate(keys[:-1], 1):
        node = node.setdefault(k, {})
        if not isinstance(node, dict):
            raise SweepSpecError("base." + ".".join(keys[:depth]), "is not a section")
    node[keys[-1]] = copy.deepcopy(value)


def _fmt(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return repr(value)
    return json.dumps(value, separators=(",", ":"), default=str)


def _label(name: str, overrides: dict[str, Any], seed: int, baseline: bool, mode: str | None = None) -> str:
    """``sweep · r=0.5 · seed=1``: the leaf name of a field unless two swept fields share it; ``sweep ·
    BWN-latent · seed=1`` for a point that spells out a run mode (``mode``)."""
    leaves = [f.rsplit(".", 1)[-1] for f in overrides]
    if baseline:
        parts = ["full precision"]
    elif mode is not None:
        parts = [mode]
    else:
        parts = [f"{leaf if leaves.count(leaf) == 1 else f}={_fmt(v)}" for f, leaf, v in
                 zip(overrides, leaves, overrides.values())]
    head, tail = " · ".join([name, *parts]), f" · seed={seed}"
    if len(head) + len(tail) > MAX_NAME:
        head = head[:MAX_NAME - len(tail) - 1] + "…"
    return head + tail


def _build(spec: SweepSpec, where: str, overrides: dict[str, Any], seed: int, baseline: bool) -> ExperimentConfig:
    data = copy.deepcopy(spec.base)
    for field, value in {**overrides, "train.seed": seed}.items():
        _set_path(data, field, value)
    data["name"] = _label(spec.name, overrides, seed, baseline)
    try:
        config = validate_config(data)
    except ConfigError as err:
        bad = err.field
        for field, value in overrides.items():
            if bad == field or bad.startswith(field + "."):
                key = "baseline" if baseline else f"{where}.{field}"
                raise SweepSpecError(key, f"value {_fmt_value(value)} is invalid for {field}: {err.message}") from None
        if bad == "train.seed" and spec.seeds is not None:
            raise SweepSpecError("seeds", f"seed {_fmt_value(seed)} is invalid: {err.message}") from None
        raise SweepSpecError(f"base.{bad}" if bad else "base", err.message) from None
    mode = None if baseline else spelled_out_mode(config, overrides)
    if mode is not None:
        config.name = _label(spec.name, overrides, seed, baseline, mode)
    return config


def _fmt_value(value: Any) -> str:
    return json.dumps(value, default=str)


def expand(spec: SweepSpec | dict[str, Any], max_runs: int | None = None) -> list[SweepPoint]:
    """Every run of the sweep, validated, point-major and seed-minor, the baseline group last.

    Raises SweepSpecError naming the sweep key: the size cap is checked before any config is
    built, then the first invalid point stops the expansion.
    """
    spec = parse_spec(spec)
    n = count_runs(spec)
    if max_runs is not None and n > max_runs:
        raise SweepSpecError("budget" if spec.random is not None else _mode(spec),
                          f"the sweep expands to {n} runs; this server allows {max_runs}")
    seeds = _seeds(spec)
    planned = [(where, ov, False) for where, ov in _points(spec)]
    if spec.baseline:
        planned.append(("baseline", dict(BASELINE_OVERRIDES), True))
    groups: dict[str, int] = {}
    out: list[SweepPoint] = []
    for where, overrides, baseline in planned:
        key = "baseline" if baseline else json.dumps(overrides, sort_keys=True, default=str)
        group = groups.setdefault(key, len(groups))
        for seed in seeds:
            config = _build(spec, where, overrides, seed, baseline)
            out.append(SweepPoint(index=len(out), group=group, overrides=overrides, seed=seed, config=config))
    return out


# --- results ---------------------------------------------------------------------------------


def _get(point: SweepPoint | dict[str, Any], key: str) -> Any:
    return point[key] if isinstance(point, dict) else getattr(point, key)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def aggregate(points: list[SweepPoint] | list[dict[str, Any]], results: dict[int, dict | None]) -> list[dict]:
    """One row per group, in group order: each metric's mean and sample std over its finished runs.

    std uses ddof = 1 with two or more values, is 0.0 with one and None with none; a run
    whose summary lacks a metric (or has NaN) does not count for that metric.
    """
    members: dict[int, list] = {}
    for p in sorted(points, key=lambda p: _get(p, "index")):
        members.setdefault(_get(p, "group"), []).append(p)
    rows = []
    names = seed_metrics()
    for group in sorted(members):
        ps = members[group]
        done = [results[_get(p, "index")] for p in ps if results.get(_get(p, "index")) is not None]
        metrics = {}
        for name in names:
            values = [v for v in (_number(r.get(name)) for r in done) if v is not None]
            metrics[name] = {
                "mean": statistics.fmean(values) if values else None,
                "std": statistics.stdev(values) if len(values) > 1 else (0.0 if values else None),
                "n": len(values),
            }
        rows.append({
            "group": group, "overrides": dict(_get(ps[0], "overrides")),
            "seeds": [_get(p, "seed") for p in ps], "n": len(ps), "n_done": len(done), "metrics": metrics,
        })
    return rows


def is_baseline(row: dict[str, Any]) -> bool:
    """The full-precision group of a sweep (an aggregate row or a point dict)."""
    return row["overrides"] == BASELINE_OVERRIDES


def swept_fields(rows: list[dict[str, Any]]) -> list[str]:
    """The dotted fields the rows vary, in order of first appearance, the baseline's left out."""
    fields: dict[str, None] = {}
    for row in rows:
        if not is_baseline(row):
            fields.update(dict.fromkeys(row["overrides"]))
    return list(fields)


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats in both coordinates (both minimised), by x.

    q dominates p when q ≤ p in both and q < p in one; equal points are all kept, and a
    point with a missing or NaN coordinate is never on the front.
    """
    valid = [i for i, (x, y) in enumerate(points) if _number(x) is not None and _number(y) is not None]
    order = sorted(valid, key=lambda i: (points[i][0], points[i][1], i))
    front, best_y = [], math.inf
    for _, same_x in itertools.groupby(order, key=lambda i: points[i][0]):
        same_x = list(same_x)
        y_min = points[same_x[0]][1]
        if y_min < best_y:
            front += [i for i in same_x if points[i][1] == y_min]
            best_y = y_min
    return front


def front_groups(rows: list[dict[str, Any]]) -> list[int]:
    """Groups of the aggregate rows on the Pareto front of the catalog's trade-off (``metrics.PARETO``: mean test
    error and mean XNOR-layer gate-event rate, both minimised); the full-precision baseline is left out — it has
    no gate events to trade (and no XNOR-layer figure: never on the front anyway)."""
    candidates = [row for row in rows if not is_baseline(row)]
    x, y = PARETO["x"], PARETO["y"]
    xy = [(row["metrics"][x]["mean"], row["metrics"][y]["mean"]) for row in candidates]
    return [candidates[i]["group"] for i in pareto_front(xy)]


def to_csv(rows: list[dict[str, Any]], fields: list[str]) -> str:
    """The aggregate table: swept fields, n, n_done, then each metric's mean and std."""
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    names = seed_metrics()
    writer.writerow([*fields, "n", "n_done", *(f"{m}_{s}" for m in names for s in ("mean", "std"))])
    for row in rows:
        cells = [_fmt(row["overrides"][f]) if f in row["overrides"] else "" for f in fields]
        stats = [row["metrics"][m][s] for m in names for s in ("mean", "std")]
        writer.writerow([*cells, row["n"], row["n_done"], *("" if v is None else repr(v) for v in stats)])
    return buf.getvalue()
