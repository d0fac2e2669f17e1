import math
import statistics

import numpy as np
import pytest

from gxnor_core.config import ExperimentConfig
from gxnor_core.errors import SweepSpecError
from gxnor_core.sweeps import (
    BASELINE_OVERRIDES,
    METRICS,
    SWEEP_PRESET_DESCRIPTIONS,
    SWEEP_PRESETS,
    SweepPoint,
    aggregate,
    count_runs,
    expand,
    pareto_front,
    parse_spec,
    sweep_preset,
    swept_fields,
    to_csv,
)

BASE = {"project": "studies", "model": {"hidden": [32]}, "train": {"epochs": 2, "seed": 7}}


def sweep(**fields):
    return {"name": "s", "base": BASE, **fields}


def test_grid_expands_in_product_order_first_field_slowest():
    points = expand(sweep(grid={"activations.r": [0, 0.5], "activations.window": ["rect", "tri", "exp"]}))
    assert [p.overrides for p in points] == [
        {"activations.r": r, "activations.window": w} for r in (0, 0.5) for w in ("rect", "tri", "exp")
    ]
    assert [p.index for p in points] == list(range(6))
    assert [p.group for p in points] == list(range(6))
    assert all(p.seed == 7 for p in points)  # default seeds: [base's train.seed]
    c = points[4].config
    assert isinstance(c, ExperimentConfig)
    assert (c.activations.r, c.activations.window, c.train.seed) == (0.5, "tri", 7)
    assert c.model.hidden == [32] and c.train.epochs == 2 and c.project == "studies"
    assert c.name == "s · r=0.5 · window=tri · seed=7"
    assert count_runs(parse_spec(sweep(grid={"activations.r": [0, 0.5], "activations.window": ["rect", "tri"]}))) == 4


def test_seeds_are_point_major_and_share_the_group():
    points = expand(sweep(grid={"dst.m": [1.0, 3.0]}, seeds=[2, 0, 5]))
    assert [(p.overrides["dst.m"], p.seed, p.group) for p in points] == [
        (1.0, 2, 0), (1.0, 0, 0), (1.0, 5, 0), (3.0, 2, 1), (3.0, 0, 1), (3.0, 5, 1),
    ]
    assert [p.config.train.seed for p in points] == [2, 0, 5, 2, 0, 5]
    assert all("seed" not in k for p in points for k in p.overrides)
    assert points[1].config.name == "s · m=1.0 · seed=0"


def test_baseline_is_the_last_group_full_precision_over_the_same_seeds():
    points = expand(sweep(grid={"activations.r": [0.25, 1.0]}, seeds=[0, 1], baseline=True))
    assert len(points) == count_runs(sweep(grid={"activations.r": [0.25, 1.0]}, seeds=[0, 1], baseline=True)) == 6
    fp = points[4:]
    assert [(p.group, p.seed, p.overrides) for p in fp] == [(2, 0, BASELINE_OVERRIDES), (2, 1, BASELINE_OVERRIDES)]
    assert not fp[0].config.weights.discrete and not fp[0].config.activations.discrete
    assert fp[0].config.activations.r == 0.5  # the base's, not a swept value
    assert fp[1].config.name == "s · full precision · seed=1"


def test_labels_use_full_paths_when_leaves_collide_and_stay_short():
    points = expand(sweep(grid={"weights.N": [0], "activations.N": [2]}))
    assert points[0].config.name == "s · weights.N=0 · activations.N=2 · seed=7"
    long = expand({"name": "x" * 200, "grid": {"activations.r": [0.5]}})
    assert len(long[0].config.name) == 200 and long[0].config.name.endswith("… · seed=0")


def test_list_points_apply_paired_values():
    points = expand(sweep(list=[{"weights.N": 0, "activations.N": 0}, {"weights.N": 2}, {}], seeds=[0, 1]))
    assert len(points) == 6 == count_runs(sweep(list=[{"weights.N": 0, "activations.N": 0}, {"weights.N": 2}, {}],
                                                seeds=[0, 1]))
    assert [(p.group, p.seed) for p in points] == [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)]
    a, b, base = points[0].config, points[2].config, points[4].config
    assert (a.weights.N, a.activations.N) == (0, 0)
    assert (b.weights.N, b.activations.N) == (2, 1)
    assert (base.weights.N, base.activations.N) == (1, 1)
    assert points[2].config.model.hidden == [32]  # nested values keep the rest of the section


def test_list_value_replaces_a_list_field_whole():
    (p,) = expand(sweep(list=[{"model.hidden": [16, 8]}]))
    assert p.config.model.hidden == [16, 8]
    assert p.config.name == "s · hidden=[16,8] · seed=7"


def test_random_search_is_reproducible_and_within_ranges():
    spec = sweep(random={
        "activations.r": {"min": 0.1, "max": 2.0},
        "dst.m": {"min": 0.1, "max": 100.0, "log": True},
        "weights.N": {"min": 0, "max": 3, "int": True},
        "train.batch_size": {"min": 8, "max": 512, "int": True, "log": True},
        "activations.window": {"choices": ["rect", "gauss"]},
    }, budget=60, seed=3, seeds=[0, 1])
    points = expand(spec)
    assert len(points) == count_runs(spec) == 120
    again = expand(spec)
    assert [p.overrides for p in points] == [p.overrides for p in again]
    assert [p.overrides for p in points] != [p.overrides for p in expand({**spec, "seed": 4})]
    drawn = [p.overrides for p in points[::2]]
    r = [d["activations.r"] for d in drawn]
    m = [d["dst.m"] for d in drawn]
    assert all(0.1 <= x <= 2.0 for x in r) and all(0.1 <= x <= 100.0 for x in m)
    assert all(float(f"{x:.6g}") == x for x in r + m)  # 6 significant digits
    assert sum(x < 3.16 for x in m) > 15  # log-uniform: about half below the geometric middle
    assert {d["weights.N"] for d in drawn} == {0, 1, 2, 3}
    assert all(isinstance(d["train.batch_size"], int) and 8 <= d["train.batch_size"] <= 512 for d in drawn)
    assert {d["activations.window"] for d in drawn} == {"rect", "gauss"}
    assert points[0].overrides == points[1].overrides and points[0].seed != points[1].seed
    assert [p.config.weights.N for p in points] == [p.overrides["weights.N"] for p in points]


def test_every_preset_expands_validates_and_counts():
    for name, spec in SWEEP_PRESETS.items():
        assert name in SWEEP_PRESET_DESCRIPTIONS and "name" not in spec and "description" not in spec
        points = expand({"name": name, "preset": name})
        assert len(points) == count_runs({"name": name, "preset": name}) == count_runs({"name": name, **spec})
        assert [p.seed for p in points[:3]] == [0, 1, 2]
        assert points[-1].overrides == BASELINE_OVERRIDES
        assert {p.config.dataset.name for p in points} == {"mnist5k"}
        assert {p.config.model.arch for p in points} == {"mnist_cnn"}  # the paper's studies use its CNN
    with pytest.raises(SweepSpecError) as err:
        sweep_preset("paper-zz")
    assert err.value.field == "preset"


def test_preset_fields_are_overridden_by_the_spec():
    points = expand({"name": "q", "preset": "paper-r", "base": {"train": {"epochs": 1}}, "seeds": [4],
                     "baseline": False})
    r_values = SWEEP_PRESETS["paper-r"]["grid"]["activations.r"]
    assert [p.overrides["activations.r"] for p in points] == r_values
    assert {p.config.train.epochs for p in points} == {1}
    assert {p.config.model.arch for p in points} == {SWEEP_PRESETS["paper-r"]["base"]["model"]["arch"]}
    assert {p.seed for p in points} == {4}
    # giving a mode replaces the preset's points rather than clashing with them
    other = expand({"name": "q", "preset": "paper-r", "list": [{"dst.m": 2.0}]})
    assert [p.overrides for p in other] == [{"dst.m": 2.0}] * 3 + [BASELINE_OVERRIDES] * 3


@pytest.mark.parametrize("spec,mode", [
    (sweep(grid={"activations.r": [0, 1], "dst.m": [1, 2, 3]}, seeds=[0, 1]), "grid"),
    (sweep(list=[{"dst.m": 1.0}] + [{"dst.m": float(i)} for i in range(2, 8)]), "list"),
    (sweep(random={"dst.m": {"min": 1, "max": 2}}, budget=11, baseline=True), "budget"),
])
def test_cap_is_checked_before_anything_is_built(spec, mode):
    spec["base"] = {"train": {"lr": -1.0}}  # would fail validation if any config were built
    n = count_runs(spec)
    with pytest.raises(SweepSpecError) as err:
        expand(spec, max_runs=n - 1)
    assert err.value.field == mode
    assert f"expands to {n} runs; this server allows {n - 1}" in err.value.message


def test_invalid_value_names_the_sweep_key_and_the_value():
    with pytest.raises(SweepSpecError) as err:
        expand(sweep(grid={"activations.r": [0.5, 7]}))
    assert err.value.field == "grid.activations.r"
    assert err.value.message == "value 7 is invalid for activations.r: Input should be less than or equal to 4"
    with pytest.raises(SweepSpecError) as err:
        expand(sweep(list=[{"weights.N": 1}, {"activations.window": "box"}]))
    assert err.value.field == "list.1.activations.window" and '"box"' in err.value.message
    with pytest.raises(SweepSpecError) as err:
        expand(sweep(random={"weights.N": {"min": 0.5, "max": 2.5}}, budget=3))
    assert err.value.field == "random.weights.N" and "valid integer" in err.value.message


def test_invalid_base_is_reported_as_base():
    with pytest.raises(SweepSpecError) as err:
        expand({"name": "s", "base": {"train": {"lr": 0}}, "grid": {"activations.r": [0.5]}})
    assert err.value.field == "base.train.lr"
    with pytest.raises(SweepSpecError) as err:
        expand({"name": "s", "base": {"train": {"seed": -1}}, "grid": {"activations.r": [0.5]}})
    assert err.value.field == "base.train.seed"


@pytest.mark.parametrize("spec,field,text", [
    (sweep(grid={"activations.foo": [1]}), "grid.activations.foo", "unknown config field"),
    (sweep(list=[{"model.depth": 3}]), "list.0.model.depth", "unknown config field"),
    (sweep(random={"optimizer": {"choices": ["sgd"]}}, budget=1), "random.optimizer", "unknown config field"),
    (sweep(grid={"activations": [{}]}), "grid.activations", "section"),
    (sweep(grid={"train.seed": [0, 1]}), "grid.train.seed", "seeds"),
    (sweep(list=[{"train.seed": 1}]), "list.0.train.seed", "seeds"),
    (sweep(grid={"name": ["a"]}), "grid.name", ""),
    (sweep(grid={"project": ["a"]}), "grid.project", ""),
])
def test_fields_that_cannot_be_swept(spec, field, text):
    with pytest.raises(SweepSpecError) as err:
        expand(spec)
    assert err.value.field == field and text in err.value.message


@pytest.mark.parametrize("spec,field", [
    (sweep(grid={"dst.m": [1]}, list=[{"dst.m": 1}]), "list"),
    (sweep(grid={"dst.m": [1]}, random={"dst.m": {"min": 1, "max": 2}}, budget=2), "random"),
    (sweep(), "grid"),
    (sweep(random={"dst.m": {"min": 1, "max": 2}}), "budget"),
    (sweep(grid={"dst.m": [1]}, budget=3), "budget"),
    (sweep(grid={"dst.m": []}), "grid.dst.m"),
    (sweep(grid={f"dst.{k}": [1] for k in ("m", "optimizer")} | {"train.lr": [1], "train.epochs": [1],
                                                                     "weights.N": [1]}), "grid"),
    (sweep(grid={"dst.m": [1]}, seeds=[0, 0]), "seeds"),
    (sweep(grid={"dst.m": [1]}, seeds=[-1]), "seeds.0"),
    (sweep(list=[{"dst.m": 1.0}, {"dst.m": 1.0}]), "list.1"),
    (sweep(random={"dst.m": {"min": "a", "max": 2}}, budget=2), "random.dst.m.min"),
    (sweep(random={"dst.m": {"min": 3, "max": 2}}, budget=2), "random.dst.m.max"),
    (sweep(random={"dst.m": {"min": 0, "max": 2, "log": True}}, budget=2), "random.dst.m.min"),
    (sweep(random={"dst.m": {"max": 2}}, budget=2), "random.dst.m.min"),
    (sweep(random={"weights.N": {"min": 0, "max": 2.5, "int": True}}, budget=2), "random.weights.N.max"),
    (sweep(random={"dst.m": {"min": 1, "max": 2, "choices": [1]}}, budget=2), "random.dst.m"),
    (sweep(grid={"dst.m": [1]}, colour="red"), "colour"),
    ({"base": {}, "grid": {"dst.m": [1]}}, "name"),
])
def test_bad_specs_are_config_errors_naming_the_key(spec, field):
    with pytest.raises(SweepSpecError) as err:
        expand(spec)
    assert err.value.field == field


def test_grid_with_two_modes_is_refused():
    with pytest.raises(SweepSpecError) as err:
        parse_spec(sweep(grid={"activations.r": [0]}, list=[{"activations.r": 0.5}]))
    assert "exactly one of grid, list or random" in err.value.message


def _summary(best_val, test, sparsity=None):
    return {"best_val_error": best_val, "test_error": test, "activation_sparsity": sparsity,
            "gate_event_rate": 0.5, "weight_sparsity": 0.25}


def test_aggregate_mean_and_sample_std_per_group():
    points = expand(sweep(grid={"activations.r": [0.25, 1.0]}, seeds=[0, 1, 2], baseline=True))
    as_dicts = [{"index": p.index, "group": p.group, "overrides": p.overrides, "seed": p.seed} for p in points]
    results = {
        0: _summary(0.10, 0.12, 0.3), 1: _summary(0.20, 0.15, None), 2: _summary(0.60, 0.18, 0.5),
        3: _summary(0.05, 0.07, 0.4), 4: None,  # group 1: one finished run, one unfinished, one missing
        6: None, 7: None, 8: None,  # baseline not finished
    }
    for pts in (points, as_dicts):
        rows = aggregate(pts, results)
        assert [r["group"] for r in rows] == [0, 1, 2]
        g0, g1, fp = rows
        assert g0["overrides"] == {"activations.r": 0.25} and g0["seeds"] == [0, 1, 2]
        assert (g0["n"], g0["n_done"]) == (3, 3)
        assert g0["metrics"]["best_val_error"]["mean"] == pytest.approx(np.mean([0.1, 0.2, 0.6]))
        assert g0["metrics"]["best_val_error"]["std"] == pytest.approx(np.std([0.1, 0.2, 0.6], ddof=1))
        assert g0["metrics"]["test_error"]["std"] == pytest.approx(statistics.stdev([0.12, 0.15, 0.18]))
        assert g0["metrics"]["activation_sparsity"] == {"mean": pytest.approx(0.4), "std": pytest.approx(
            math.sqrt(0.02)), "n": 2}
        assert (g1["n"], g1["n_done"]) == (3, 1)
        assert g1["metrics"]["test_error"] == {"mean": 0.07, "std": 0.0, "n": 1}
        assert fp["overrides"] == BASELINE_OVERRIDES and fp["n_done"] == 0
        assert all(fp["metrics"][m] == {"mean": None, "std": None, "n": 0} for m in METRICS)
        assert swept_fields(rows) == ["activations.r"]


def test_pareto_front_minimises_both_and_keeps_ties():
    pts = [(0.3, 0.1), (0.1, 0.5), (0.2, 0.2), (0.2, 0.3), (0.4, 0.1), (0.1, 0.5), (0.05, 0.9), (0.5, 0.05),
           (math.nan, 0.0)]
    #       front      front      front      dominated  dominated  tie: front front      front
    assert pareto_front(pts) == [6, 1, 5, 2, 0, 7]
    assert pareto_front([]) == []
    assert pareto_front([(1.0, 1.0)]) == [0]


def test_to_csv_header_and_rows():
    points = [SweepPoint(index=i, group=i // 2, overrides=ov, seed=i % 2, config=ExperimentConfig())
              for i, ov in enumerate([{"activations.r": 0.5}] * 2 + [BASELINE_OVERRIDES] * 2)]
    rows = aggregate(points, {0: _summary(0.1, 0.2, 0.3), 1: _summary(0.3, 0.4, 0.5), 2: None})
    text = to_csv(rows, ["activations.r"])
    lines = text.splitlines()
    assert lines[0].startswith("activations.r,n,n_done,best_val_error_mean,best_val_error_std,test_error_mean,"
                               "test_error_std,activation_sparsity_mean,activation_sparsity_std,gate_event_rate_mean,"
                               "gate_event_rate_std,weight_sparsity_mean,weight_sparsity_std")
    # then every other run metric of the catalog, in its order (gxnor_core.metrics)
    assert lines[0].split(",")[3:] == [f"{m}_{s}" for m in METRICS for s in ("mean", "std")]
    cells = lines[1].split(",")
    assert cells[:3] == ["0.5", "2", "2"]
    assert [float(c) for c in cells[3:5]] == pytest.approx([0.2, statistics.stdev([0.1, 0.3])])
    assert [float(c) for c in cells[9:13]] == [0.5, 0.0, 0.25, 0.0]
    assert lines[2] == ",2,0" + ",," * len(METRICS)
    assert text.endswith("\n") and len(lines) == 3
