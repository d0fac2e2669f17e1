"""A run's page in a real browser against a real `gxnor up`: the loss chart draws the within-epoch loss points
(GET /runs/{id}/batches) as a thin line while the run runs and after; a cancelled run offers Resume (the page stays
and follows the run again) and Re-run (the page goes to the new run)."""

from __future__ import annotations

import pytest

from .conftest import shoot, wait_run
from .test_dashboard import submit, traces

try:
    from tests.integration.conftest import wait_for
except ImportError:  # plain `pytest` puts tests/ itself on sys.path, not the repository root
    from integration.conftest import wait_for

# digits in batches of 5: 258 batches an epoch, reported as 50 points; enough epochs to still be running when
# the test cancels it
LONG = {"name": "ui-batches", "model": {"hidden": [16]}, "train": {"epochs": 40, "batch_size": 5}}


def batch_trace(page) -> dict | None:
    return next((t for t in traces(page, "#chart-loss") or [] if t["meta"] == "batch_loss"), None)


@pytest.mark.slow
def test_batch_line_and_the_resume_and_rerun_buttons(page, server, api):
    run_id = submit(api, LONG)
    page.goto(f"{server}/#/runs/{run_id}")
    page.wait_for_selector("#chart-loss")
    # while it runs, the line fills in (the page polls the points of the epoch in progress)
    live = wait_for(lambda: (t := batch_trace(page)) and len(t["x"]) >= 2 and t, 90, what="the within-epoch line")
    assert api.get(f"/api/v1/runs/{run_id}").json()["status"] == "running"
    assert all(x > 0 for x in live["x"]) and live["x"] == sorted(live["x"])
    wait_for(lambda: api.get(f"/api/v1/runs/{run_id}").json()["progress"]["epochs_done"] >= 1, 120, what="an epoch")
    assert api.post(f"/api/v1/runs/{run_id}/cancel").status_code == 200
    assert wait_run(api, run_id)["status"] == "cancelled"

    # after it ended: every stored point, at epoch − 1 + fraction, with its loss
    page.wait_for_selector("#resume-run")
    points = api.get(f"/api/v1/runs/{run_id}/batches").json()["points"]
    drawn = wait_for(lambda: (t := batch_trace(page)) and len(t["x"]) == len(points) and t, 30,
                     what="every point drawn")
    assert drawn["x"] == pytest.approx([p["epoch"] - 1 + p["fraction"] for p in points])
    assert drawn["y"] == pytest.approx([p["loss"] for p in points])
    assert sum(p["epoch"] == 1 for p in points) == 50  # the bound: 258 batches merged into 50 points
    shoot(page, "run-batch-line")

    # Resume: the same page, the run queued again (then running), its epochs kept
    page.click("#resume-run")
    page.wait_for_function("() => ['queued', 'running'].includes(document.querySelector('#run-status')?.textContent)")
    assert f"#/runs/{run_id}" in page.url
    resumed = api.get(f"/api/v1/runs/{run_id}").json()
    assert resumed["status"] in ("queued", "running") and resumed["progress"]["epochs_done"] >= 1
    assert page.query_selector("#resume-run") is None and page.query_selector("#cancel-run") is not None
    assert api.post(f"/api/v1/runs/{run_id}/cancel").status_code == 200
    assert wait_run(api, run_id)["status"] == "cancelled"

    # Re-run: a new queued run with the same config; the page goes there
    page.wait_for_selector("#rerun-run")
    page.click("#rerun-run")
    page.wait_for_function(f"() => /^#\\/runs\\/\\d+$/.test(location.hash) && location.hash !== '#/runs/{run_id}'")
    new_id = int(page.evaluate("location.hash").rsplit("/", 1)[1])
    page.wait_for_selector("#run-title")
    assert page.text_content("#run-title") == f"ui-batches (re-run of #{run_id})"
    new = api.get(f"/api/v1/runs/{new_id}").json()
    assert new["notes"] == f"Re-run of run #{run_id}." and new["config"]["train"] == resumed["config"]["train"]
    api.post(f"/api/v1/runs/{new_id}/cancel")
    wait_run(api, new_id)
