"""The Content-Security-Policy as served, in real Chromium: every dashboard view and /docs work under it, with
no violation and no request leaving this machine; and live events still stream through the headers middleware.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest

from .conftest import ADMIN_TOKEN, shoot

LOCAL_HOSTS = {"127.0.0.1", "localhost"}
# Before any page script: record every CSP violation the document reports.
CSP_PROBE = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(
  `${e.violatedDirective} blocked ${e.blockedURI || '(inline)'} at ${e.sourceFile}:${e.lineNumber} ${e.sample || ''}`));
"""
CHART_DRAWN = """(sel) => { const el = document.querySelector(sel);
  return !!(el && el.data && el.data.length > 0 && el.querySelector('svg.main-svg')); }"""


def guard(pg) -> dict:
    """Record CSP violations (events and console messages) and abort, recording it, any request that would
    leave this machine."""
    seen = {"console": [], "external": []}
    pg.add_init_script(CSP_PROBE)
    pg.on("console", lambda msg: "Content Security Policy" in msg.text and seen["console"].append(msg.text))

    def route(r):
        if urlsplit(r.request.url).hostname in LOCAL_HOSTS or r.request.url.startswith(("data:", "blob:")):
            r.continue_()
        else:
            seen["external"].append(r.request.url)
            r.abort()

    pg.route("**/*", route)
    return seen


def assert_clean(pg, seen, where: str):
    pg.wait_for_timeout(300)  # let late violations (a chart's redraw) arrive
    violations = pg.evaluate("window.__csp") + seen["console"]
    assert not violations, f"{where}: {violations}"
    assert not seen["external"], f"{where}: requests to other hosts: {seen['external']}"


def wait_chart(pg, seen, where: str, chart: str, timeout: float = 20_000):
    try:
        pg.wait_for_function(CHART_DRAWN, arg=chart, timeout=timeout)
    except Exception as exc:  # a timeout: say where, and what the policy blocked
        raise AssertionError(f"{where}: {chart} was not drawn; CSP violations: "
                             f"{pg.evaluate('window.__csp') + seen['console']}") from exc


@pytest.fixture(scope="module")
def seeded(api, grid_sweep):
    """Two finished runs (r = 1, weights.N = 1 and 2) of a finished 2 × 2 sweep (two swept fields: the sweep page
    draws a heatmap)."""
    runs = api.get(f"/api/v1/sweeps/{grid_sweep}").json()["runs"]
    ids = [r["id"] for r in runs if r["overrides"]["activations.r"] == 1]
    assert len(ids) == 2, runs
    return {"runs": ids, "sweep": grid_sweep}


def test_every_dashboard_view_works_under_the_policy(page, server, api, seeded):
    seen = guard(page)
    response = page.goto(f"{server}/#/runs")
    csp = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in csp and "default-src 'self'" in csp, csp  # the policy is on, as served
    a, b = seeded["runs"]
    views = [  # (hash route, what shows it is ready, charts that must be drawn)
        ("/runs", "#runs-table tbody tr[data-run]", []),
        ("/new", "#new-run-form", []),
        ("/sweeps/new", "#new-run-form", []),
        (f"/runs/{a}", "#chart-loss", ["#chart-loss", "#chart-error", "#chart-network", "#chart-hw-events",
                                       "#chart-hw-rate"]),
        (f"/compare?ids={a},{b}&metric=val_error", "#config-diff-table",
         ["#compare-metric-chart", "#compare-pareto", "#compare-layer-gate", "#compare-layer-sparsity"]),
        ("/sweeps", "#sweeps-table", []),
        (f"/sweeps/{seeded['sweep']}", "#sweep-results",
         ["#sweep-plot-metrics", "#sweep-plot-pareto", "#sweep-plot-heatmap"]),
    ]
    for path, ready, charts in views:
        page.goto(f"{server}/#{path}")
        page.wait_for_selector(ready)
        for chart in charts:
            wait_chart(page, seen, path, chart)
        assert_clean(page, seen, path)
    shoot(page, "csp-sweep")

    # A run that is training: its page follows it live over Server-Sent Events (connect-src 'self').
    resp = api.post("/api/v1/runs", json={"config": {"name": "csp-live", "dataset": {"name": "mnist5k"},
                                                     "model": {"hidden": [64]}, "train": {"epochs": 60}}})
    assert resp.status_code == 201, resp.text
    live = resp.json()["id"]
    try:
        page.goto(f"{server}/#/runs/{live}")
        page.wait_for_function("() => document.querySelector('#live-state')?.textContent.includes('live')")
        page.wait_for_function("() => document.querySelector('#chart-loss')?.data?.[0]?.x?.length >= 2", timeout=60_000)
        wait_chart(page, seen, f"/runs/{live} (live)", "#chart-loss")
        assert_clean(page, seen, f"/runs/{live} (live)")
    finally:
        api.post(f"/api/v1/runs/{live}/cancel")


def test_sign_in_view_works_under_the_policy(anonymous_page, server):
    pg = anonymous_page
    seen = guard(pg)
    response = pg.goto(f"{server}/#/runs")
    assert "script-src 'self'" in response.headers.get("content-security-policy", "")
    pg.wait_for_selector("#signin-token")
    assert_clean(pg, seen, "sign-in")
    pg.fill("#signin-token", ADMIN_TOKEN)
    pg.click("#signin-submit")
    pg.wait_for_selector("#runs-table")
    assert_clean(pg, seen, "after sign-in")


def test_docs_render_swagger_ui_from_this_machine_and_authorize_works(anonymous_page, server):
    pg = anonymous_page
    seen = guard(pg)
    requested = []
    pg.on("request", lambda r: requested.append(r.url))
    response = pg.goto(f"{server}/docs")
    assert "script-src 'self'" in response.headers.get("content-security-policy", "")
    pg.get_by_text("/api/v1/runs", exact=True).first.wait_for()  # the operations list is drawn
    assert pg.locator(".opblock").count() > 10
    assert any(u.endswith("/openapi.json") for u in requested), requested
    assert all(urlsplit(u).hostname in LOCAL_HOSTS for u in requested if u.startswith("http")), requested
    assert_clean(pg, seen, "/docs")
    shoot(pg, "docs")

    # Authorize with a bearer token, then try GET /api/v1/runs from the page: 200, not 401.
    pg.click("button.authorize")
    pg.fill(".auth-container input", ADMIN_TOKEN)
    pg.click(".auth-btn-wrapper button.authorize")
    pg.click(".auth-btn-wrapper button.btn-done")
    op = pg.locator(".opblock-get").filter(has=pg.locator(".opblock-summary-path[data-path='/api/v1/runs']")).first
    op.locator(".opblock-summary").click()
    op.locator("button.try-out__btn").click()
    op.locator("button.execute").click()
    status = op.locator(".live-responses-table .response .response-col_status").first
    status.wait_for()
    assert status.text_content().strip() == "200", op.locator(".live-responses-table").text_content()
    assert_clean(pg, seen, "/docs after trying an operation")


def test_live_events_stream_through_the_headers_middleware(server, api):
    """A `text/event-stream` response carries the headers and still arrives event by event, not at its end."""
    resp = api.post("/api/v1/runs", json={"config": {"name": "csp-sse", "dataset": {"name": "mnist5k"},
                                                     "train": {"epochs": 60}}})
    assert resp.status_code == 201, resp.text
    run_id = resp.json()["id"]
    try:
        with httpx.Client(base_url=server, timeout=30) as client, client.stream(
                "GET", f"/api/v1/runs/{run_id}/events", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as s:
            assert s.status_code == 200 and s.headers["content-type"].startswith("text/event-stream")
            assert s.headers["x-content-type-options"] == "nosniff"
            assert "default-src 'self'" in s.headers["content-security-policy"]
            assert next(line for line in s.iter_lines() if line.startswith("event:"))
            # The stream ends only with the run: an event that arrives while the run is still going was streamed.
            assert api.get(f"/api/v1/runs/{run_id}").json()["status"] in ("queued", "running")
    finally:
        api.post(f"/api/v1/runs/{run_id}/cancel")
