"""The dashboard's metric columns, cards, sort directions and runs CSV come from the metric catalog
(GET /api/v1/catalog → metrics; gxnor_core.metrics), not from declarations of its own."""

from __future__ import annotations

import csv

from .conftest import click_download, shoot


def pct(v: float | None, digits: int) -> str:
    """The UI's percentage (util.fmtPct)."""
    return "—" if v is None else f"{v * 100:.{digits}f}%"


def test_runs_table_cards_and_csv_come_from_the_catalog(page, server, api, tiny_run, tmp_path):
    cat = api.get("/api/v1/catalog").json()["metrics"]
    by_name = {m["name"]: m for m in cat["run"]}
    run_id = tiny_run
    summary = api.get(f"/api/v1/runs/{run_id}").json()["summary"]

    # The runs table: the catalog's `list` view, headed by each metric's short label, in its format.  (Its project
    # only: the run may be older than the first page of the shared server's runs.)
    page.goto(f"{server}/#/runs?project=tiny")
    row = page.locator(f"tr[data-run='{run_id}']")
    row.wait_for()
    shown = [by_name[n] for n in cat["views"]["list"]]
    keys = [th.get_attribute("data-sort") for th in page.locator("#runs-table th[data-sort]").all()]
    assert [k for k in keys if k in by_name] == [m["name"] for m in shown]
    for m in shown:
        th = page.locator(f"#runs-table th[data-sort='{m['name']}']")
        assert th.text_content().startswith(m["short"]) and m["description"] in th.get_attribute("title")
        assert row.locator(f"td[data-metric='{m['name']}']").text_content() == pct(summary[m["name"]], m["digits"])
    # Sorting by a metric asks the API for it, best first.
    page.click(f"#runs-table th[data-sort='{shown[-1]['name']}']")
    page.wait_for_function(f"() => location.hash.includes('sort={shown[-1]['name']}')")
    first = "asc" if shown[-1]["better"] != "higher" else "desc"
    # the table is drawn again once the API has answered the sorted list: wait for that header, then read it
    header = f"#runs-table th[data-sort='{shown[-1]['name']}'][aria-sort]"
    page.wait_for_selector(header)
    assert page.get_attribute(header, "aria-sort") == ("ascending" if first == "asc" else "descending")

    # The CSV has the columns shown (views/runs/export.js): with every run metric of the catalog chosen in the
    # address, every one of them, raw numbers.
    page.goto(f"{server}/#/runs?project=tiny&cols=id,name,{','.join(by_name)}")
    page.locator(f"tr[data-run='{run_id}']").wait_for()
    path = click_download(page, "#export-csv", tmp_path / "runs.csv")
    with path.open(newline="", encoding="utf-8") as fh:
        table = {int(r["id"]): r for r in csv.DictReader(fh)}
    line = table[run_id]
    for name, value in summary.items():
        assert name in line, name
        assert (float(line[name]) if line[name] else None) == value, name

    # The run page's cards: the catalog's `card` view, with each metric's label.
    page.goto(f"{server}/#/runs/{run_id}")
    page.locator("#run-cards .card").first.wait_for()
    cards = [by_name[n] for n in cat["views"]["card"]]
    labels = page.locator("#run-cards .card .k").all_text_contents()
    values = page.locator("#run-cards .card .v").all_text_contents()
    assert labels[:len(cards)] == [m["label"] for m in cards]
    for m, value in zip(cards, values, strict=False):
        if m["format"] == "percent":
            assert value == pct(summary[m["name"]], m["digits"]), m["name"]
    shoot(page, "run-cards-from-catalog")
