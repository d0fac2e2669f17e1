"""A real `gxnor up` on a temporary data directory and a headless Chromium driven by Playwright."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import pytest

try:
    from tests.integration.conftest import Proc, free_port, service_env, wait_healthy
except ImportError:  # plain `pytest` puts tests/ itself on sys.path, not the repository root
    from integration.conftest import Proc, free_port, service_env, wait_healthy

CHROMIUM = os.environ.get("GXNOR_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The whole product (API, UI, one local worker) on a free port; yields its base URL."""
    tmp = tmp_path_factory.mktemp("browser")
    port = free_port()
    up = Proc(["up", "--port", str(port), "--data-dir", str(tmp / "data")], service_env(tmp), tmp / "up.log")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, up)
        yield base
    finally:
        up.stop(signal.SIGINT, timeout=60)


@pytest.fixture(scope="module")
def api(server):
    with httpx.Client(base_url=server, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the dev extra)")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set GXNOR_CHROMIUM)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture()
def page(browser):
    """A fresh page; console errors and uncaught exceptions fail the test, and every dialog is recorded."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    pg = context.new_page()
    pg.errors = []
    pg.dialogs = []
    pg.on("pageerror", lambda exc: pg.errors.append(f"page error: {exc}"))
    # HTTP errors the tests provoke on purpose (a 422) are logged by Chromium as "Failed to load resource".
    pg.on("console", lambda msg: msg.type == "error" and not msg.text.startswith("Failed to load resource")
          and pg.errors.append(f"console: {msg.text}"))

    def on_dialog(dialog):
        pg.dialogs.append(dialog.message)
        dialog.dismiss()

    pg.on("dialog", on_dialog)
    pg.set_default_timeout(20_000)
    yield pg
    context.close()
    assert not pg.errors, pg.errors


def shoot(pg, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    pg.evaluate("window.scrollTo(0, 0)")  # a sticky header would otherwise land mid-page
    pg.screenshot(path=str(path), full_page=True)
    return path
