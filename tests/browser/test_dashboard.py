"""The dashboard in a real browser against a real `gxnor up`: launch, live run page, plotted values,
server-side validation, compare, and user text rendered as text.  Screenshots go to test-artifacts/screenshots/.

The tests share one server and run in file order: the first launches the run the next ones look at.
"""

from __future__ import annotations

import shutil
import time

import httpx
import pytest

from gxnor_core.metrics import PARETO

from .conftest import ADMIN_TOKEN, damaged_svhn, shoot, wait_run

XSS = "<img src=x onerror=alert(1)>"
STATE: dict[str, int] = {}

TRACES_JS = """(sel) => {
  const el = document.querySelector(sel);
  if (!el || !el.data) return null;
  return el.data.map((t) => ({name: t.name ?? null, meta: t.meta ?? null,
    x: Array.from(t.x || []), y: Array.from(t.y || [])}));
}"""


def traces(pg, selector: str):
    return pg.evaluate(TRACES_JS, selector)


def by_meta(trs) -> dict:
    return {t["meta"]: t for t in trs or [] if t["meta"] is not None and not isinstance(t["meta"], dict)}


def submit(api, config: dict) -> int:
    resp = api.post("/api/v1/runs", json={"config": config})
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def test_new_run_form_launches_a_run_that_fills_in_live(page, server, api):
    page.goto(f"{server}/#/new")
    page.wait_for_selector("#new-run-form")
    shoot(page, "new-run")
    page.click("[data-preset=quick]")
    assert page.input_value("#f-dataset-name") == "digits"
    assert page.input_value("#f-model-hidden") == "256, 256"
    page.fill("#f-name", "ui-quick")
    # mnist5k and 60 epochs (~15 s): long enough to watch both the table and the run page fill in.
    page.select_option("#f-dataset-name", "mnist5k")
    page.fill("#f-train-epochs", "60")
    page.click("#submit-run")
    page.wait_for_url("**/#/runs/*")
    run_id = int(page.url.rsplit("/", 1)[1])
    STATE["quick"] = run_id
    run = api.get(f"/api/v1/runs/{run_id}").json()
    assert run["name"] == "ui-quick" and run["config"]["train"]["epochs"] == 60
    assert run["config"]["train"]["batch_size"] == 50  # from the preset

    # The runs table, in a second tab, shows the progress bar advancing (it polls every ~2 s).
    table = page.context.new_page()
    table.goto(f"{server}/#/runs")
    seen_table: list[float] = []
    deadline = time.time() + 60
    while time.time() < deadline and len(set(seen_table)) < 3:
        bar = table.locator(f"tr[data-run='{run_id}'] [data-progress]")
        if bar.count():
            seen_table.append(float(bar.get_attribute("data-progress")))
        table.wait_for_timeout(400)
    table.close()
    assert len(set(seen_table)) >= 3 and seen_table == sorted(seen_table), seen_table

    # The run page (never reloaded) follows the run over SSE: its progress bar and curves grow to the end.
    lengths, progress = [], []
    deadline = time.time() + 120
    while time.time() < deadline:
        trs = by_meta(traces(page, "#chart-loss"))
        lengths.append(len(trs["train_loss"]["x"]) if "train_loss" in trs else 0)
        progress.append(float(page.get_attribute("#run-progress .bar", "data-progress") or 0))
        if page.text_content("#run-status") == "succeeded" and lengths[-1] == 60:
            break
        page.wait_for_timeout(300)
    assert lengths[-1] == 60, lengths
    assert len(set(lengths)) >= 3, f"the chart did not fill in live: {lengths}"
    assert progress[-1] == 1.0 and progress == sorted(progress), progress
    page.wait_for_function("() => document.querySelector('#layer-fc1-composition')?.data?.[0]?.x?.length === 60")
    assert "real-valued input — not an XNOR layer" in page.text_content("#layer-fc1 header")
    assert "not an XNOR layer" not in page.text_content("#layer-fc2 header")
    # The download goes through a short-lived link made for it: no token in any URL the browser keeps.
    with page.expect_download() as info:
        page.click("#checkpoint-link")
    download = info.value
    assert download.url.startswith(f"{server}/api/v1/downloads/") and "token" not in download.url
    assert download.suggested_filename.startswith(f"run-{run_id}-") and download.path().stat().st_size > 1000
    assert httpx.get(download.url, timeout=30).status_code == 200  # (until it expires)


def test_plotted_values_equal_what_the_api_returns(page, server, api):
    run_id = STATE.get("quick") or pytest.skip("needs the run of the first test")
    wait_run(api, run_id)
    page.goto(f"{server}/#/runs/{run_id}")
    page.wait_for_function("() => document.querySelector('#layer-fc3-histogram')?.data?.length > 0")
    metrics = api.get(f"/api/v1/runs/{run_id}/metrics").json()["epochs"]
    epochs = [m["epoch"] for m in metrics]
    checked = set()
    points = api.get(f"/api/v1/runs/{run_id}/batches").json()["points"]
    page.wait_for_function("() => document.querySelector('#chart-loss')?.data?.some((t) => t.meta === 'batch_loss')")
    for chart in ("#chart-loss", "#chart-error", "#chart-network"):
        for key, tr in by_meta(traces(page, chart)).items():
            if key == "batch_loss":  # the within-epoch points, between the epochs (docs/METRICS.md)
                assert tr["x"] == pytest.approx([p["epoch"] - 1 + p["fraction"] for p in points])
                assert tr["y"] == [p["loss"] for p in points] and points
                checked.add(key)
                continue
            assert tr["x"] == epochs, (chart, key)
            assert tr["y"] == [m[key] for m in metrics], (chart, key)
            checked.add(key)
    assert {"train_loss", "val_loss", "test_loss", "train_error", "val_error", "test_error", "gate_event_rate",
            "activation_sparsity", "weight_sparsity", "transition_rate", "batch_loss"} <= checked

    # Layer charts: state composition over epochs, and the histogram at the latest epoch (where the slider opens).
    records = api.get(f"/api/v1/runs/{run_id}/layers").json()["records"]
    fc2 = [r for r in records if r["layer"] == "fc2"]
    comp = by_meta(traces(page, "#layer-fc2-composition"))
    assert sorted(comp) == [0, 1, 2]
    for i, tr in comp.items():
        assert tr["x"] == [r["epoch"] for r in fc2]
        assert tr["y"] == pytest.approx([r["weight_states"][i] / r["num_weights"] for r in fc2], rel=1e-12)
    assert page.text_content("#epoch-label") == "epoch 60 (latest)"
    assert traces(page, "#layer-fc2-histogram")[0]["y"] == fc2[-1]["weight_states"]
    page.fill("#epoch-slider", "4")  # index 4 = epoch 5
    page.wait_for_function("() => document.querySelector('#epoch-label').textContent.startsWith('epoch 5 ')")
    page.wait_for_function(f"JSON.stringify(document.querySelector('#layer-fc2-histogram').data[0].y) === "
                           f"'{fc2[4]['weight_states']}'.replace(/ /g, '')")
    page.fill("#epoch-slider", "59")
    page.wait_for_function("() => document.querySelector('#epoch-label').textContent === 'epoch 60 (latest)'")
    page.wait_for_timeout(300)
    shoot(page, "run-detail")

    page.click("#clone-run")  # clone → edit → queue: the form opens pre-filled with this run's config
    page.wait_for_selector("#new-run-form")
    assert page.url.endswith(f"#/new?clone={run_id}")
    assert page.input_value("#f-name") == "ui-quick" and page.input_value("#f-train-epochs") == "60"
    assert page.input_value("#f-model-hidden") == "256, 256" and page.input_value("#f-train-batch_size") == "50"


def test_invalid_input_shows_the_servers_message_next_to_the_field(page, server, api):
    expected = api.post("/api/v1/runs", json={"config": {"weights": {"N": 9}}}).json()
    assert expected["field"] == "config.weights.N"
    before = api.get("/api/v1/runs").json()["total"]
    page.goto(f"{server}/#/new?preset=quick")
    page.wait_for_selector("#new-run-form")
    assert page.get_attribute("#f-weights-N", "max") == "8"  # the HTML hint; bypass it to reach the server
    page.evaluate("document.querySelector('#f-weights-N').removeAttribute('max')")
    page.fill("#f-weights-N", "9")
    page.click("#submit-run")
    error = page.locator("[data-field='weights.N'] .field-error")
    error.wait_for(state="visible")
    assert "less than or equal to 8" in expected["message"]
    assert error.text_content() == "Must be at most 8."  # in words; the server's own in the tooltip
    assert error.get_attribute("title") == f"The server said: {expected['message']}"
    assert page.text_content("#form-error") == "The server rejected this config: fix the highlighted field."
    assert page.get_attribute("#f-weights-N", "aria-invalid") == "true"
    assert page.locator(".field-error:not(:empty)").count() == 1
    assert "#/new" in page.url
    assert api.get("/api/v1/runs").json()["total"] == before
    shoot(page, "new-run-invalid")
    page.fill("#f-weights-N", "2")  # editing the field clears its error, and the banner with the last one
    assert error.text_content() == "" and page.is_hidden("#form-error")


def test_compare_two_runs_diffs_configs_and_plots_both(page, server, api):
    a = STATE.get("quick") or pytest.skip("needs the run of the first test")
    b = submit(api, {"name": "cmp-small", "model": {"hidden": [32]}, "activations": {"r": 0.25},
                     "train": {"epochs": 3, "batch_size": 100}})
    STATE["small"] = b
    assert wait_run(api, a)["status"] == "succeeded"
    assert wait_run(api, b)["status"] == "succeeded"
    expected = api.get("/api/v1/compare", params={"ids": f"{a},{b}", "metric": "val_error"}).json()

    page.goto(f"{server}/#/compare?ids={a},{b}&metric=val_error")
    page.wait_for_selector("#config-diff-table")
    page.wait_for_function("() => document.querySelector('#compare-pareto')?.data?.length >= 2")
    rows = page.locator("#config-diff-table tbody tr")
    keys = [rows.nth(i).get_attribute("data-key") for i in range(rows.count())]
    assert keys == sorted(expected["config_diff"]) and "activations.r" in keys and "model.hidden" in keys
    r_cells = page.locator("#config-diff-table tr[data-key='activations.r'] td.value").all_text_contents()
    assert r_cells == ["0.5", "0.25"]

    scatter = [t for t in traces(page, "#compare-pareto") if isinstance(t["meta"], dict) and "run" in t["meta"]]
    assert sorted(t["meta"]["run"] for t in scatter) == sorted([a, b])
    for t in scatter:
        run = next(r for r in expected["runs"] if r["id"] == t["meta"]["run"])
        assert t["x"] == [run["summary"][PARETO["x"]]]
        assert t["y"] == [pytest.approx(1 - run["summary"]["test_error"])]
    assert any(t["meta"].get("pareto") is True for t in scatter)

    curves = [t for t in traces(page, "#compare-metric-chart") if t["meta"]["kind"] == "raw"]
    assert {t["meta"]["run"]: t["y"] for t in curves} == {int(k): v for k, v in expected["series"].items()}
    gate = traces(page, "#compare-layer-gate")
    assert [t["meta"]["run"] for t in gate] == [a, b]

    page.fill("#compare-smooth", "0.6")  # smoothing adds a smoothed line per run over the faint raw one
    page.wait_for_function("() => document.querySelector('#compare-metric-chart').data.length === 4")
    assert "smooth=0.6" in page.url
    page.check("#compare-log")
    page.wait_for_function("() => document.querySelector('#compare-metric-chart').layout.yaxis.type === 'log'")
    page.wait_for_timeout(300)
    shoot(page, "compare")


def test_user_text_is_rendered_as_text_never_as_markup(page, server, api):
    run_id = submit(api, {"name": XSS, "project": "<b>proj</b>", "model": {"hidden": [16]}, "train": {"epochs": 1}})
    page.goto(f"{server}/#/runs")
    row = page.locator(f"tr[data-run='{run_id}']")
    row.wait_for()
    assert row.locator("td.name").text_content() == XSS
    assert page.locator("#runs-table img, #runs-table b").count() == 0
    page.wait_for_timeout(500)
    shoot(page, "runs")

    page.goto(f"{server}/#/runs/{run_id}")
    page.wait_for_function("() => document.querySelector('#run-title').textContent.length > 0")
    assert page.text_content("#run-title") == XSS
    assert page.locator("main img").count() == 0
    wait_run(api, run_id)
    other = STATE.get("small")
    if other:
        page.goto(f"{server}/#/compare?ids={other},{run_id}")
        page.wait_for_selector("#config-diff-table")
        assert XSS in page.locator("#compare-runs td.name").all_text_contents()
        assert page.locator("main img").count() == 0
    page.wait_for_timeout(500)
    assert page.dialogs == []


# --- the sign-in link (`/#token=…`): signs in and leaves no trace of the token in the address bar or in the
# tab's history (Back and Forward never show it).

def _signed_in(pg) -> None:
    pg.wait_for_selector("#user-name")
    assert pg.text_content("#user-name") == "admin"


def test_sign_in_link_leaves_no_token_in_the_address_bar_or_history(anonymous_page, server):
    pg = anonymous_page
    # Opened as the first page of a tab (pasted into the address bar, or clicked in a terminal).
    pg.goto(f"{server}/#token={ADMIN_TOKEN}")
    _signed_in(pg)
    assert ADMIN_TOKEN not in pg.url and "token=" not in pg.url, pg.url
    assert pg.evaluate("location.href") == f"{server}/#/runs"
    assert pg.evaluate("localStorage.getItem('gxnor.token')") == ADMIN_TOKEN
    # Opened in a tab that already shows the dashboard (a hash change, not a page load).
    pg.goto(f"{server}/#/sweeps")
    pg.wait_for_selector("#user-name")
    pg.goto(f"{server}/#token={ADMIN_TOKEN}")
    pg.wait_for_function("() => !location.hash.includes('token=')")
    _signed_in(pg)
    assert "token=" not in pg.url
    seen = [pg.url]
    for _ in range(3):  # walk back through the tab's history: no entry holds the token
        pg.go_back()
        seen.append(pg.evaluate("location.href"))
    assert not [u for u in seen if "token=" in u], seen
    for _ in range(3):
        pg.go_forward()
        seen.append(pg.evaluate("location.href"))
    assert not [u for u in seen if "token=" in u], seen


# --- presets whose data this server lacks: marked in the form, and refused naming dataset.name if sent anyway.

def test_new_run_form_marks_presets_whose_data_the_server_lacks(page, server, api, datasets_dir):
    page.goto(f"{server}/#/new")
    page.wait_for_selector("#new-run-form")
    marked = dict(page.eval_on_selector_all(
        "[data-preset][data-missing-data]", "els => els.map((e) => [e.dataset.preset, e.dataset.missingData])"))
    assert marked == {f"{d}-{kind}{fp}": name for d, name in (("mnist", "mnist"), ("cifar", "cifar10"))
                      for kind in ("paper", "reference") for fp in ("", "-fp")}  # the datasets dir is empty
    assert page.is_visible("[data-preset=mnist-paper] .badge")
    assert page.text_content("[data-preset=mnist-paper] .badge") == "data missing on this server"
    assert page.locator("[data-preset=quick] .badge").count() == 0
    option = page.locator("#f-dataset-name option[value=mnist]")
    assert option.is_disabled() and "data missing on this server" in option.text_content()
    shoot(page, "new-run-missing-data")

    # Sent anyway: refused at submission, next to the field, saying where an admin puts the files; nothing queued.
    before = api.get("/api/v1/runs").json()["total"]
    page.click("[data-preset=mnist-paper]")
    assert page.input_value("#f-dataset-name") == "mnist"
    page.click("#submit-run")
    page.wait_for_selector("[data-field='dataset.name'].invalid")
    message = page.text_content("[data-field='dataset.name'] .field-error")
    assert "mnist is not on this server" in message and "GXNOR_DATASETS_DIR" in message, message
    assert "/#/new" in page.url and api.get("/api/v1/runs").json()["total"] == before

    # An admin puts mnist's files in: a form opened afterwards no longer marks its presets.
    folder = datasets_dir / "mnist"
    folder.mkdir()
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        (folder / name).write_bytes(b"")
    try:
        # Same document (hash routes): the form must fetch the catalog afresh, not reuse the page's.
        page.goto(f"{server}/#/runs")
        page.wait_for_selector("#runs-count:not(:empty)")  # the runs view settled before the next one mounts
        page.goto(f"{server}/#/new")
        try:
            page.wait_for_selector("#new-run-form")
            page.wait_for_selector("[data-preset=cifar-paper]")
        except Exception as err:  # (seen once in a full suite, not reproduced: say what the page showed)
            raise AssertionError(f"no new-run form: {page.url} shows {page.text_content('main')!r}") from err
        marked = page.eval_on_selector_all("[data-preset][data-missing-data]",
                                           "els => els.map((e) => e.dataset.preset)")
        assert set(marked) == {f"cifar-{kind}{fp}" for kind in ("paper", "reference") for fp in ("", "-fp")}
        assert not page.locator("#f-dataset-name option[value=mnist]").is_disabled()
    finally:
        shutil.rmtree(folder)


# --- a failed run's page: the one-line reason, and for an admin the traceback folded away in a <details>.

def test_failed_run_page_shows_reason_and_collapsed_traceback(page, server, api, datasets_dir):
    damaged_svhn(datasets_dir)
    cfg = {"name": "ui-bad-data", "dataset": {"name": "svhn"}, "model": {"arch": "mlp", "hidden": [8]},
           "train": {"epochs": 1}}
    run_id = submit(api, cfg)
    assert wait_run(api, run_id)["status"] == "failed"
    page.goto(f"{server}/#/runs/{run_id}")
    page.wait_for_selector("#error-text")
    reason = page.text_content("#error-text")
    assert reason.startswith("DatasetError: dataset 'svhn' in …/svhn: ") and "Traceback" not in reason, reason
    assert page.get_attribute("#error-detail", "open") is None  # collapsed
    assert not page.is_visible("#error-detail pre")
    page.click("#error-detail summary")
    assert page.is_visible("#error-detail pre")
    assert page.text_content("#error-detail pre").startswith("Traceback (most recent call last):")
