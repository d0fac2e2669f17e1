"""Compare in a real browser against a real `gxnor up`: runs grouped by sweep point or a config field drawn as mean
± sd bands with n, the wall-time axis, any run metric against any other, run names in the CSV header, and the
searchable run picker.  The runs: a 2-point × 2-seed sweep trained by the server's worker, plus a queued-or-done
run found by search.  Screenshots go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import csv
import statistics

import pytest

from .conftest import click_download, shoot, wait_run

pytestmark = pytest.mark.slow

BASE = {"project": "grouping", "model": {"hidden": [16]}, "train": {"epochs": 3, "batch_size": 200}}
CHART = "document.querySelector('#compare-metric-chart')"
TRACES_JS = """(sel) => {
  const el = document.querySelector(sel);
  if (!el || !el.data) return null;
  return el.data.map((t) => ({name: t.name ?? null, meta: t.meta ?? null, fill: t.fill ?? null,
    x: Array.from(t.x || []), y: Array.from(t.y || []),
    error_y: t.error_y ? Array.from(t.error_y.array || []) : null}));
}"""


def traces(pg, selector: str) -> list[dict]:
    return pg.evaluate(TRACES_JS, selector) or []


@pytest.fixture(scope="module")
def runs(api):
    """The four finished runs of a sweep over activations.r (two seeds each) and the API's comparison of them."""
    spec = {"name": "grouping", "base": BASE, "grid": {"activations.r": [0.25, 1.0]}, "seeds": [0, 1]}
    resp = api.post("/api/v1/sweeps", json=spec)
    assert resp.status_code == 201, resp.text
    ids = resp.json()["run_ids"]
    for run_id in ids:
        assert wait_run(api, run_id)["status"] == "succeeded"
    out = api.get("/api/v1/compare", params={"ids": ",".join(map(str, ids)), "metric": "val_error"}).json()
    return ids, out


def open_compare(page, server, ids, extra: str = "") -> None:
    page.goto(f"{server}/#/compare?ids={','.join(map(str, ids))}&metric=val_error{extra}")
    page.wait_for_function(f"() => document.querySelector('#compare-metric-chart')?.data?.length === {len(ids)}")


def test_grouping_by_sweep_point_draws_mean_and_sd_bands_with_n(page, server, runs):
    ids, out = runs
    open_compare(page, server, ids)
    options = page.locator("#compare-group option").evaluate_all("(os) => os.map((o) => o.value)")
    assert options[:2] == ["", "sweep"] and "activations.r" in options and "train.seed" in options
    page.select_option("#compare-group", "sweep")
    page.wait_for_function(f"() => {CHART}.data.some((t) => t.meta.kind === 'mean')")
    assert "group=sweep" in page.url
    got = traces(page, "#compare-metric-chart")
    means = [t for t in got if t["meta"]["kind"] == "mean"]
    assert [t["meta"]["n"] for t in means] == [2, 2] and all("(n=2)" in t["name"] for t in means)
    by_point = {}
    for r in out["runs"]:
        by_point.setdefault(r["sweep"]["point"], []).append(out["series"][str(r["id"])])
    for t, point in zip(means, sorted(by_point), strict=True):
        series = by_point[point]
        expect = [statistics.fmean(v) for v in zip(*series, strict=True)]
        sd = [statistics.stdev(v) for v in zip(*series, strict=True)]
        assert t["x"] == out["epochs"] and t["y"] == pytest.approx(expect)
        lo, hi = [b for b in got if b["meta"]["group"] == t["meta"]["group"] and b["meta"]["kind"] != "mean"]
        assert lo["meta"]["kind"] == "band-lo" and hi["meta"]["kind"] == "band-hi" and hi["fill"] == "tonexty"
        assert hi["y"] == pytest.approx([m + s for m, s in zip(expect, sd, strict=True)])
        assert lo["y"] == pytest.approx([m - s for m, s in zip(expect, sd, strict=True)])
    # The runs table says each run's group; grouping by the swept field makes the same two groups.
    first = page.locator("#compare-runs td.group").all_text_contents()[0]
    assert first.startswith(f"sweep #{out['runs'][0]['sweep']['id']}")
    page.select_option("#compare-group", "activations.r")
    page.wait_for_function(f"() => {CHART}.data.some((t) => t.meta.kind === 'mean' && t.name.startsWith('r=0.25'))")
    names = [t["name"] for t in traces(page, "#compare-metric-chart") if t["meta"]["kind"] == "mean"]
    assert names == ["r=0.25 (n=2)", "r=1 (n=2)"]
    shoot(page, "compare-grouped")


def test_the_x_axis_switches_to_wall_time(page, server, runs):
    ids, out = runs
    open_compare(page, server, ids)
    page.select_option("#compare-x", "wall")
    page.wait_for_function(f"() => {CHART}.layout.xaxis.title.text.startsWith('wall time')")
    assert "x=wall" in page.url
    got = {t["meta"]["run"]: t for t in traces(page, "#compare-metric-chart")}
    for run_id in ids:
        wall = out["wall_time"][str(run_id)]
        assert got[run_id]["x"] == pytest.approx(wall) and wall == sorted(wall) and wall[0] > 0
        assert got[run_id]["y"] == out["series"][str(run_id)]
    page.reload()  # the address keeps the choice
    page.wait_for_function(f"() => {CHART}?.layout?.xaxis.title.text.startsWith('wall')")
    assert page.input_value("#compare-x") == "wall"


def test_any_run_metric_against_any_other(page, server, runs):
    ids, out = runs
    open_compare(page, server, ids)
    page.wait_for_function("() => document.querySelector('#compare-scatter')?.data?.length === 4")
    page.select_option("#compare-scatter-x", "activation_sparsity")
    page.select_option("#compare-scatter-y", "best_val_error")
    page.wait_for_function("() => document.querySelector('#compare-scatter').layout.xaxis.title.text"
                           ".includes('sparsity')")
    assert "sx=activation_sparsity" in page.url and "sy=best_val_error" in page.url
    summary = {r["id"]: r["summary"] for r in out["runs"]}
    got = traces(page, "#compare-scatter")
    assert sorted(t["meta"]["run"] for t in got) == sorted(ids)
    for t in got:
        assert t["x"] == [summary[t["meta"]["run"]]["activation_sparsity"]]
        assert t["y"] == [summary[t["meta"]["run"]]["best_val_error"]]
    title = page.evaluate("document.querySelector('#compare-scatter').layout.yaxis.title.text")
    assert title == "Best validation error (lower is better)"  # the catalog's label and direction

    page.select_option("#compare-group", "activations.r")  # grouped: each group's mean ± sd
    page.wait_for_function("() => document.querySelector('#compare-scatter').data.length === 2")
    for t in traces(page, "#compare-scatter"):
        r_value = float(t["meta"]["group"][2:])  # "r=0.25"
        members = [summary[r["id"]] for r in out["runs"] if r["config"]["activations"]["r"] == r_value]
        assert t["meta"]["n"] == 2 and t["name"].endswith("(n=2)")
        assert t["y"] == [pytest.approx(statistics.fmean(m["best_val_error"] for m in members))]
        assert t["error_y"] == [pytest.approx(statistics.stdev(m["best_val_error"] for m in members))]


def test_the_csv_header_names_the_runs(page, server, runs, tmp_path):
    ids, out = runs
    open_compare(page, server, ids)
    path = click_download(page, "#export-compare-csv", tmp_path / "compare.csv")
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["epoch", *[f"#{r['id']} {r['name']}" for r in out["runs"]]]
    assert [int(r[0]) for r in rows[1:]] == out["epochs"]
    assert [float(v) for v in rows[1][1:]] == pytest.approx([out["series"][str(i)][0] for i in ids])


def test_the_picker_adds_a_run_found_by_search_and_removes_one(page, server, api, runs):
    ids, _ = runs
    extra = api.post("/api/v1/runs", json={"config": {**BASE, "name": "needle-in-haystack"}})
    assert extra.status_code == 201, extra.text
    extra_id = extra.json()["id"]
    open_compare(page, server, ids[:2])
    assert page.locator("#compare-chosen li").count() == 2
    page.click("#compare-search")
    page.keyboard.type("needle")
    # (focus lists the latest runs at once; the search's answer replaces them)
    page.wait_for_function("() => document.querySelectorAll('#compare-search-list li[role=option]').length === 1")
    option = page.locator("#compare-search-list li[role=option]")
    assert option.get_attribute("data-run") == str(extra_id) and "needle-in-haystack" in option.text_content()
    assert option.locator(".badge").text_content() in ("queued", "running", "succeeded")
    assert "grouping" in option.text_content()  # its project
    page.keyboard.press("ArrowDown")
    assert page.get_attribute("#compare-search", "aria-activedescendant") == f"compare-option-{extra_id}"
    page.keyboard.press("Enter")
    page.wait_for_function(f"() => location.hash.includes('ids={ids[0]},{ids[1]},{extra_id}')")
    page.wait_for_selector(f"#compare-runs tr[data-run='{extra_id}']")
    assert page.locator(f"#compare-chosen li[data-run='{extra_id}']").text_content().startswith(
        f"#{extra_id} needle-in-haystack")
    page.click(f"#compare-chosen [data-remove='{ids[0]}']")
    page.wait_for_function(f"() => location.hash.includes('ids={ids[1]},{extra_id}&')")
    page.wait_for_selector(f"#compare-runs tr[data-run='{ids[0]}']", state="detached")
    shoot(page, "compare-picker")
