"""A real `gxnor up` on a temporary data directory and a headless Chromium driven by Playwright."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

try:
    from tests.integration.conftest import Proc, free_port, service_env, wait_for, wait_healthy
except ImportError:  # plain `pytest` puts tests/ itself on sys.path, not the repository root
    from integration.conftest import Proc, free_port, service_env, wait_for, wait_healthy

CHROMIUM = os.environ.get("GXNOR_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
# The admin's token of the test server (GXNOR_ADMIN_TOKEN at first start); pages sign in with `#token=`.
ADMIN_TOKEN = "gx_browser-test-admin-token-0123456789abcdef"


@pytest.fixture(scope="session")
def datasets_dir(tmp_path_factory) -> Path:
    """The test servers' datasets directory (GXNOR_DATASETS_DIR): empty, so only the bundled datasets are
    served; a test may put files in it (the server looks at each submission) and takes out what others mind."""
    return tmp_path_factory.mktemp("datasets")


def damaged_svhn(datasets_dir: Path) -> None:
    """svhn's files in the datasets directory, so a run on it is accepted, but damaged, so the worker fails it."""
    (datasets_dir / "svhn").mkdir(exist_ok=True)
    for name in ("train_32x32.mat", "test_32x32.mat"):
        (datasets_dir / "svhn" / name).write_bytes(b"not a .mat file")


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


@pytest.fixture(scope="session")
def server(tmp_path_factory, datasets_dir):
    """The whole product on a free port, one per test process (starting it and training on it is most of these
    tests' time): the modules that share it look only at their own runs and sweeps.  Yields its base URL."""
    with gxnor_up(tmp_path_factory.mktemp("browser"), datasets_dir) as base:
        yield base


def admin_client(base: str) -> httpx.Client:
    return httpx.Client(base_url=base, timeout=30, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})


@pytest.fixture(scope="module")
def api(server):
    with admin_client(server) as client:
        yield client


def wait_run(api, run_id: int, timeout: float = 120) -> dict:
    """The run once it ended (succeeded, failed or cancelled)."""
    return wait_for(lambda: (run := api.get(f"/api/v1/runs/{run_id}").json())["status"]
                    in ("succeeded", "failed", "cancelled") and run, timeout, what=f"run {run_id} to end")


def wait_sweep(api, sweep_id: int, timeout: float = 75) -> dict:
    """The sweep once it ended (finished or cancelled)."""
    return wait_for(lambda: (sweep := api.get(f"/api/v1/sweeps/{sweep_id}").json())["status"]
                    in ("finished", "cancelled") and sweep, timeout, interval=0.5, what=f"sweep {sweep_id} to end")


# Runs that several modules only look at, trained once per test process on the shared server.
TINY = {"model": {"hidden": [16]}, "train": {"epochs": 2, "batch_size": 200}}


@pytest.fixture(scope="session")
def tiny_run(server) -> int:
    """A finished two-layer run on digits (fc1 sees the data, fc2 is an XNOR layer); its id."""
    with admin_client(server) as api:
        resp = api.post("/api/v1/runs", json={"config": {**TINY, "project": "tiny", "name": "tiny"}})
        assert resp.status_code == 201, resp.text
        run_id = resp.json()["id"]
        assert wait_run(api, run_id, timeout=180)["status"] == "succeeded"
    return run_id


@pytest.fixture(scope="session")
def grid_sweep(server) -> int:
    """A finished 2 × 2 grid sweep over activations.r and weights.N, one seed (two swept fields: its page draws a
    heatmap); its id."""
    spec = {"name": "grid", "base": {**TINY, "model": {"hidden": [8]}}, "seeds": [0],
            "grid": {"activations.r": [0, 1], "weights.N": [1, 2]}}
    with admin_client(server) as api:
        resp = api.post("/api/v1/sweeps", json=spec)
        assert resp.status_code == 201, resp.text
        sweep = wait_sweep(api, resp.json()["id"], timeout=180)
        assert sweep["status"] == "finished" and sweep["counts"]["succeeded"] == 4, sweep["counts"]
    return sweep["id"]


@pytest.fixture(scope="module")
def browser():
    """Chromium for one module (not the session, as the server is: Playwright's sync API keeps an event loop
    running in this thread, and a later module in the same test process calling asyncio.run would fail)."""
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


def click_download(pg, selector: str, path: Path) -> Path:
    """Click ``selector``, wait for the download it starts and save it at ``path``."""
    with pg.expect_download() as info:
        pg.click(selector)
    info.value.save_as(path)
    return path


def click_to_confirm(pg, selector: str, confirm_label: str, between: Callable[[], None]) -> None:
    """A button that takes a confirming click (frontend/js/dom.js ``confirmButton``): the first click arms it
    (its label says ``confirm_label``), ``between()`` checks that nothing happened yet, the second click
    confirms.  The button disarms after 4 s; a request to the busy test server in ``between`` once took that
    long, and the "confirming" click then only armed it again — so it is armed again first if it must be, and
    that check and the confirming click run in one task of the page: checked from here, the timer could still
    fire between the check and Playwright's click on a loaded machine (the likely way a fresh-clone CI run,
    with other work on the host, lost a bulk cancel and waited 120 s for a 2 000-epoch run to end)."""
    pg.click(selector)
    assert pg.text_content(selector) == confirm_label
    between()
    pg.evaluate("""([selector, label]) => {
        const button = document.querySelector(selector);
        if (button.textContent !== label) button.click();  // disarmed meanwhile: arm it again
        button.click();
    }""", [selector, confirm_label])
