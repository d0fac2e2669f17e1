"""A failed run's page: the one-line reason, and for an admin the traceback folded away in a <details>."""

from __future__ import annotations

from .test_dashboard import submit, wait_run


def test_failed_run_page_shows_reason_and_collapsed_traceback(page, server, api):
    cfg = {"name": "ui-no-data", "dataset": {"name": "cifar10"}, "model": {"arch": "mlp", "hidden": [8]},
           "train": {"epochs": 1}}
    run_id = submit(api, cfg)
    assert wait_run(api, run_id)["status"] == "failed"
    page.goto(f"{server}/#/runs/{run_id}")
    page.wait_for_selector("#error-text")
    reason = page.text_content("#error-text")
    assert reason.startswith("DatasetError: dataset 'cifar10' not found") and "Traceback" not in reason
    assert page.get_attribute("#error-detail", "open") is None  # collapsed
    assert not page.is_visible("#error-detail pre")
    page.click("#error-detail summary")
    assert page.is_visible("#error-detail pre")
    assert page.text_content("#error-detail pre").startswith("Traceback (most recent call last):")
