"""Sign-in and sweeps in a real browser against a real `gxnor up`: the sign-in view, the sign-in link and
sign-out; a 2 × 2 grid sweep launched from the new-run form, whose results table, plots and CSV must equal
what the API aggregates.  Screenshots go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import csv
import json

from gxnor_core.metrics import PARETO, VIEWS

from .conftest import ADMIN_TOKEN, click_download, shoot, wait_sweep

STORED_TOKEN = "() => localStorage.getItem('gxnor.token')"
TRACES_JS = """(sel) => {
  const el = document.querySelector(sel);
  if (!el || !el.data) return null;
  return el.data.map((t) => ({type: t.type, name: t.name ?? null, meta: t.meta ?? null, x: Array.from(t.x || []),
    y: Array.from(t.y || []), z: t.z ? Array.from(t.z, (row) => Array.from(row)) : null}));
}"""


def traces(pg, selector: str) -> list[dict]:
    return pg.evaluate(TRACES_JS, selector) or []


def pct(v: float | None, digits: int = 2) -> str:
    """The UI's percentage (util.fmtPct)."""
    return "—" if v is None else f"{v * 100:.{digits}f}%"


def test_sign_in_view_wrong_token_sign_in_link_and_sign_out(anonymous_page, server):
    pg = anonymous_page
    pg.goto(f"{server}/#/sweeps")  # the page the user wants: it opens once signed in
    pg.wait_for_selector("#signin-token")
    assert pg.get_attribute("#signin-token", "type") == "password"
    assert "gxnor token" in pg.text_content("#signin-form")
    assert pg.locator("#sweeps-table, #runs-table").count() == 0 and pg.text_content("#user-box") == ""
    shoot(pg, "signin")

    pg.fill("#signin-token", "gx_not-a-token-of-this-server")
    pg.click("#signin-submit")
    pg.wait_for_function("() => document.querySelector('#signin-error').textContent.length > 0")
    assert pg.text_content("#signin-error") == "That token is not valid (revoked or mistyped)."
    assert pg.get_attribute("#signin-token", "aria-invalid") == "true"
    assert pg.evaluate(STORED_TOKEN) is None
    shoot(pg, "signin-wrong-token")

    pg.fill("#signin-token", ADMIN_TOKEN)
    pg.click("#signin-submit")
    pg.wait_for_selector("#sweeps-table")
    assert pg.url.endswith("#/sweeps")
    pg.wait_for_selector("#user-name")
    assert pg.text_content("#user-name") == "admin"
    assert pg.evaluate(STORED_TOKEN) == ADMIN_TOKEN

    pg.click("#signout")  # forgets the token, shows the sign-in view
    pg.wait_for_selector("#signin-token")
    assert pg.evaluate(STORED_TOKEN) is None and pg.locator("#sweeps-table").count() == 0

    pg.goto(f"{server}/#token={ADMIN_TOKEN}")  # the sign-in link `gxnor up` prints
    pg.wait_for_selector("#runs-table")
    assert pg.url.endswith("#/runs") and ADMIN_TOKEN not in pg.url
    assert pg.evaluate(STORED_TOKEN) == ADMIN_TOKEN
    pg.wait_for_selector("#user-name")

    pg.evaluate("localStorage.setItem('gxnor.token', 'gx_revoked-or-never-issued')")  # a token the server refuses
    pg.reload()
    pg.wait_for_selector("#signin-token")
    assert pg.evaluate(STORED_TOKEN) is None


def test_grid_sweep_from_the_form_shows_the_apis_results_plots_and_csv(page, server, api, tmp_path):
    page.goto(f"{server}/#/new?preset=quick")
    page.wait_for_selector("#new-run-form")
    page.fill("#f-name", "ui-sweep")
    page.fill("#f-model-hidden", "16")
    page.fill("#f-train-epochs", "2")
    page.click("[data-vary='activations.r']")
    page.fill("#f-activations-r-values", "0, 1")
    page.click("[data-vary='weights.N']")
    page.fill("#f-sweep-seeds", "0")

    # A value out of bounds: the server's message shows next to the varied field, and no sweep is made.
    page.fill("#f-weights-N-values", "1,9")
    sweeps_before = api.get("/api/v1/sweeps").json()["total"]  # (the server is shared: other modules' sweeps)
    body = json.loads(page.text_content("details.preview pre"))  # the request the form sends
    assert body["grid"] == {"activations.r": [0, 1], "weights.N": [1, 9]} and body["seeds"] == [0]
    rejected = api.post("/api/v1/sweeps", json=body)
    assert rejected.status_code == 422 and rejected.json()["field"] == "grid.weights.N"
    page.click("#submit-sweep")
    error = page.locator("[data-field='weights.N'] .field-error")
    error.wait_for(state="visible")
    assert rejected.json()["message"] == ("grid.weights.N: value 9 is invalid for weights.N: "
                                          "Input should be less than or equal to 8")
    assert error.text_content() == "Value 9: must be at most 8."  # in words next to the list
    assert page.get_attribute("#f-weights-N-values", "aria-invalid") == "true"
    assert api.get("/api/v1/sweeps").json()["total"] == sweeps_before and "#/new" in page.url
    page.fill("#f-weights-N-values", "1,2")
    assert error.text_content() == ""
    assert page.is_hidden("#submit-run")
    assert page.text_content("#submit-sweep") == "Launch sweep (4 runs)"
    shoot(page, "new-sweep")
    page.click("#submit-sweep")
    page.wait_for_url("**/#/sweeps/*")
    sweep_id = int(page.url.rsplit("/", 1)[1])
    sweep = api.get(f"/api/v1/sweeps/{sweep_id}").json()
    assert sweep["name"] == "ui-sweep" and sweep["total"] == 4
    assert sweep["fields"] == ["activations.r", "weights.N"]  # in the order they were varied
    assert sweep["spec"]["grid"] == {"activations.r": [0, 1], "weights.N": [1, 2]} and sweep["spec"]["seeds"] == [0]
    assert {r["name"].split(" · ")[0] for r in sweep["runs"]} == {"ui-sweep"}
    run = api.get(f"/api/v1/runs/{sweep['runs'][0]['id']}").json()
    assert run["config"]["model"]["hidden"] == [16] and run["config"]["train"]["epochs"] == 2

    expected = wait_sweep(api, sweep_id)
    assert expected["status"] == "finished" and expected["counts"]["succeeded"] == 4, expected["counts"]
    page.wait_for_function("() => document.querySelector('#sweep-status').textContent === 'finished'", timeout=15_000)
    page.wait_for_function("() => document.querySelector('#sweep-plot-heatmap')?.data?.length > 0")
    results = expected["results"]
    assert len(results) == 4

    # The results table: one row per config, the API's means (and their percentages).
    rows = page.locator("#sweep-results tbody tr")
    assert rows.count() == 4
    for i, res in enumerate(results):
        row = rows.nth(i)
        assert int(row.get_attribute("data-group")) == res["group"]
        values = [float(v) for v in row.locator("td[data-field]").all_text_contents()]
        assert values == [res["overrides"]["activations.r"], res["overrides"]["weights.N"]]
        assert row.locator("td[data-n]").text_content() == f"{res['n_done']}/{res['n']}" == "1/1"
        cells = row.locator("td.pm")
        for j, key in enumerate(VIEWS["sweep"]):  # the table's columns: the catalog's sweep view, in order
            m = res["metrics"][key]
            assert m["mean"] is not None, key  # (every figure exists for these two-layer networks)
            assert float(cells.nth(j).get_attribute("data-mean")) == m["mean"], (i, key)
            assert cells.nth(j).text_content() == pct(m["mean"], 2 if key.endswith("error") else 1), (i, key)
    front = [int(rows.nth(i).get_attribute("data-group")) for i in range(4)
             if "front" in (rows.nth(i).get_attribute("class") or "")]
    assert sorted(front) == sorted(expected["pareto"])

    # Metrics vs the swept field: one line per weights.N, the API's means at r = 0, 1.
    metric_traces = traces(page, "#sweep-plot-metrics")
    for key in VIEWS["sweep"]:
        lines = {t["meta"]["line"]: t for t in metric_traces if t["meta"]["metric"] == key}
        assert sorted(lines) == ["N=1", "N=2"]
        for n in (1, 2):
            by_r = {r["overrides"]["activations.r"]: r["metrics"][key]["mean"]
                    for r in results if r["overrides"]["weights.N"] == n}
            assert lines[f"N={n}"]["x"] == [0, 1] and lines[f"N={n}"]["y"] == [by_r[0], by_r[1]], (key, n)

    # The catalog's trade-off (test error vs XNOR-layer gate-event rate), one marker per config, and the
    # Pareto front as a step line.
    pareto = {t["meta"]["kind"]: t for t in traces(page, "#sweep-plot-pareto")}
    assert pareto["configs"]["x"] == [r["metrics"][PARETO["x"]]["mean"] for r in results]
    assert pareto["configs"]["y"] == [r["metrics"][PARETO["y"]]["mean"] for r in results]
    assert sorted(pareto["front"]["meta"]["groups"]) == sorted(expected["pareto"])
    shape = "document.querySelector('#sweep-plot-pareto').data.find((t) => t.meta.kind === 'front').line.shape"
    assert page.evaluate(shape) == "hv"

    # The heatmap: mean test error, rows weights.N, columns activations.r.
    (heat,) = traces(page, "#sweep-plot-heatmap")
    assert heat["type"] == "heatmap" and heat["x"] == ["0", "1"] and heat["y"] == ["1", "2"]
    cell = {(r["overrides"]["activations.r"], r["overrides"]["weights.N"]): r["metrics"]["test_error"]["mean"]
            for r in results}
    assert heat["z"] == [[cell[(0, 1)], cell[(1, 1)]], [cell[(0, 2)], cell[(1, 2)]]]

    # The CSV: the table's columns, raw numbers.
    path = click_download(page, "#sweep-csv", tmp_path / "sweep.csv")
    with path.open(newline="", encoding="utf-8") as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == 4
    for line, res in zip(table, results):
        assert float(line["activations.r"]) == res["overrides"]["activations.r"]
        assert int(line["weights.N"]) == res["overrides"]["weights.N"]
        assert (line["baseline"], line["n_done"], line["n"]) == ("false", "1", "1")
        for key in VIEWS["sweep"]:
            assert float(line[f"{key}_mean"]) == res["metrics"][key]["mean"]
            assert float(line[f"{key}_std"]) == res["metrics"][key]["std"]

    ids = [r["id"] for r in expected["runs"]]
    assert page.get_attribute("#compare-sweep", "href") == f"#/compare?ids={','.join(map(str, ids))}"
    assert page.locator("#sweep-runs tbody tr").count() == 4 and page.locator("#cancel-sweep").count() == 0
    page.wait_for_timeout(300)
    shoot(page, "sweep")

    page.click("#sweep-runs tbody tr:first-child td.name a")  # a run links back to its sweep
    page.wait_for_selector("#run-sweep a")
    assert page.get_attribute("#run-sweep a", "href") == f"#/sweeps/{sweep_id}"

    page.click("nav [data-nav=sweeps]")  # the list: this sweep, finished, 4 succeeded, progress 100 %
    row = page.locator(f"#sweeps-table tr[data-sweep='{sweep_id}']")
    row.wait_for()
    assert row.locator("td.name").text_content() == "ui-sweep"
    assert row.locator("td.fields").text_content() == "activations.r × weights.N"
    assert row.locator("[data-count=succeeded]").text_content() == "4 succeeded"
    assert row.locator(".bar").get_attribute("data-progress") == "1.0000"
    shoot(page, "sweeps")


def test_cancel_sweep_cancels_its_unfinished_runs(page, server, api):
    base = {"dataset": {"name": "digits"}, "model": {"hidden": [8]}, "train": {"epochs": 500}}
    resp = api.post("/api/v1/sweeps", json={"name": "to-cancel", "base": base, "grid": {"dst.m": [1, 3]}})
    assert resp.status_code == 201, resp.text
    sweep_id = resp.json()["id"]
    page.goto(f"{server}/#/sweeps/{sweep_id}")
    page.wait_for_selector("#cancel-sweep")
    page.click("#cancel-sweep")
    page.wait_for_function("() => document.querySelector('#sweep-status').textContent === 'cancelled'")
    sweep = api.get(f"/api/v1/sweeps/{sweep_id}").json()
    assert sweep["status"] == "cancelled" and sweep["counts"]["cancelled"] == 2
    assert page.text_content("[data-count=cancelled]") == "2 cancelled" and page.locator("#cancel-sweep").count() == 0
