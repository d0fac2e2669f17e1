"""The run page's "Exported model" panel (docs/EXPORT.md, "Serving"): fetched only when opened, it downloads the
.gxn file the API serves and shows the API's figures — size at rest against float32, latency at batch 1 and 64,
and the engine's gate events beside the cost model's."""

from __future__ import annotations

import pytest

from .conftest import shoot

pytestmark = pytest.mark.slow


def test_the_exported_model_panel_downloads_the_file_and_shows_the_apis_figures(page, server, api, tiny_run, tmp_path):
    run_id = tiny_run
    asked = []
    page.on("request", lambda req: "/api/v1/runs/" in req.url and "/model" in req.url and asked.append(req.url))
    page.goto(f"{server}/#/runs/{run_id}")
    page.locator("#run-model-panel").wait_for()
    assert page.locator("#run-model-panel").get_attribute("open") is None and not asked  # nothing until opened

    page.click("#run-model-panel > summary")
    page.locator("#model-size").wait_for()
    assert len(asked) == 1 and "/model/profile?which=best" in asked[0]
    prof = api.get(f"/api/v1/runs/{run_id}/model/profile").json()  # measured once per model: the same figures

    def exact(selector: str) -> float:
        return float(page.get_attribute(selector, "title"))

    assert exact("#model-size td[data-figure='size_bytes']") == prof["size_bytes"]
    assert exact("#model-size td[data-figure='fp32_bytes']") == prof["fp32_bytes"]
    for row in prof["latency"]:
        assert exact(f"#model-latency tr[data-batch='{row['batch']}'] td[data-figure='ms_per_sample']") == \
            pytest.approx(row["ms_per_sample"], rel=1e-12)
    assert [int(b) for b in page.locator("#model-latency tbody tr").evaluate_all(
        "rows => rows.map((r) => r.dataset.batch)")] == [1, 64]
    costs = api.get(f"/api/v1/runs/{run_id}/costs", params={"epoch": prof["epoch"]}).json()
    counted = {r["layer"]: r["xnor"] for r in next(s for s in costs["schemes"] if s["name"] == "run")["layers"]}
    rows = page.locator("#model-events tbody tr")
    assert [r.get_attribute("data-layer") for r in rows.all()] == list(prof["events"]["per_sample"])
    for name, executed in prof["events"]["per_sample"].items():
        row = f"#model-events tr[data-layer='{name}']"
        assert exact(f"{row} td[data-figure='executed']") == pytest.approx(executed, rel=1e-12)
        assert exact(f"{row} td[data-figure='counted']") == pytest.approx(counted[name], rel=1e-12)
        assert page.text_content(f"{row} td:last-child") == "equal"
    assert f"epoch {prof['epoch']}" in page.text_content("#model-basis")

    with page.expect_download() as info:
        page.click("#model-download")
    path = tmp_path / "model.gxn"
    info.value.save_as(path)
    assert info.value.suggested_filename.endswith(".gxn")
    assert path.read_bytes() == api.get(f"/api/v1/runs/{run_id}/model").content
    shoot(page, "run-model-panel")

    # The latest checkpoint's model on request: a second profile, for that model.
    page.select_option("#model-which", "latest")
    page.wait_for_function("() => document.querySelector('#model-basis')?.textContent.includes('latest')")
    latest = api.get(f"/api/v1/runs/{run_id}/model/profile", params={"which": "latest"}).json()
    assert exact("#model-size td[data-figure='size_bytes']") == latest["size_bytes"]
