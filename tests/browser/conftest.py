"""A real `gxnor up` on a temporary data directory and a headless Chromium driven by Playwright."""

from __future__ import annotations

import os
import signal
from contextlib import contextmanager
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
# The admin's token of the test server (GXNOR_ADMIN_TOKEN at first start); pages sign in with `#token=`.
ADMIN_TOKEN = "gx_browser-test-admin-token-0123456789abcdef"


@pytest.fixture(scope="module")
def datasets_dir(tmp_path_factory) -> Path:
    """The test server's datasets directory (GXNOR_DATASETS_DIR): empty, so only the bundled datasets are
    served; a test may put files in it (the server looks at each submission)."""
    return tmp_path_factory.mktemp("datasets")


@contextmanager
def gxnor_up(tmp: Path, datasets_dir: Path, **env: str):
    """The whole product (API, UI, one local worker) on a free port, with ``env`` added; yields its base URL."""
    port = free_port()
    up = Proc(["up", "--port", str(port), "--data-dir", str(tmp / "data")],
              service_env(tmp, GXNOR_ADMIN_TOKEN=ADMIN_TOKEN, GXNOR_DATASETS_DIR=str(datasets_dir), **env),
              tmp / "up.log")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, up)
        yield base
    finally:
        up.stop(signal.SIGINT, timeout=60)


@pytest.fixture(scope="module")
def server(tmp_path_factory, datasets_dir):
    """The whole product on a free port; yields its base URL."""
    with gxnor_up(tmp_path_factory.mktemp("browser"), datasets_dir) as base:
        yield base


@pytest.fixture(scope="module")
def api(server):
    with httpx.Client(base_url=server, timeout=30, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as client:
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


def _page(browser, signed_in: bool):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    if signed_in:  # as if the sign-in link had been opened before
        context.add_init_script(f"localStorage.setItem('gxnor.token', {ADMIN_TOKEN!r})")
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
    return context, pg


@pytest.fixture()
def page(browser):
    """A fresh page signed in as the admin; console errors and uncaught exceptions fail the test, and every
    dialog is recorded."""
    context, pg = _page(browser, signed_in=True)
    yield pg
    context.close()
    assert not pg.errors, pg.errors


@pytest.fixture()
def anonymous_page(browser):
    """Like ``page`` but with no stored token (sign-in tests)."""
    context, pg = _page(browser, signed_in=False)
    yield pg
    context.close()
    assert not pg.errors, pg.errors


def sign_in(pg, server: str, path: str = "/runs") -> None:
    """Open the dashboard through the sign-in link, then go to ``path`` (a hash route)."""
    pg.goto(f"{server}/#token={ADMIN_TOKEN}")
    pg.wait_for_function("() => !location.hash.includes('token=')")
    pg.goto(f"{server}/#{path}")


def shoot(pg, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    pg.evaluate("window.scrollTo(0, 0)")  # a sticky header would otherwise land mid-page
    pg.screenshot(path=str(path), full_page=True)
    return path
