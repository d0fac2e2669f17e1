"""The sign-in link (`/#token=…`) signs in and leaves no trace of the token in the address bar or in the
tab's history (Back and Forward never show it)."""

from __future__ import annotations

from .conftest import ADMIN_TOKEN


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
