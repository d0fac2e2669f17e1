"""A sweep's parallel coordinates and the launch form's cost estimate, in a real browser against a real `gxnor up`
whose team budget is 5 s of queued work (GXNOR_TEAM_MAX_QUEUED_SECONDS), so that a longer sweep warns before launch.
Screenshots go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import json

import pytest

from gxnor_core.metrics import PARETO, run_metric

from .conftest import gxnor_up, shoot, wait_sweep

pytestmark = pytest.mark.slow

BUDGET_S = 5
TOTAL = "document.querySelector('#sweep-estimate-total')"
PLOT = "document.querySelector('#sweep-plot-parcoords')"
DIMS_JS = """() => {
  const data = document.querySelector('#sweep-plot-parcoords')?.data;
  const t = data?.[0];
  return t ? {meta: t.meta, color: t.meta.color, dims: t.meta.dims, lines: data.length,
              ys: data.map((d) => Array.from(d.y))} : null;
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory, datasets_dir):
    """The conftest's server with a small queued-work budget per team."""
    with gxnor_up(tmp_path_factory.mktemp("parcoords"), datasets_dir,
                  GXNOR_TEAM_MAX_QUEUED_SECONDS=str(BUDGET_S)) as base:
        yield base


def test_the_launch_form_shows_the_estimate_and_warns_over_the_team_budget(page, server, api):
    page.goto(f"{server}/#/new?preset=quick")
    page.wait_for_selector("#new-run-form")
    assert page.is_hidden("#sweep-estimate")  # one run: no sweep estimate
    page.fill("#f-name", "estimated")
    page.fill("#f-train-epochs", "2")
    page.click("[data-vary='activations.r']")
    page.fill("#f-activations-r-values", "0, 1")
    page.fill("#f-sweep-seeds", "0")
    body = json.loads(page.text_content("details.preview pre"))  # the request the form sends
    body.pop("team", None)
    expected = api.post("/api/v1/estimate", json={"sweep": body}).json()
    assert expected["runs"] == 2 and expected["team"]["fits"]
    total = page.locator("#sweep-estimate-total")
    total.wait_for()
    page.wait_for_function(f"() => {TOTAL}.textContent.includes('2 runs, 4 epochs')")
    kinds = page.locator("#sweep-estimate-kinds li")
    assert kinds.count() == len(expected["kinds"]) == 1
    assert kinds.get_attribute("data-source") == expected["kinds"][0]["source"] == "default table"
    assert "(default table)" in kinds.text_content() and "mlp on digits" in kinds.text_content()
    team = expected["team"]["name"]
    assert page.text_content("#sweep-estimate-team").startswith(f"Team {team} now: 0 runs queued")
    assert page.locator("#sweep-estimate-warning").count() == 0
    shoot(page, "sweep-estimate")

    page.fill("#f-train-epochs", "40")  # 2 × 40 epochs at the default rate: over the 5 s budget
    warning = page.locator("#sweep-estimate-warning")
    warning.wait_for()
    body = json.loads(page.text_content("details.preview pre"))
    body.pop("team", None)
    assert api.post("/api/v1/estimate", json={"sweep": body}).json()["team"]["fits"] is False
    assert f"exceed team {team}'s budget" in warning.text_content() and "budget of 5.0 s" in warning.text_content()
    page.wait_for_function(f"() => {TOTAL}.textContent.includes('80 epochs')")
    page.fill("#f-train-epochs", "2")  # back under: the warning goes
    warning.wait_for(state="detached")


def test_the_sweep_page_draws_parallel_coordinates_of_the_swept_fields_and_a_metric(page, server, api):
    spec = {"name": "parcoords", "base": {"model": {"hidden": [16]}, "train": {"epochs": 2, "batch_size": 200}},
            "grid": {"activations.r": [0.5, 1.0], "activations.window": ["rect", "tri"]}, "seeds": [0]}
    resp = api.post("/api/v1/sweeps", json=spec)
    assert resp.status_code == 201, resp.text
    sweep = wait_sweep(api, resp.json()["id"], timeout=120)
    assert sweep["counts"]["succeeded"] == 4
    detail = api.get(f"/api/v1/sweeps/{sweep['id']}").json()

    page.goto(f"{server}/#/sweeps/{sweep['id']}")
    page.wait_for_function(f"() => {PLOT}?.data?.[0]?.meta?.metric === {PARETO['y']!r}")
    got = page.evaluate(DIMS_JS)
    runs = {r["id"]: r for r in detail["runs"]}
    order = got["meta"]["runs"]
    assert sorted(order) == sorted(runs)
    error = run_metric(PARETO["y"])
    assert [d["label"] for d in got["dims"]] == ["activations.r", "activations.window", error.short]
    r_dim, window_dim, metric_dim = got["dims"]
    assert r_dim["values"] == [runs[i]["overrides"]["activations.r"] for i in order] and r_dim["ticktext"] is None
    assert window_dim["ticktext"] == ["rect", "tri"]  # a field of choices: its values at ticks, in the grid's order
    assert window_dim["values"] == [["rect", "tri"].index(runs[i]["overrides"]["activations.window"]) for i in order]
    assert metric_dim["values"] == pytest.approx([runs[i]["summary"][PARETO["y"]] for i in order])
    assert got["color"] == metric_dim["values"]  # coloured by the metric
    assert got["lines"] == len(order)  # one line per run, each axis scaled to [0, 1] (lowest value at 0)
    lo, hi = min(metric_dim["values"]), max(metric_dim["values"])
    assert [y[-1] for y in got["ys"]] == pytest.approx([(v - lo) / (hi - lo) for v in metric_dim["values"]])
    assert [y[1] for y in got["ys"]] == window_dim["values"]  # two choices: at 0 and 1
    shoot(page, "sweep-parcoords")

    page.select_option("#sweep-parcoords-metric", "activation_sparsity")
    page.wait_for_function(f"() => {PLOT}.data[0].meta.metric === 'activation_sparsity'")
    got = page.evaluate(DIMS_JS)
    assert got["dims"][-1]["label"] == run_metric("activation_sparsity").short
    expect = [runs[i]["summary"]["activation_sparsity"] for i in got["meta"]["runs"]]
    assert got["dims"][-1]["values"] == pytest.approx(expect)
