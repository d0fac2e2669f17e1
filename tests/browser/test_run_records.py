"""The run page's "Records" section: each button downloads one record file through a short-lived link (no token in
any address), the same bytes as the API's file; a run with no epoch yet shows no section."""

from __future__ import annotations

import pytest

from .conftest import TINY

pytestmark = pytest.mark.slow


def test_the_record_buttons_download_the_apis_files(page, server, api, tiny_run, tmp_path):
    rid = tiny_run
    page.goto(f"{server}/#/runs/{rid}")
    page.locator("#run-artifacts:not(.hidden)").wait_for()
    for file in ("metrics.csv", "metrics.jsonl", "layers.csv", "layers.jsonl"):
        with page.expect_download() as info:
            page.click(f"#run-artifacts button[data-file='{file}']")
        download = info.value
        assert download.url.startswith(f"{server}/api/v1/downloads/records/") and "token" not in download.url
        assert download.suggested_filename == f"run-{rid}-tiny-{file}"  # (its name)
        path = tmp_path / file
        download.save_as(path)
        assert path.read_bytes() == api.get(f"/api/v1/runs/{rid}/{file}").content

    # A run cancelled at once has (almost always) no epoch: then nothing to download, and no section.
    other = api.post("/api/v1/runs", json={"config": {**TINY, "project": "records-ui", "name": "not yet",
                                                     "train": {"epochs": 2000}}}).json()
    api.post(f"/api/v1/runs/{other['id']}/cancel")
    page.goto(f"{server}/#/runs/{other['id']}")
    page.wait_for_function("() => document.querySelector('#run-config')?.childElementCount > 0")  # rendered
    epochs = api.get(f"/api/v1/runs/{other['id']}").json()["progress"]["epochs_done"]
    assert page.locator("#run-artifacts").is_hidden() == (epochs == 0)
