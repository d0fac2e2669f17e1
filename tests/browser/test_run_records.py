"""The run page's "Records" section: each button downloads one record file through a short-lived link (no token in
any address), the same bytes as the API's file; a run with no epoch yet shows no section."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.slow

TINY = {"project": "records-ui", "name": "records", "model": {"hidden": [16]},
        "train": {"epochs": 2, "batch_size": 200}}


def test_the_record_buttons_download_the_apis_files(page, server, api, tmp_path):
    rid = api.post("/api/v1/runs", json={"config": TINY}).json()["id"]
    deadline = time.time() + 180
    while (status := api.get(f"/api/v1/runs/{rid}").json()["status"]) != "succeeded":
        assert status in ("queued", "running") and time.time() < deadline, status
        time.sleep(0.3)
    page.goto(f"{server}/#/runs/{rid}")
    page.locator("#run-artifacts:not(.hidden)").wait_for()
    for file in ("metrics.csv", "metrics.jsonl", "layers.csv", "layers.jsonl"):
        with page.expect_download() as info:
            page.click(f"#run-artifacts button[data-file='{file}']")
        download = info.value
        assert download.url.startswith(f"{server}/api/v1/downloads/records/") and "token" not in download.url
        assert download.suggested_filename == f"run-{rid}-records-{file}"
        path = tmp_path / file
        download.save_as(path)
        assert path.read_bytes() == api.get(f"/api/v1/runs/{rid}/{file}").content

    # A run cancelled at once has (almost always) no epoch: then nothing to download, and no section.
    other = api.post("/api/v1/runs", json={"config": {**TINY, "name": "not yet", "train": {"epochs": 2000}}}).json()
    api.post(f"/api/v1/runs/{other['id']}/cancel")
    page.goto(f"{server}/#/runs/{other['id']}")
    page.wait_for_function("() => document.querySelector('#run-config')?.childElementCount > 0")  # rendered
    epochs = api.get(f"/api/v1/runs/{other['id']}").json()["progress"]["epochs_done"]
    assert page.locator("#run-artifacts").is_hidden() == (epochs == 0)
