"""The dashboard at a desktop width (1440 px) and a phone's (390 px), in light and dark mode, against a real
`gxnor up`: every page fits the window, no axis title lands on another or on a plot, Plotly's mode bar leaves
the legend alone; and what a newcomer tripped over — compare with a deleted run, layers of two architectures,
runs on two datasets, log axes over a narrow range, hover values on percent axes, a failed run's page, the
form's messages, a running run's duration and cancel, the sweep page's retry note.

One server, one browser page for the whole module (resized and switched between colour schemes per test), and
each page load checks all it can.  Screenshots go to test-artifacts/screenshots/ (git-ignored).
"""

from __future__ import annotations

import re
import time

import pytest

from .conftest import _page, click_to_confirm, damaged_svhn, shoot

VIEWS = [pytest.param(w, s, id=f"{w}px-{s}") for w in (1440, 390) for s in ("light", "dark")]
# Interactions: the desktop in light and the phone in dark (each width and each scheme once).
TWO_VIEWS = [pytest.param(1440, "light", id="1440px-light"), pytest.param(390, "dark", id="390px-dark")]
NOT_THERE = 999_999  # an id no run ever had
QUICK = {"train": {"epochs": 2, "batch_size": 200}}

# Every chart drawn (or showing its "no data" note); then what overlaps what in each chart.
SETTLED = """() => [...document.querySelectorAll('.chart')].filter((c) => c.offsetParent)
  .every((c) => c.querySelector('.main-svg') || c.querySelector('.chart-empty'))"""
OVERLAPS = """() => {
  const box = (e) => e.getBoundingClientRect();
  const hit = (a, b) => a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1 && b.top < a.bottom - 1;
  const out = [];
  for (const el of document.querySelectorAll('.js-plotly-plot')) {
    if (!el.offsetParent) continue;
    const titles = [...el.querySelectorAll('.infolayer > g[class^="g-x"] text, .infolayer > g[class^="g-y"] text')]
      .filter((t) => t.textContent)
      .map((t) => ({name: `${t.parentNode.getAttribute('class')} "${t.textContent}"`, r: box(t)}));
    const plots = [...el.querySelectorAll('.draglayer .nsewdrag')].map(box);
    titles.forEach((a, i) => {
      if (a.r.right > innerWidth + 1 || a.r.left < -1) out.push(`${el.id}: ${a.name} is outside the window`);
      titles.slice(i + 1).forEach((b) => { if (hit(a.r, b.r)) out.push(`${el.id}: ${a.name} overlaps ${b.name}`); });
      plots.forEach((p, k) => { if (hit(a.r, p)) out.push(`${el.id}: ${a.name} lies on plot ${k + 1}`); });
    });
    const legend = el.querySelector('.legend .bg');
    const bar = el.querySelector('.modebar');
    if (legend && bar && hit(box(legend), box(bar))) out.push(`${el.id}: the mode bar covers the legend`);
  }
  return out;
}"""
TOPBAR = """() => [...document.querySelectorAll('.topbar a, .topbar button')].map((e) => {
  const r = e.getBoundingClientRect();
  return {text: e.textContent.trim(), visible: r.width > 0 && r.height > 0,
    inside: r.left >= 0 && r.right <= innerWidth + 0.5};
})"""
# The first point of a chart's first trace, in page pixels (to hover it).
POINT = """(sel) => { const el = document.querySelector(sel); const fl = el._fullLayout; const t = el.data[0];
  const i = Array.from(t.y).findIndex((v) => v !== null);
  const area = el.querySelector('.nsewdrag').getBoundingClientRect();
  const inside = (v, lo, hi) => Math.min(Math.max(v, lo + 3), hi - 3);  // a point on the frame: just inside it
  return {x: inside(area.left + fl.xaxis.d2p(t.x[i]), area.left, area.right),
    y: inside(area.top + fl.yaxis.d2p(t.y[i]), area.top, area.bottom)}; }"""
TRACES = """(sel) => document.querySelector(sel).data.map((t) => ({type: t.type, name: t.name ?? null,
  meta: t.meta ?? null, x: t.x ? Array.from(t.x, (v) => (Array.isArray(v) ? Array.from(v) : v)) : null}))"""
LAYOUT = """(sel) => { const l = document.querySelector(sel)._fullLayout;
  return {grid: l.grid ? {rows: l.grid.rows, columns: l.grid.columns} : null, yaxis: {type: l.yaxis.type}}; }"""
# The luminance (0 black … 1 white) of a CSS colour property of the first element a selector finds.
LUMINANCE = """([sel, prop]) => { const v = getComputedStyle(document.querySelector(sel))[prop];
  const [r, g, b] = v.match(/[\\d.]+/g).map(Number); return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255; }"""


def wait_done(api, path: str, timeout: float = 180) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        body = api.get(path).json()
        if body["status"] in ("succeeded", "failed", "cancelled", "finished"):
            return body
        time.sleep(0.3)
    raise AssertionError(f"{path} did not finish: {body['status']}")


def submit(api, config: dict) -> int:
    resp = api.post("/api/v1/runs", json={"config": config})
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


@pytest.fixture(scope="module")
def seeded(api, datasets_dir, grid_sweep):
    """An MLP on digits and a CNN on mnist5k (two architectures, two datasets), a run that fails before its first
    epoch, a 2 × 2 sweep, and a run deleted after it finished."""
    damaged_svhn(datasets_dir)
    ids = {
        "mlp": submit(api, {**QUICK, "name": "mlp-digits", "model": {"hidden": [32, 32]}}),
        "cnn": submit(api, {**QUICK, "name": "cnn-mnist5k", "dataset": {"name": "mnist5k", "limit": 600},
                            "model": {"arch": "mnist_cnn", "width": 0.25}}),
        "failed": submit(api, {"name": "bad-data", "dataset": {"name": "svhn"}, "model": {"hidden": [8]},
                               "train": {"epochs": 1}}),
        "gone": submit(api, {"name": "to-delete", "model": {"hidden": [8]}, "train": {"epochs": 1}}),
    }
    for key in ("mlp", "cnn", "failed", "gone"):
        assert wait_done(api, f"/api/v1/runs/{ids[key]}")["status"] == ("failed" if key == "failed" else "succeeded")
    ids["sweep"] = grid_sweep
    assert api.delete(f"/api/v1/runs/{ids['gone']}").status_code == 204
    return ids


@pytest.fixture(scope="module")
def shared_page(browser):
    """One signed-in page for the module: the tests resize it and switch its colour scheme."""
    context, pg = _page(browser, signed_in=True)
    yield pg
    context.close()


@pytest.fixture()
def view(shared_page, server, request):
    """The shared page at the test's width and colour scheme, opened afresh; console errors fail the test."""
    width, scheme = request.node.callspec.params["width"], request.node.callspec.params["scheme"]
    pg = shared_page
    pg.errors.clear()
    pg.set_viewport_size({"width": width, "height": 900})
    pg.emulate_media(color_scheme=scheme)
    pg.goto(f"{server}/#/sweeps")  # (a page no test opens first: the next goto is a new route, drawn afresh)
    yield pg
    pg.unroute_all()
    assert not pg.errors, pg.errors


def open_page(pg, server: str, path: str, ready: str) -> None:
    pg.goto(f"{server}/#{path}")
    pg.wait_for_selector(ready, state="attached")
    pg.wait_for_function(SETTLED)
    pg.wait_for_timeout(250)  # the throttled redraws and Plotly's margins settle


def hover_text(pg, chart: str) -> str:
    pg.evaluate("(sel) => document.querySelector(sel).scrollIntoView({block: 'center'})", chart)  # clear of sticky bars
    pt = pg.evaluate(POINT, chart)
    pg.mouse.move(pt["x"] + 20, pt["y"] - 20)
    pg.mouse.move(pt["x"], pt["y"], steps=4)
    label = pg.locator(f"{chart} .hoverlayer .hovertext").first
    label.wait_for()
    text = label.text_content()
    pg.mouse.move(0, 0)
    return text


def check_layout(pg, name: str, width: int, scheme: str) -> None:
    """The page fits the window, the top bar's links are all on screen, charts overlap nothing, the colours follow
    the scheme; and a screenshot."""
    assert pg.evaluate("document.documentElement.scrollWidth") <= width, f"{name}: wider than the window"
    bar = pg.evaluate(TOPBAR)
    assert {"API docs", "Sign out", "Runs", "New run", "Compare", "Sweeps"} <= {b["text"] for b in bar}, bar
    assert all(b["visible"] and b["inside"] for b in bar), f"{name}: {bar}"
    assert pg.evaluate(OVERLAPS) == [], name
    background = pg.evaluate(LUMINANCE, ["body", "backgroundColor"])
    assert (background > 0.7) if scheme == "light" else (background < 0.3), f"{name}: background {background}"
    if pg.locator(".js-plotly-plot .xtick text").count():  # chart text in the page's colours too
        tick = pg.evaluate(LUMINANCE, [".js-plotly-plot .xtick text", "fill"])
        assert (tick < 0.5) if scheme == "light" else (tick > 0.5), f"{name}: tick luminance {tick}"
    shoot(pg, f"layout-{name}-{width}-{scheme}")


@pytest.mark.slow
@pytest.mark.parametrize("width,scheme", VIEWS)
def test_every_page_fits_and_its_charts_overlap_nothing(view, server, api, seeded, width, scheme):
    pg = view
    ids = seeded

    open_page(pg, server, "/runs", f"#runs-table tr[data-run='{ids['mlp']}']")
    check_layout(pg, "runs", width, scheme)

    # A CNN's run page: its layers span decades, so gate events and MACs are on a log axis — as markers, not bars;
    # the error curves hover in percent.
    open_page(pg, server, f"/runs/{ids['cnn']}", "#chart-hw-events .main-svg")
    check_layout(pg, "run", width, scheme)
    events = pg.evaluate(TRACES, "#chart-hw-events")
    assert pg.evaluate(LAYOUT, "#chart-hw-events")["yaxis"]["type"] == "log"
    assert {t["type"] for t in events} == {"scatter"}, events
    assert pg.locator("#chart-hw-events .ytick").count() >= 3
    assert re.search(r"(train|validation|test): \d+\.\d\d%", hover_text(pg, "#chart-error"))

    # A run that failed before its first epoch: the error first, then no empty cards or charts.
    open_page(pg, server, f"/runs/{ids['failed']}", "#error-text")
    check_layout(pg, "failed-run", width, scheme)
    assert pg.text_content("#error-text").startswith("DatasetError: ")
    error_top = pg.locator("#run-error").bounding_box()["y"]
    assert error_top < pg.locator("#run-progress").bounding_box()["y"]
    assert pg.is_hidden("#run-charts") and pg.locator("#run-cards .card").count() > 0  # (rendered, not shown)
    assert pg.is_hidden("#run-costs-section")  # no recorded epoch, nothing for the cost model to count
    assert pg.text_content("#run-no-epochs") == "The run failed before its first epoch: nothing to chart."

    # Compare, from a saved link that names a deleted run and one that never was: the others, and which are gone.
    path = f"/compare?ids={ids['mlp']},{ids['cnn']},{ids['gone']},{NOT_THERE}&metric=gate_event_rate&log=1"
    open_page(pg, server, path, "#compare-layer-gate .main-svg")
    check_layout(pg, "compare", width, scheme)
    assert pg.text_content("#compare-missing") == (
        f"Runs #{ids['gone']}, #{NOT_THERE} are not there any more (deleted, or not visible to you); "
        "comparing the others.")
    assert [int(r) for r in pg.eval_on_selector_all("#compare-runs tr[data-run]", "rs => rs.map(r => r.dataset.run)")] \
        == [ids["mlp"], ids["cnn"]]
    # The per-layer charts: each architecture's layers under its name, in network order.
    (mlp_bars, cnn_bars) = pg.evaluate(TRACES, "#compare-layer-gate")
    archs, layers = mlp_bars["x"]
    columns = [(a, layer.replace("\u200b", "")) for a, layer in zip(archs, layers, strict=True)]
    assert columns == [("mlp", "fc1"), ("mlp", "fc2"), ("mlp", "fc3"),
                       ("mnist_cnn", "conv1"), ("mnist_cnn", "conv2"), ("mnist_cnn", "fc1"), ("mnist_cnn", "fc2")]
    ticks = [t.replace("\u200b", "") for t in pg.locator("#compare-layer-gate .xtick text").all_text_contents()]
    assert ticks == ["fc1", "fc2", "fc3", "conv1", "conv2", "fc1", "fc2"]  # drawn in that order too
    # Two datasets: a Pareto front each, named, and a note that says why.
    fronts = [t for t in pg.evaluate(TRACES, "#compare-pareto") if (t["meta"] or {}).get("pareto") == "front"]
    assert sorted(t["name"] for t in fronts) == ["Pareto front: digits", "Pareto front: mnist5k"]
    assert "2 datasets (digits: circles, mnist5k: squares)" in pg.text_content("#compare-pareto-note")
    # The log axis over a narrow range (gate-event rates of about 35–55 %) has ticks to read; hover in percent.
    assert pg.locator("#compare-metric-chart .ytick").count() >= 3
    assert pg.evaluate(LAYOUT, "#compare-metric-chart")["yaxis"]["type"] == "log"
    assert re.search(r"\d\.\d\d%$", hover_text(pg, "#compare-metric-chart"))

    # The sweep: its small plots in two columns on a desktop, one on a phone.
    open_page(pg, server, f"/sweeps/{ids['sweep']}", "#sweep-plot-metrics .main-svg")
    check_layout(pg, "sweep", width, scheme)
    assert pg.evaluate(LAYOUT, "#sweep-plot-metrics")["grid"]["columns"] == (2 if width > 700 else 1)

    open_page(pg, server, "/new", "#new-run-form")
    check_layout(pg, "new-run", width, scheme)


@pytest.mark.slow
@pytest.mark.parametrize("width,scheme", TWO_VIEWS)
def test_the_form_marks_every_bad_value_at_once_and_the_banner_goes_when_they_are_fixed(view, server, api, width,
                                                                                        scheme):
    pg = view
    invalid = ("() => Object.fromEntries([...document.querySelectorAll('.field.invalid')]"
               ".map((f) => [f.dataset.field, f.querySelector('.field-error').textContent]))")
    before = api.get("/api/v1/runs").json()["total"]
    sent = []
    pg.route(f"{server}/api/v1/runs",
             lambda r: (r.request.method == "POST" and sent.append(r.request.url), r.continue_()))
    open_page(pg, server, "/new?preset=quick", "#new-run-form")

    # Out of bounds in four fields: all four say so at once, and nothing is sent.
    pg.fill("#f-weights-N", "9")
    pg.fill("#f-train-epochs", "0")
    pg.fill("#f-activations-r", "-1")
    pg.fill("#f-train-batch_size", "2.5")
    pg.click("#submit-run")
    assert pg.evaluate(invalid) == {
        "weights.N": "Must be at most 8.", "activations.r": "Must be at least 0.",
        "train.epochs": "Must be at least 1.", "train.batch_size": "Must be a whole number."}
    assert pg.is_visible("#form-error") and pg.text_content("#form-error").startswith("Fix the 4 highlighted fields")
    assert sent == []
    shoot(pg, f"form-bounds-{width}-{scheme}")
    for sel, value in (("#f-weights-N", "2"), ("#f-train-epochs", "1"), ("#f-activations-r", "0.5")):
        pg.fill(sel, value)
    assert list(pg.evaluate(invalid)) == ["train.batch_size"] and pg.is_visible("#form-error")
    pg.fill("#f-train-batch_size", "50")
    assert pg.evaluate(invalid) == {} and pg.is_hidden("#form-error")

    # Past the form's own checks, the server refuses three fields: each message next to its field, in words.
    pg.evaluate("document.querySelectorAll('#new-run-form input').forEach((i) => ['min', 'max', 'pattern']"
                ".forEach((a) => i.removeAttribute(a)))")
    pg.fill("#f-weights-N", "9")
    pg.fill("#f-model-hidden", "16, 0")
    pg.fill("#f-train-epochs", "0")
    pg.click("#submit-run")
    pg.wait_for_selector("[data-field='train.epochs'].invalid")
    assert pg.evaluate(invalid) == {"model.hidden": "Item 2: must be at least 1.", "weights.N": "Must be at most 8.",
                                    "train.epochs": "Must be at least 1."}
    assert pg.get_attribute("[data-field='weights.N'] .field-error", "title") == (
        "The server said: config.weights.N: Input should be less than or equal to 8")
    assert pg.text_content("#form-error") == "The server rejected this config: fix the 3 highlighted fields."
    shoot(pg, f"form-server-{width}-{scheme}")
    pg.fill("#f-weights-N", "2")
    pg.fill("#f-model-hidden", "16")
    assert pg.is_visible("#form-error")  # one field still to fix
    pg.fill("#f-train-epochs", "1")
    assert pg.is_hidden("#form-error")
    assert len(sent) == 1 and api.get("/api/v1/runs").json()["total"] == before


@pytest.mark.slow
@pytest.mark.parametrize("width,scheme", [pytest.param(1440, "light", id="1440px-light")])
def test_a_failed_sweep_refresh_says_so_on_the_page_and_clears(view, server, api, seeded, width, scheme):
    """The sweep page keeps polling a running sweep: a refresh the server fails shows "(retrying)" on the page (the
    note used to go to an element no longer in it), and the next good one removes it."""
    pg = view
    sweep_id = seeded["sweep"]
    state = {"calls": 0, "fail": True}

    def route(r):  # the first answer says "running", so the page polls again; then 503s until told otherwise
        state["calls"] += 1
        if state["calls"] == 1:
            body = r.fetch().json()
            r.fulfill(json={**body, "status": "running"})
        elif state["fail"]:
            r.fulfill(status=503, json={"detail": "the database is unavailable; try again shortly"})
        else:
            r.continue_()

    pg.route(f"{server}/api/v1/sweeps/{sweep_id}", route)
    open_page(pg, server, f"/sweeps/{sweep_id}", "#sweep-plot-metrics .main-svg")
    note = pg.locator("#sweep-trouble .banner")
    note.wait_for(timeout=10_000)
    assert note.text_content() == "Could not load the sweep: the database is unavailable; try again shortly (retrying)"
    assert pg.is_visible("#sweep-results")  # the results stay
    shoot(pg, "sweep-retrying")
    state["fail"] = False
    note.wait_for(state="detached", timeout=15_000)
    pg.wait_for_function("() => document.querySelector('#sweep-status').textContent === 'finished'")


@pytest.mark.slow
@pytest.mark.parametrize("width,scheme", [pytest.param(390, "dark", id="390px-dark")])
def test_a_running_runs_duration_ticks_and_cancel_asks_first(view, server, api, seeded, width, scheme):
    pg = view
    # A first epoch far longer than the 3.5 s watched, on any machine: cifar_vgg (half width) on mnist5k, tens of
    # seconds an epoch (mnist_cnn's first epoch took only ~1.5 s on an AMX host with the integer forward).
    run_id = submit(api, {"name": "long", "dataset": {"name": "mnist5k"}, "model": {"arch": "cifar_vgg", "width": 0.5},
                          "train": {"epochs": 50, "batch_size": 50}})
    open_page(pg, server, f"/runs/{run_id}", "#run-status")
    pg.wait_for_function("() => document.querySelector('#run-status').textContent === 'running'", timeout=60_000)
    seen = []
    deadline = time.time() + 3.5
    while time.time() < deadline:
        seen.append((pg.text_content("#run-progress .label").split(" · ")[0], pg.text_content("#run-duration")))
        pg.wait_for_timeout(250)
    before_first_epoch = [d for p, d in seen if p.startswith("0 / 50 epochs")]
    assert len(set(before_first_epoch)) >= 3, seen  # ticking each second, not only when an epoch ends
    check_layout(pg, "running-run", width, scheme)

    def one_click_did_nothing():
        pg.wait_for_timeout(300)
        run = api.get(f"/api/v1/runs/{run_id}").json()
        assert run["status"] == "running" and not run["cancel_requested"]

    click_to_confirm(pg, "#cancel-run", "Confirm cancel", one_click_did_nothing)
    assert wait_done(api, f"/api/v1/runs/{run_id}", timeout=60)["status"] == "cancelled"
    pg.wait_for_function("() => document.querySelector('#run-status').textContent === 'cancelled'")
    assert pg.dialogs == []
