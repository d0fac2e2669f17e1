"""The XNOR-layer figures and the operation-type cost model (docs/METRICS.md; docs/METHOD.md §4 and §6).

- The ``xnor_*`` figures (and the whole-network gate-event rate, null without XNOR layers) equal a brute-force
  recount: every tap of every layer visited by loops, the XNOR layers told from the config, not the records.
- The cost model's counts equal a hand count for a tiny fully connected and a tiny convolutional network, and
  for real networks the full-precision, BWN, TWN and BNN counts follow from their definitions.
- Through the API (SQLite and PostgreSQL): a run trained by the worker reports them, ``/costs`` answers for it
  (404 for another team), compare carries the totals; migration 0008 gives runs stored before them the same
  values, recounted from their layer records, and takes them away again on downgrade.
"""

from __future__ import annotations

import itertools
import json
import math
from collections import OrderedDict
from contextlib import nullcontext
from datetime import UTC, datetime

import pytest
import torch
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import MetaData, create_engine, insert, text
from torch import nn

from app.db import alembic_config
from app.main import create_app
from app.schemas import CompareOut, CostsOut
from app.settings import Settings
from gxnor_core import DiscreteConv2d, DiscreteLinear, DiscreteSpace, MultiStepActivation, build_model
from gxnor_core.config import validate_config
from gxnor_core.costs import SCHEMES, EnergyTable, Shape, run_costs, shapes
from gxnor_core.layers import StepActivation, layer_weight
from gxnor_core.metrics import network_metrics
from gxnor_core.models import GXNORNet
from gxnor_core.probes import probe
from tests.pg import fresh_database
from worker.runner import execute_run

XNOR_FIGURES = ("xnor_gate_event_rate", "xnor_activation_sparsity", "xnor_events_per_sample")
# Distinct prices, so that an operation priced with another's entry shows.
TABLE = EnergyTable(fp32_mult_pj=5.0, fp32_add_pj=3.0, int8_add_pj=2.0, xnor_pj=7.0, memory_read_64bit_pj=16.0)


# ---------------------------------------------------------------- brute force

def _inputs(model: GXNORNet, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Each weight layer's input, by one forward pass with hooks (not the probe's code)."""
    seen: dict[str, torch.Tensor] = {}
    layers = model.weight_layers()
    hooks = [layer.register_forward_hook(lambda _m, inp, _o, name=name: seen.__setitem__(name, inp[0]))
             for name, layer in layers.items()]
    model.eval()
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return seen


def _taps(layer: nn.Module, x: torch.Tensor, w: torch.Tensor) -> dict[str, float]:
    """Per sample (mean over x): every tap visited by loops — dense taps, taps on padding, taps whose weight and
    input are both non-zero, taps with a non-zero weight; and the input's values and zeros."""
    n = x.shape[0]
    xs, ws = x.tolist(), w.tolist()
    dense = padded = both = nonzero_w = 0
    if isinstance(layer, DiscreteConv2d | nn.Conv2d):
        p = layer.padding if isinstance(layer.padding, int) else layer.padding[0]
        c_out, c_in, k, _ = w.shape
        h, wd = x.shape[2], x.shape[3]
        for b, o, i, j, c, u, v in itertools.product(range(n), range(c_out), range(h + 2 * p - k + 1),
                                                      range(wd + 2 * p - k + 1), range(c_in), range(k), range(k)):
            dense += 1
            weight = ws[o][c][u][v]
            nonzero_w += weight != 0
            r, s = i + u - p, j + v - p
            if not (0 <= r < h and 0 <= s < wd):
                padded += 1
            elif weight != 0 and xs[b][c][r][s] != 0:
                both += 1
    else:
        for b, o, i in itertools.product(range(n), range(w.shape[0]), range(w.shape[1])):
            dense += 1
            nonzero_w += ws[o][i] != 0
            both += ws[o][i] != 0 and xs[b][i] != 0
    values = x[0].numel()
    return {"macs": dense / n, "padded": padded / n, "events": both / n, "nonzero_w": nonzero_w / n,
            "values": values, "sparsity": float((x == 0).sum()) / (values * n)}


def _brute(model: GXNORNet, x: torch.Tensor) -> OrderedDict[str, dict[str, float]]:
    inputs = _inputs(model, x)
    return OrderedDict((name, _taps(layer, inputs[name], layer_weight(layer)))
                       for name, layer in model.weight_layers().items())


CONFIGS = {
    "ternary mlp": {"model": {"hidden": [16, 12]}},
    "padded cnn": {"model": {"arch": "cifar_vgg", "width": 0.02}},
    "binary (BNN-like)": {"model": {"hidden": [16]}, "weights": {"N": 0}, "activations": {"N": 0}},
    "five levels": {"model": {"hidden": [16]}, "weights": {"N": 2}, "activations": {"N": 2}},
    "full precision": {"model": {"hidden": [16]}, "weights": {"discrete": False}, "activations": {"discrete": False}},
    "ternary weights, ReLU": {"model": {"hidden": [16]}, "activations": {"discrete": False}},
    "float weights, ternary activations": {"model": {"hidden": [16]}, "weights": {"discrete": False}},
}


def _model(cfg: dict, seed: int = 0) -> tuple[GXNORNet, torch.Tensor]:
    config = validate_config(cfg)
    torch.manual_seed(seed)
    model = build_model(config)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(3, *((1, 8, 8)), generator=gen)
    x[torch.rand(x.shape, generator=gen) < 0.3] = 0.0  # real input with zeros (a dark background)
    return model, x


def _bits(levels: int | None) -> int:
    return 32 if levels is None else math.ceil(math.log2(levels))


@pytest.mark.parametrize("name", list(CONFIGS))
def test_xnor_figures_and_every_schemes_counts_follow_from_a_brute_force_count(name):
    cfg = validate_config(CONFIGS[name])
    model, x = _model(CONFIGS[name])
    records = probe(model, x)
    brute = _brute(model, x)
    names = list(brute)
    gated = cfg.weights.discrete and cfg.activations.discrete
    xnor = names[1:] if gated else []  # the config says which layers are XNOR layers: all but the first

    got = network_metrics(records.values())
    if xnor:
        macs = sum(brute[n]["macs"] for n in xnor)
        assert got["xnor_gate_event_rate"] == pytest.approx(sum(brute[n]["events"] for n in xnor) / macs)
        assert got["xnor_activation_sparsity"] == pytest.approx(
            sum(brute[n]["sparsity"] * brute[n]["macs"] for n in xnor) / macs)
        assert got["xnor_events_per_sample"] == pytest.approx(sum(brute[n]["events"] for n in xnor))
        assert got["gate_event_rate"] == pytest.approx(
            sum(b["events"] for b in brute.values()) / sum(b["macs"] for b in brute.values()))
    else:  # no gates: never a gate-event figure (the events are non-zero multiplies)
        assert all(got[k] is None for k in (*XNOR_FIGURES, "gate_event_rate")), got
        assert got["activation_sparsity"] is not None

    geometry = shapes(cfg)
    for n, b in brute.items():
        assert (geometry[n].macs, geometry[n].padded_macs, geometry[n].input_values) == (b["macs"], b["padded"],
                                                                                          b["values"])
    out = run_costs(list(records.values()), geometry, TABLE)
    assert [s["name"] for s in out["schemes"]] == [s.name for s in SCHEMES]
    by = {s["name"]: {row["layer"]: row for row in s["layers"]} for s in out["schemes"]}
    w_levels = 2 ** cfg.weights.N + 1 if cfg.weights.discrete else None
    a_levels = (2 if cfg.activations.N == 0 else 2 ** cfg.activations.N + 1) if cfg.activations.discrete else None
    for i, (n, b) in enumerate(brute.items()):
        macs, nw = b["macs"], layer_weight(model.weight_layers()[n]).numel()
        x_levels = None if i == 0 else a_levels
        expect = {  # scheme → (xnor, int_add, float_mult, float_add, weight bits, input bits)
            "full_precision": (0, 0, macs, macs, 32, 32),
            "bwn": (0, 0, 0, macs, 1, 32),
            "twn": (0, 0, 0, b["nonzero_w"], 2, 32),
            "bnn": (0, 0, 0, macs, 1, 32) if i == 0 else (macs, macs, 0, 0, 1, 1),
        }
        if w_levels is not None and x_levels is not None:  # an XNOR layer: the measured events
            expect["run"] = (b["events"], b["events"], 0, 0, _bits(w_levels), _bits(x_levels))
        elif x_levels is not None:  # float weights, discrete input: gated on the input
            mult = 0 if x_levels <= 3 else b["events"]
            expect["run"] = (0, 0, mult, b["events"], 32, _bits(x_levels))
        elif w_levels is not None:  # real input, discrete weights: zero weights skipped, input dense
            mult = 0 if w_levels <= 3 else b["nonzero_w"]
            expect["run"] = (0, 0, mult, b["nonzero_w"], _bits(w_levels), 32)
        else:
            expect["run"] = (0, 0, macs, macs, 32, 32)
        for scheme, (xn, iadd, fmul, fadd, wbits, xbits) in expect.items():
            row = by[scheme][n]
            executed = fadd if xn == 0 else xn
            assert row["macs"] == macs and row["executed"] == pytest.approx(executed), (scheme, n)
            assert row["resting"] == pytest.approx(macs - executed), (scheme, n)
            assert (row["xnor"], row["int_add"], row["float_mult"], row["float_add"]) == pytest.approx(
                (xn, iadd, fmul, fadd)), (scheme, n)
            assert row["weight_bytes"] == nw * wbits / 8 and row["activation_bytes"] == b["values"] * xbits / 8
            assert row["compute_pj"] == pytest.approx(xn * 7.0 + iadd * 2.0 + fmul * 5.0 + fadd * 3.0)
            assert row["energy_pj"] == pytest.approx(row["compute_pj"] + (nw * wbits + b["values"] * xbits) / 4)
    for s in out["schemes"]:
        for key in ("macs", "executed", "resting", "xnor", "float_add", "weight_bytes", "energy_pj"):
            assert s["total"][key] == pytest.approx(sum(row[key] for row in s["layers"])), (s["name"], key)
        assert s["total"]["resting_fraction"] == pytest.approx(s["total"]["resting"] / s["total"]["macs"])
    fp = out["schemes"][1]["total"]["energy_pj"]
    assert [s["total"]["energy_vs_full_precision"] for s in out["schemes"]] == pytest.approx(
        [s["total"]["energy_pj"] / fp for s in out["schemes"]])


# ---------------------------------------------------------------- hand counts

def _identity_bn(bn: nn.Module) -> nn.Module:
    bn.eval()
    bn.running_mean.zero_()
    bn.running_var.fill_(1.0)
    return bn


def _net(first: nn.Module, second: nn.Module, bn1: nn.Module, bn2: nn.Module) -> GXNORNet:
    phi = StepActivation(MultiStepActivation(N=1, r=0.5))  # ternary: |x| ≤ 0.5 → 0
    return GXNORNet(OrderedDict([("l1", nn.Sequential(first, _identity_bn(bn1), phi)),
                                 ("l2", nn.Sequential(second, _identity_bn(bn2)))]))


def _ternary(layer, values) -> None:
    layer.state.copy_(torch.tensor(values, dtype=torch.int64).view(layer.state.shape) + 1)  # −1, 0, 1 → 0, 1, 2


def _check(out: dict, expect: dict) -> None:
    by = {s["name"]: {row["layer"]: row for row in s["layers"]} for s in out["schemes"]}
    for (scheme, layer), counts in expect.items():
        row = by[scheme][layer]
        assert {k: row[k] for k in counts} == pytest.approx(counts), (scheme, layer)


def test_a_tiny_fully_connected_network_counts_as_by_hand():
    space = DiscreteSpace(1)
    fc1, fc2 = DiscreteLinear(4, 3, space), DiscreteLinear(3, 2, space)
    _ternary(fc1, [[1, 0, -1, 0], [0, 0, 0, 1], [-1, 1, 0, 0]])  # 5 non-zero weights of 12
    _ternary(fc2, [[1, 1, 0], [0, -1, -1]])  # 4 of 6
    model = _net(fc1, fc2, nn.BatchNorm1d(3, eps=1e-4), nn.BatchNorm1d(2, eps=1e-4))
    # fc1 = W1·x = (3, 0.25, −1) → φ → h = (1, 0, −1): fc2's input, one zero in three
    records = probe(model, torch.tensor([[1.0, 0.0, -2.0, 0.25]]))
    # events: fc1 rows 2 + 1 + 1 (x₁ = 0 closes one), fc2 rows 1 + 1 (h₁ = 0 closes two)
    assert (records["l1"]["events"], records["l2"]["events"]) == (4, 2)
    assert records["l2"]["activation_sparsity"] == pytest.approx(1 / 3)
    got = network_metrics(records.values())
    assert (got["xnor_gate_event_rate"], got["xnor_events_per_sample"]) == pytest.approx((2 / 6, 2))
    assert got["xnor_activation_sparsity"] == pytest.approx(1 / 3) and got["gate_event_rate"] == pytest.approx(6 / 18)

    out = run_costs(list(records.values()), {"l1": Shape(4, 12, 0), "l2": Shape(3, 6, 0)}, TABLE)
    _check(out, {
        # this run: l1 sees real input (5 float adds on the non-zero weights); l2 is an XNOR layer (2 events)
        ("run", "l1"): {"executed": 5, "resting": 7, "float_add": 5, "xnor": 0, "weight_bytes": 3,
                        "activation_bytes": 16},
        ("run", "l2"): {"executed": 2, "resting": 4, "xnor": 2, "int_add": 2, "float_add": 0, "weight_bytes": 1.5,
                        "activation_bytes": 0.75},
        ("full_precision", "l1"): {"float_mult": 12, "float_add": 12, "weight_bytes": 48, "activation_bytes": 16},
        ("full_precision", "l2"): {"float_mult": 6, "float_add": 6, "weight_bytes": 24, "activation_bytes": 12},
        ("bwn", "l2"): {"float_add": 6, "float_mult": 0, "resting": 0, "weight_bytes": 0.75},
        ("twn", "l1"): {"float_add": 5, "resting": 7},
        ("twn", "l2"): {"float_add": 4, "resting": 2, "weight_bytes": 1.5, "activation_bytes": 12},
        ("bnn", "l1"): {"float_add": 12, "xnor": 0, "activation_bytes": 16},
        ("bnn", "l2"): {"xnor": 6, "int_add": 6, "resting": 0, "activation_bytes": 0.375},
    })
    run, fp = out["schemes"][0]["total"], out["schemes"][1]["total"]
    # compute: 5 float adds × 3 + 2 × (XNOR 7 + add 2); memory: (3 + 16 + 1.5 + 0.75) bytes × 16/8 pJ
    assert (run["compute_pj"], run["memory_pj"], run["energy_pj"]) == pytest.approx((33, 42.5, 75.5))
    # full precision: 18 × (5 + 3); (72 + 28) bytes × 2
    assert (fp["compute_pj"], fp["memory_pj"], fp["energy_pj"]) == pytest.approx((144, 200, 344))
    assert run["energy_vs_full_precision"] == pytest.approx(75.5 / 344)
    assert run["resting_fraction"] == pytest.approx(11 / 18)


def test_a_tiny_padded_convolutional_network_counts_as_by_hand():
    space = DiscreteSpace(1)
    c1, c2 = DiscreteConv2d(1, 1, 3, space, padding=1), DiscreteConv2d(1, 1, 3, space, padding=1)
    _ternary(c1, [[0, 1, 0], [1, 0, 1], [0, 1, 0]])  # the four neighbours: 4 non-zero weights of 9
    _ternary(c2, [[1, 0, 0], [0, -1, 0], [0, 0, 1]])  # the diagonal: 3 of 9
    model = _net(c1, c2, nn.BatchNorm2d(1, eps=1e-4), nn.BatchNorm2d(1, eps=1e-4))
    x = torch.tensor([[[[1.0, 0.0, 2.0], [0.0, -1.0, 0.0], [3.0, 0.0, 0.0]]]])
    # c1 = (0 2 0 / 3 0 1 / 0 2 0): its non-zero neighbours are 3, 3, 2, 2 at the four edge centres → 10 events;
    # φ → h = (0 1 0 / 1 0 1 / 0 1 0); c2's diagonal meets two of h's four values at each edge centre → 8 events.
    # 3×3 outputs × 9 taps = 81 MACs a layer; with padding 1, 7 × 7 = 49 taps land on the input, 32 on padding.
    records = probe(model, x)
    assert (records["l1"]["events"], records["l2"]["events"], records["l1"]["macs"]) == (10, 8, 81)
    assert records["l1"]["activation_sparsity"] == records["l2"]["activation_sparsity"] == pytest.approx(5 / 9)
    got = network_metrics(records.values())
    assert (got["xnor_gate_event_rate"], got["xnor_events_per_sample"]) == pytest.approx((8 / 81, 8))
    assert got["gate_event_rate"] == pytest.approx(18 / 162)

    out = run_costs(list(records.values()), {"l1": Shape(9, 81, 32), "l2": Shape(9, 81, 32)}, TABLE)
    assert [(row["layer"], row["type"], row["padded_macs"]) for row in out["layers"]] == [
        ("l1", "real_input", 32), ("l2", "xnor", 32)]
    _check(out, {
        # l1: every one of the 9 outputs adds its 4 neighbours (padding included): 36 float adds, 45 rest
        ("run", "l1"): {"executed": 36, "resting": 45, "float_add": 36, "weight_bytes": 2.25, "activation_bytes": 36},
        # l2: 8 gates open; the other 73 taps rest (the 32 padded ones among them)
        ("run", "l2"): {"executed": 8, "resting": 73, "xnor": 8, "int_add": 8, "activation_bytes": 2.25},
        ("twn", "l2"): {"float_add": 27, "resting": 54},
        ("bnn", "l2"): {"xnor": 81, "int_add": 81, "resting": 0, "activation_bytes": 9 / 8},
        ("full_precision", "l2"): {"float_mult": 81, "float_add": 81, "weight_bytes": 36, "activation_bytes": 36},
    })


# ---------------------------------------------------------------- through the API, and the backfill

ADMIN = "gx_hardware-admin"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
TINY = {"project": "hw", "model": {"hidden": [16]}, "train": {"epochs": 2, "batch_size": 200}}
FULL_PRECISION = {"weights": {"discrete": False}, "activations": {"discrete": False}}


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    with fresh_database("gxnor_hw") if request.param == "postgresql" else nullcontext() as url:
        yield url or f"sqlite:///{tmp_path / 'hw.db'}"


def _recount(records: list[dict]) -> dict:
    """The XNOR-layer figures of one epoch's records, told from their flags: the brute-force recount."""
    xnor = [r for r in records if r["weight_states"] is not None and not r["input_is_real"]]
    if not xnor:
        return {**dict.fromkeys(XNOR_FIGURES), "gate_event_rate": None}
    macs = sum(r["macs"] for r in xnor)
    return {"xnor_gate_event_rate": sum(r["events"] for r in xnor) / macs,
            "xnor_activation_sparsity": sum(r["activation_sparsity"] * r["macs"] for r in xnor) / macs,
            "xnor_events_per_sample": sum(r["events"] for r in xnor),
            "gate_event_rate": sum(r["events"] for r in records) / sum(r["macs"] for r in records)}


def _approx(d: dict) -> dict:
    return {k: (None if v is None else pytest.approx(v, rel=1e-12)) for k, v in d.items()}


@pytest.mark.slow
def test_a_trained_run_reports_xnor_figures_and_its_costs_through_the_api(db_url, tmp_path):
    settings = Settings(data_dir=tmp_path / "data", database_url=db_url, admin_token=ADMIN)
    with TestClient(create_app(settings), headers=AUTH) as c:
        gx = c.post("/api/v1/runs", json={"config": {**TINY, "name": "gxnor"}}).json()["id"]
        fp = c.post("/api/v1/runs", json={"config": {**TINY, **FULL_PRECISION, "name": "fp"}}).json()["id"]
        queued = c.post("/api/v1/runs", json={"config": {**TINY, "name": "later"}}).json()["id"]
        for rid in (gx, fp):
            assert execute_run(rid, settings) == "succeeded"

        for rid in (gx, fp):
            summary = c.get(f"/api/v1/runs/{rid}").json()["summary"]
            epochs = c.get(f"/api/v1/runs/{rid}/metrics").json()["epochs"]
            for e in epochs:
                records = c.get(f"/api/v1/runs/{rid}/layers", params={"epoch": e["epoch"]}).json()["records"]
                assert {k: e[k] for k in _recount(records)} == _approx(_recount(records)), (rid, e["epoch"])
            last = c.get(f"/api/v1/runs/{rid}/layers", params={"epoch": 2}).json()["records"]
            assert {k: summary[k] for k in _recount(last)} == _approx(_recount(last)), rid
        assert c.get(f"/api/v1/runs/{fp}").json()["summary"]["xnor_gate_event_rate"] is None
        ranked = [r["id"] for r in c.get("/api/v1/runs", params={"sort": "xnor_gate_event_rate"}).json()["items"]]
        assert ranked[0] == gx and set(ranked[1:]) == {fp, queued}  # no value: last

        body = c.get(f"/api/v1/runs/{gx}/costs").json()
        CostsOut.model_validate(body)
        assert (body["epoch"], body["epochs_done"]) == (2, 2) and body["best_epoch"] in (1, 2)
        records = c.get(f"/api/v1/runs/{gx}/layers", params={"epoch": 2}).json()["records"]
        assert [(r["layer"], r["type"]) for r in body["layers"]] == [("fc1", "real_input"), ("fc2", "xnor")]
        assert body["schemes"][0]["name"] == "run" and all(s["assumption"] for s in body["schemes"])
        run = {row["layer"]: row for row in body["schemes"][0]["layers"]}
        assert run["fc2"]["xnor"] == records[1]["events"] and run["fc2"]["resting"] == records[1]["macs"] - \
            records[1]["events"]
        assert body["energy_table"]["node"].startswith("45 nm") and body["schemes"][0]["total"]["energy_pj"] > 0
        first = c.get(f"/api/v1/runs/{gx}/costs", params={"epoch": 1}).json()
        one = c.get(f"/api/v1/runs/{gx}/layers", params={"epoch": 1}).json()["records"]
        assert first["epoch"] == 1 and first["schemes"][0]["layers"][1]["xnor"] == one[1]["events"]
        assert c.get(f"/api/v1/runs/{gx}/costs", params={"epoch": 3}).status_code == 404
        nothing = c.get(f"/api/v1/runs/{queued}/costs").json()
        assert (nothing["epoch"], nothing["layers"], nothing["schemes"]) == (None, [], [])
        # a full-precision run: dense float multiply-adds, never an XNOR, whatever its ReLU zeros
        fp_costs = c.get(f"/api/v1/runs/{fp}/costs").json()["schemes"][0]["total"]
        assert fp_costs["xnor"] == 0 and fp_costs["float_mult"] == fp_costs["macs"] and fp_costs["resting"] == 0

        assert c.get("/api/v1/compare", params={"ids": f"{gx},{fp},{queued}"}).json()["costs"] == {}  # opt-in
        out = c.get("/api/v1/compare", params={"ids": f"{gx},{fp},{queued}", "costs": "true"}).json()
        CompareOut.model_validate(out)
        assert out["costs"][str(gx)] == {"epoch": 2, "totals": {s["name"]: s["total"] for s in body["schemes"]}}
        assert out["costs"][str(fp)]["epoch"] == 2 and out["costs"][str(queued)] is None

        assert c.post("/api/v1/teams", json={"name": "others"}).status_code == 201
        user = c.post("/api/v1/users", json={"name": "eve", "teams": ["others"]}).json()
        eve = {"Authorization": f"Bearer {user['token']['token']}"}
        assert c.get(f"/api/v1/runs/{gx}/costs", headers=eve).status_code == 404
        assert c.get("/api/v1/compare", params={"ids": str(gx)}, headers=eve).status_code == 404



def _epochs(config: dict, seeds: tuple[int, ...]) -> list[list[dict]]:
    """Layer records of a network at a few states (one per "epoch"), as the trainer stores them."""
    out = []
    for epoch, seed in enumerate(seeds, 1):
        model, x = _model(config, seed)
        recs = [dict(r, epoch=epoch, transitions=None, transition_matrix=None, moves=None)
                for r in probe(model, x).values()]
        out.append(json.loads(json.dumps(recs)))
    return out


def test_migration_0008_recounts_stored_runs_from_their_layer_records(db_url, tmp_path):
    cfg = alembic_config(db_url)
    command.upgrade(cfg, "0007")
    engine = create_engine(db_url)
    runs = {  # id → (config, layer records per epoch)
        1: ({**TINY, "name": "gxnor"}, _epochs({**TINY, "name": "gxnor"}, (0, 1, 2))),
        2: ({**TINY, **FULL_PRECISION, "name": "fp"}, _epochs({**TINY, **FULL_PRECISION}, (3, 4))),
        3: ({**TINY, "activations": {"discrete": False}, "name": "relu"}, _epochs(
            {**TINY, "activations": {"discrete": False}}, (5,))),
    }
    old_rate = {}  # gate_event_rate as revision 0007's catalog stored it: Σ events / Σ macs over every layer
    with engine.begin() as conn:
        md = MetaData()
        md.reflect(conn, only=["runs", "projects", "epoch_metrics", "layer_records", "run_summaries"])
        t = md.tables
        team = conn.execute(text("SELECT id FROM teams WHERE name = 'default'")).scalar()
        now = datetime.now(UTC)
        project = conn.execute(insert(t["projects"]).values(team_id=team, name="hw", created_at=now)
                               .returning(t["projects"].c.id)).scalar()
        common = {"project_id": project, "cancel_requested": False, "attempt": 1, "max_attempts": 3,
                  "progress_epoch": 0, "progress_fraction": 1.0, "created_at": now, "status": "succeeded"}
        for rid, (config, epochs) in runs.items():
            full = validate_config(config).model_dump(mode="json")
            rates = [sum(r["events"] for r in recs) / sum(r["macs"] for r in recs) for recs in epochs]
            old_rate[rid] = rates[-1]
            summary = {"best_val_error": 0.25, "test_error": 0.5, "best_epoch": 1, "gate_event_rate": rates[-1],
                       "activation_sparsity": 0.125}
            conn.execute(insert(t["runs"]).values(id=rid, name=config["name"], config=full, total_epochs=len(epochs),
                                                  epochs_done=len(epochs), summary=summary, **common))
            conn.execute(insert(t["run_summaries"]), [{"run_id": rid, "name": k, "value": float(v)}
                                                      for k, v in summary.items()])
            for e, recs in enumerate(epochs, 1):
                conn.execute(insert(t["epoch_metrics"]).values(run_id=rid, epoch=e, metrics={
                    "epoch": e, "test_error": 0.5, "gate_event_rate": rates[e - 1]}))
                conn.execute(insert(t["layer_records"]), [{"run_id": rid, "epoch": e, "layer": r["layer"], "record": r}
                                                          for r in recs])
        conn.execute(insert(t["runs"]).values(id=4, name="queued", config={}, total_epochs=2, epochs_done=0,
                                              summary=None, **{**common, "status": "queued"}))

    def stored():
        with engine.connect() as conn:
            summaries = {i: (json.loads(s) if s else None) for i, s in
                         conn.execute(text("SELECT id, CAST(summary AS TEXT) FROM runs"))}
            rows = {(i, n): v for i, n, v in conn.execute(text("SELECT run_id, name, value FROM run_summaries"))}
            metrics = {(i, e): json.loads(m) for i, e, m in
                       conn.execute(text("SELECT run_id, epoch, CAST(metrics AS TEXT) FROM epoch_metrics"))}
            layers: dict = {}
            for i, e, r in conn.execute(text("SELECT run_id, epoch, CAST(record AS TEXT) FROM layer_records "
                                             "ORDER BY run_id, epoch, id")):
                layers.setdefault((i, e), []).append(json.loads(r))
        return summaries, rows, metrics, layers

    command.upgrade(cfg, "0008")
    summaries, rows, metrics, layers = stored()
    for rid, (_, epochs) in runs.items():
        for e in range(1, len(epochs) + 1):
            want = _recount(layers[rid, e])  # from the records as stored, read back
            assert {k: metrics[rid, e][k] for k in want} == _approx(want), (rid, e)
        want = _recount(layers[rid, len(epochs)])
        assert {k: summaries[rid][k] for k in want} == _approx(want), rid
        assert summaries[rid]["best_val_error"] == 0.25 and rows[rid, "test_error"] == 0.5  # the rest stays
        for k, v in want.items():
            assert rows.get((rid, k)) == (None if v is None else pytest.approx(v)), (rid, k)
    assert summaries[1]["gate_event_rate"] == old_rate[1]  # a GXNOR network's is unchanged
    assert summaries[1]["xnor_gate_event_rate"] is not None
    assert summaries[2]["gate_event_rate"] is None and summaries[3]["gate_event_rate"] is None  # no gates
    assert summaries[4] is None

    with TestClient(create_app(Settings(data_dir=tmp_path / "data", database_url=db_url, admin_token=ADMIN)),
                    headers=AUTH) as c:  # the API serves the backfilled figures, and counts the stored run
        assert c.get("/api/v1/runs/1").json()["summary"]["xnor_gate_event_rate"] == pytest.approx(
            summaries[1]["xnor_gate_event_rate"])
        costs = c.get("/api/v1/runs/1/costs").json()
        assert costs["epoch"] == 3 and costs["schemes"][0]["layers"][1]["xnor"] == layers[1, 3][1]["events"]
        assert costs["schemes"][0]["total"]["energy_pj"] is not None  # the stored config gives the shape

    command.downgrade(cfg, "0007")
    summaries, rows, metrics, _ = stored()
    for rid in runs:
        assert not set(XNOR_FIGURES) & set(summaries[rid]) and not {(rid, k) for k in XNOR_FIGURES} & set(rows)
        assert summaries[rid]["gate_event_rate"] == pytest.approx(old_rate[rid]) == rows[rid, "gate_event_rate"]
        assert all(not set(XNOR_FIGURES) & set(m) for (i, _), m in metrics.items() if i == rid)
    command.upgrade(cfg, "head")
    engine.dispose()
