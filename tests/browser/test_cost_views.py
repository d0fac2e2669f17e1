"""The cost model in the browser (docs/METHOD.md §6): the run page's cost panel, fetched only when opened, and
compare's cost table — every scheme labelled and with its assumption from /catalog, every count the API's —
and runs without an XNOR layer (full precision; one discrete layer that sees the data) shown honestly: "—"
for the XNOR-layer and gate figures in cards, the runs list and compare, the whole-network figures labelled as
such, and their non-zero multiplies never called gate events."""

from __future__ import annotations

import math
import re
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from .conftest import shoot

pytestmark = pytest.mark.slow

TINY = {"project": "costs-ui", "model": {"hidden": [16]}, "train": {"epochs": 2, "batch_size": 200}}
FULL_PRECISION = {"weights": {"discrete": False}, "activations": {"discrete": False}}
XNOR_FIGURES = ("xnor_gate_event_rate", "xnor_activation_sparsity", "xnor_events_per_sample")
COUNTS = ("executed", "resting", "xnor", "int_add", "float_mult", "float_add", "weight_bytes", "activation_bytes",
          "energy_pj")


def _finished(api, ids: list[int], timeout: float = 180) -> None:
    deadline = time.time() + timeout
    for run_id in ids:
        while (status := api.get(f"/api/v1/runs/{run_id}").json()["status"]) != "succeeded":
            assert status in ("queued", "running") and time.time() < deadline, (run_id, status)
            time.sleep(0.3)


@pytest.fixture(scope="module")
def runs(api) -> dict[str, int]:
    """A GXNOR run (fc1 sees the data, fc2 is an XNOR layer), a full-precision one, and one whose only layer is
    discrete but sees the data (no XNOR layer)."""
    configs = {"gxnor": {**TINY, "name": "gxnor"},
               "fp": {**TINY, **FULL_PRECISION, "name": "full precision"},
               "solo": {**TINY, "model": {"hidden": []}, "name": "one layer"}}
    ids = {}
    for key, config in configs.items():
        resp = api.post("/api/v1/runs", json={"config": config})
        assert resp.status_code == 201, resp.text
        ids[key] = resp.json()["id"]
    _finished(api, list(ids.values()))
    return ids


def _count(title: str | None) -> float:
    """A cell's exact value from its tooltip: "1,234" or "1,234.57 pJ"."""
    assert title, "no exact value in the tooltip"
    return float(title.removesuffix(" pJ").replace(",", ""))


def _close(title: str | None, value: float) -> bool:
    return math.isclose(_count(title), value, abs_tol=0.5 if title and not title.endswith("pJ") else 0.01)


def test_the_run_pages_cost_panel_loads_when_opened_and_shows_every_scheme_with_its_assumption(page, server, api,
                                                                                                runs):
    gx = runs["gxnor"]
    cat = api.get("/api/v1/catalog").json()["costs"]
    costs = api.get(f"/api/v1/runs/{gx}/costs").json()
    asked = []
    page.on("request", lambda req: "/api/v1/runs/" in req.url and "/costs" in req.url and asked.append(req.url))

    page.goto(f"{server}/#/runs/{gx}")
    page.locator("#run-cards .card").first.wait_for()
    page.wait_for_function("() => document.querySelector('#chart-hw-events')?.data")
    # The page is drawn without the cost model: closed, nothing fetched.
    assert page.locator("#run-costs").get_attribute("open") is None and not asked
    # Events are gate events only on the XNOR layer; fc1's (real input) are non-zero multiplies.
    names = page.evaluate("() => document.querySelector('#chart-hw-events').data.map((t) => t.name)")
    assert names == ["dense MACs", "gate events (XNOR layers)", "non-zero multiplies (not XNOR layers)"]

    page.click("#run-costs > summary")
    page.locator("#costs-schemes").wait_for()
    assert len(asked) == 1 and parse_qs(urlsplit(page.url).fragment.split("?", 1)[1])["costs"] == ["1"]

    # Every scheme, in the catalog's order, with its label and its assumption beside its numbers.
    rows = page.locator("#costs-schemes tbody tr")
    assert [r.get_attribute("data-scheme") for r in rows.all()] == [s["name"] for s in cat["schemes"]]
    for s, api_scheme in zip(cat["schemes"], costs["schemes"], strict=True):
        row = page.locator(f"#costs-schemes tr[data-scheme='{s['name']}']")
        assert row.locator(".scheme-label").text_content() == s["label"]
        assert row.locator(".assumption").text_content() == s["assumption"]
        for key in COUNTS:
            assert _close(row.locator(f"td[data-count='{key}']").get_attribute("title"), api_scheme["total"][key]), \
                (s["name"], key)
    for key in COUNTS:  # each count's head says what it is, in the catalog's words
        assert page.locator(f"#costs-schemes th[data-count='{key}']").get_attribute("title") == cat["counts"][key]
    # Which epoch, and the denominators.
    basis = page.text_content("#costs-basis")
    assert f"Epoch {costs['epoch']}" in basis and "per sample" in basis and "dense MACs" in basis
    assert f"{int(costs['schemes'][0]['total']['macs']):,}" in basis and "1 of 2 weight layers are XNOR layers" in basis
    # The energy table's source and process node.
    source = page.text_content("#run-costs .energy-source")
    assert cat["energy_table"]["source"] in source and cat["energy_table"]["node"] in source

    # Per layer: the layer's type, and any scheme's counts (here BNN's, with its assumption).
    layers = page.locator("#costs-layers tbody tr")
    assert [(r.get_attribute("data-layer"), r.locator(".badge").text_content()) for r in layers.all()] == [
        ("fc1", "real input"), ("fc2", "XNOR")]
    page.select_option("#costs-layer-scheme", "bnn")
    bnn = next(s for s in costs["schemes"] if s["name"] == "bnn")
    page.wait_for_function("(t) => document.querySelector('#costs-layer-assumption')?.textContent === t",
                           arg=bnn["assumption"])
    for i, name in enumerate(("fc1", "fc2")):
        for key in ("xnor", "float_add"):
            cell = page.locator(f"#costs-layers tr[data-layer='{name}'] td[data-count='{key}']")
            assert _close(cell.get_attribute("title"), bnn["layers"][i][key]), (name, key)
    assert page.locator("#costs-layer-energy thead th[data-scheme]").all_text_contents() == [
        s["label"] for s in cat["schemes"]]
    shoot(page, "run-cost-panel")
    assert len(asked) == 1  # the scheme switch is drawn from what was fetched


def test_runs_without_an_xnor_layer_show_dashes_and_no_gate_events_and_compare_counts_their_costs(page, server,
                                                                                                 api, runs):
    gx, fp, solo = runs["gxnor"], runs["fp"], runs["solo"]
    metrics = {m["name"]: m for m in api.get("/api/v1/catalog").json()["metrics"]["run"]}
    cat = api.get("/api/v1/catalog").json()["costs"]
    for rid in (fp, solo):
        summary = api.get(f"/api/v1/runs/{rid}").json()["summary"]
        assert all(summary[k] is None for k in (*XNOR_FIGURES, "gate_event_rate")), summary

    # The full-precision run's page: no gate figure has a value; the whole-network ones say so; its events are
    # non-zero multiplies.
    page.goto(f"{server}/#/runs/{fp}?costs=1")
    page.locator("#run-cards .card").first.wait_for()
    page.wait_for_function("() => document.querySelector('#chart-hw-events')?.data")
    cards = dict(zip(page.locator("#run-cards .card .k").all_text_contents(),
                     page.locator("#run-cards .card .v").all_text_contents(), strict=True))
    for name in (*XNOR_FIGURES, "gate_event_rate"):
        assert cards[metrics[name]["label"]] == "—", name
    assert re.fullmatch(r"\d+\.\d%", cards["Activation sparsity (whole network)"])
    assert all(v == "—" for k, v in cards.items() if "gate event" in k.lower()), cards
    assert cards["Non-zero MACs / inference (whole network)"] != "—"
    names = page.evaluate("() => document.querySelector('#chart-hw-events').data.map((t) => t.name)")
    assert names == ["dense MACs", "non-zero multiplies (not XNOR layers)"]
    # opened by the address; no XNOR layer, so no XNOR operation: dense float multiply-adds
    page.locator("#costs-schemes").wait_for()
    assert "no XNOR layer" in page.text_content("#costs-basis")
    this_run = page.locator("#costs-schemes tr[data-scheme='run']")
    assert this_run.locator("td[data-count='xnor']").text_content() == "0"
    assert this_run.locator("td[data-count='resting_fraction']").text_content() == "0.0%"

    # The runs list: "—" for both runs without XNOR layers; the whole-network column says it is.
    page.goto(f"{server}/#/runs")
    for rid in (gx, fp, solo):
        page.locator(f"tr[data-run='{rid}']").wait_for()
    for name in ("xnor_gate_event_rate", "gate_event_rate"):
        head = page.locator(f"#runs-table th[data-sort='{name}']")
        assert ("XNOR" if name.startswith("xnor") else "whole net") in head.text_content()
        for rid in (fp, solo):
            assert page.text_content(f"tr[data-run='{rid}'] td[data-metric='{name}']") == "—", (rid, name)
        assert page.text_content(f"tr[data-run='{gx}'] td[data-metric='{name}']") != "—"

    # Compare, with its cost table open from the address: the same dashes, and every run's costs per scheme.
    compare = api.get("/api/v1/compare", params={"ids": f"{gx},{fp},{solo}", "costs": "true"}).json()["costs"]
    page.goto(f"{server}/#/compare?ids={gx},{fp},{solo}&costs=1")
    page.locator(f"#compare-runs tr[data-run='{solo}']").wait_for()
    for name in ("xnor_gate_event_rate", "xnor_activation_sparsity", "gate_event_rate"):
        for rid in (fp, solo):
            assert page.text_content(f"#compare-runs tr[data-run='{rid}'] td[data-metric='{name}']") == "—"
    heads = page.locator("#compare-runs thead th").all_text_contents()
    assert metrics["activation_sparsity"]["short"] in heads and "whole net" in metrics["activation_sparsity"]["short"]
    page.locator("#compare-costs-table").wait_for()
    rows = page.locator("#compare-costs-table tbody tr[data-scheme]")
    assert [r.get_attribute("data-scheme") for r in rows.all()] == [s["name"] for s in cat["schemes"]]
    assert [r.locator(".assumption").text_content() for r in rows.all()] == [s["assumption"] for s in cat["schemes"]]
    for s in cat["schemes"]:
        for rid in (gx, fp, solo):
            cell = page.locator(f"#compare-costs-table tr[data-scheme='{s['name']}'] td[data-run='{rid}']")
            assert _close(cell.get_attribute("title"), compare[str(rid)]["totals"][s["name"]]["energy_pj"])
    assert cat["energy_table"]["node"] in page.text_content("#compare-costs .energy-source")
    # another figure: XNORs — none for a run without XNOR layers
    page.select_option("#compare-cost-measure", "xnor")
    page.wait_for_function("() => document.querySelector('#compare-costs-table')?.dataset.measure === 'xnor'")
    for rid in (fp, solo):
        assert page.text_content(f"#compare-costs-table tr[data-scheme='run'] td[data-run='{rid}']") == "0"
    assert _close(page.get_attribute(f"#compare-costs-table tr[data-scheme='run'] td[data-run='{gx}']", "title"),
                  compare[str(gx)]["totals"]["run"]["xnor"])
    assert "cost=xnor" in page.url and "costs=1" in page.url
    shoot(page, "compare-cost-table")
