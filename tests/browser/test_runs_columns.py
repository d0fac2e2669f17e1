"""The runs page against a real `gxnor up`: the column chooser (kept in the address, through a reload, and the CSV
has exactly those columns), tags added in bulk and a tag chip that filters, archiving that hides runs, and bulk
refusals shown per run in words."""

from __future__ import annotations

import csv
import time
import uuid

from .conftest import click_download, click_to_confirm, shoot

TINY = {"model": {"hidden": [16]}, "train": {"epochs": 1, "batch_size": 200}}


def submit(api, config: dict) -> int:
    resp = api.post("/api/v1/runs", json={"config": config})
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def finished(api, *run_ids: int, timeout: float = 120) -> list[dict]:
    deadline = time.time() + timeout
    runs = []
    for run_id in run_ids:
        while (run := api.get(f"/api/v1/runs/{run_id}").json())["status"] in ("queued", "running"):
            assert time.time() < deadline, f"run {run_id} did not finish"
            time.sleep(0.3)
        runs.append(run)
    return runs


def hash_param(page, name: str) -> str | None:
    return page.evaluate(f"new URLSearchParams(location.hash.split('?')[1] || '').get({name!r})")


def heads(page) -> list[str]:
    return [th.get_attribute("data-sort") for th in page.locator("#runs-table th[data-sort]").all()]


def shown_ids(page) -> list[int]:
    return sorted(int(r.get_attribute("data-run")) for r in page.locator("#runs-table tbody tr[data-run]").all())


def download_csv(page, tmp_path, name: str) -> tuple[list[str], dict[int, dict]]:
    path = click_download(page, "#export-csv", tmp_path / name)
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), {int(r["id"]): r for r in reader}


def test_chosen_columns_live_in_the_address_survive_a_reload_and_make_the_csv(page, server, api, tmp_path):
    project = f"cols-{uuid.uuid4().hex[:6]}"
    a = submit(api, {**TINY, "project": project, "name": "cols-a", "activations": {"a": 0.75},
                     "train": {**TINY["train"], "seed": 3, "lr": 0.02}})
    b = submit(api, {**TINY, "project": project, "name": "cols-b"})
    runs = {r["id"]: r for r in finished(api, a, b)}

    page.goto(f"{server}/#/runs?project={project}")
    page.locator(f"tr[data-run='{a}']").wait_for()
    page.click("#columns-button")
    added = ("activations.a", "dst.optimizer", "train.lr", "train.seed", "sweep", "best_epoch")
    removed = ("model", "weightsN", "actN", "r")
    for key in added:
        page.check(f"#column-chooser input[data-col='{key}']")
    for key in removed:
        page.uncheck(f"#column-chooser input[data-col='{key}']")
    page.wait_for_function("() => location.hash.includes('cols=') && location.hash.includes('best_epoch')")
    cols = hash_param(page, "cols").split(",")
    assert set(added) <= set(cols) and not set(removed) & set(cols)
    assert cols[:2] == ["id", "name"] and heads(page) == cols
    # Where a column sorts: the API for a metric, this page only for a config field (its tooltip says which).
    assert "Sorts all runs" in page.get_attribute("#runs-table th[data-sort='best_epoch']", "title")
    assert "this page only" in page.get_attribute("#runs-table th[data-sort='train.seed']", "title")
    assert "Derivative window" in page.get_attribute("#runs-table th[data-sort='activations.a']", "title")
    shoot(page, "runs-column-chooser")

    page.reload()
    page.locator(f"tr[data-run='{a}']").wait_for()
    assert heads(page) == cols and hash_param(page, "project") == project
    assert page.is_checked("#column-chooser input[data-col='activations.a']")
    assert not page.is_checked("#column-chooser input[data-col='model']")
    page.click("#runs-table th[data-sort='train.seed']")  # a page-only sort: the highest seed first on desc
    page.wait_for_function("() => location.hash.includes('sort=train.seed')")
    page.click("#runs-table th[data-sort='train.seed']")
    page.wait_for_function("() => location.hash.includes('order=desc')")
    page.wait_for_function("() => document.querySelector('#runs-table th[data-sort=\"train.seed\"]')"
                           ".getAttribute('aria-sort') === 'descending'")
    assert page.locator("#runs-table tbody tr[data-run]").first.get_attribute("data-run") == str(a)

    header, rows = download_csv(page, tmp_path, "runs.csv")
    assert header == cols and sorted(rows) == [a, b]
    for run_id, run in runs.items():
        row = rows[run_id]
        assert row["name"] == run["name"] and row["status"] == "succeeded"
        assert float(row["activations.a"]) == run["config"]["activations"]["a"]
        assert float(row["train.lr"]) == run["config"]["train"]["lr"]
        assert int(row["train.seed"]) == run["config"]["train"]["seed"]
        assert row["dst.optimizer"] == run["config"]["dst"]["optimizer"]
        assert int(row["best_epoch"]) == run["summary"]["best_epoch"]
        assert float(row["test_error"]) == run["summary"]["test_error"]
        assert row["sweep"] == ""
    assert rows[a]["activations.a"] == "0.75" and rows[a]["train.seed"] == "3"

    # Hiding the name keeps it in the CSV, with the id, first.
    page.click("#columns-button")
    page.uncheck("#column-chooser input[data-col='name']")
    page.wait_for_function("() => !new URLSearchParams(location.hash.split('?')[1]).get('cols').includes('name,')")
    assert "name" not in heads(page)
    header, _ = download_csv(page, tmp_path, "runs-no-name.csv")
    assert header == ["id", "name", *[k for k in cols if k not in ("id", "name")]]


def test_bulk_tags_a_chip_filters_archive_hides_and_refusals_are_in_words(page, server, api):
    project = f"bulk-{uuid.uuid4().hex[:6]}"
    a, b, c = (submit(api, {**TINY, "project": project, "name": f"bulk-{i}"}) for i in "abc")
    finished(api, a, b, c)
    tag = f"t-{uuid.uuid4().hex[:6]}"

    page.goto(f"{server}/#/runs?project={project}")
    page.locator(f"tr[data-run='{c}']").wait_for()
    page.check(f"input[data-select='{a}']")
    page.check(f"input[data-select='{b}']")
    assert page.text_content("#bulk-count") == "2 selected:"
    page.fill("#bulk-tags", tag)
    page.click("[data-bulk=tag]")
    page.locator(f"tr[data-run='{a}'] .chip[data-tag='{tag}']").wait_for()
    assert [api.get(f"/api/v1/runs/{i}").json()["tags"] for i in (a, b, c)] == [[tag], [tag], []]

    page.click(f"tr[data-run='{b}'] .chip[data-tag='{tag}']")  # a chip filters by its tag
    page.wait_for_function(f"() => location.hash.includes('tag={tag}')")
    page.wait_for_function("() => document.querySelectorAll('#runs-table tbody tr[data-run]').length === 2")
    assert shown_ids(page) == sorted([a, b]) and page.input_value("#tag-filter") == tag

    # Archive one finished run and one that is still training: the second is refused, in words.
    live = submit(api, {**TINY, "project": project, "name": "bulk-live", "dataset": {"name": "mnist5k"},
                        "train": {"epochs": 2000, "batch_size": 50}})
    page.goto(f"{server}/#/runs?project={project}")
    page.locator(f"tr[data-run='{live}']").wait_for()
    page.check(f"input[data-select='{a}']")
    page.check(f"input[data-select='{live}']")
    page.click("[data-bulk=archive]")
    refusal = page.locator(f"#bulk-result li[data-run='{live}']")
    refusal.wait_for()
    assert refusal.text_content().startswith(f"Run #{live}: it is ")
    assert "only a finished run can be archived" in refusal.text_content()
    assert page.locator("#bulk-result li").count() == 1
    page.locator(f"tr[data-run='{a}']").wait_for(state="detached")  # archived runs are hidden by default
    assert page.text_content("#bulk-count") == "1 selected:"  # the hidden run left the selection
    assert api.get(f"/api/v1/runs/{a}").json()["archived"] is True
    shoot(page, "runs-bulk-refusal")

    page.select_option("#archived-filter", "true")
    page.wait_for_function("() => location.hash.includes('archived=true')")
    page.wait_for_function("() => document.querySelectorAll('#runs-table tbody tr[data-run]').length === 1")
    assert shown_ids(page) == [a]
    page.select_option("#archived-filter", "any")
    page.wait_for_function("() => document.querySelectorAll('#runs-table tbody tr[data-run]').length === 4")
    assert "archived" in page.get_attribute(f"tr[data-run='{a}']", "class")

    # Cancel in bulk takes a confirming click.
    page.click("#clear-selection")
    page.check(f"input[data-select='{live}']")
    def one_click_cancels_nothing():
        assert api.get(f"/api/v1/runs/{live}").json()["status"] in ("queued", "running")

    click_to_confirm(page, "[data-bulk=cancel]", "Confirm cancel", one_click_cancels_nothing)
    # The page answers the request first (its toast), and the server has the cancel before the worker acts on it:
    # twice, in loaded CI runs, this run went on for 120 s — these say whether the request or the worker failed.
    toast = page.locator("#toast .msg", has_text="Cancel").first
    toast.wait_for(timeout=30_000)
    assert toast.text_content().startswith("Cancelled 1 of 1 run"), toast.text_content()
    after = api.get(f"/api/v1/runs/{live}").json()
    assert after["cancel_requested"] or after["status"] == "cancelled", after
    run = finished(api, live)[0]
    assert run["status"] == "cancelled"
    assert not page.errors, page.errors
