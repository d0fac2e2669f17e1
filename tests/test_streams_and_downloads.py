"""Download links, the pool-timeout answer, and the request guards (Host, cross-site writes), in-process
against a real SQLite file.  (Many concurrent streams and downloads against a real server:
tests/integration/test_live_streams.py.)"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from app.db import get_engine, session_scope
from app.main import create_app
from app.models import DownloadLink, utcnow
from app.settings import Settings
from worker.runner import execute_run

ADMIN = "gx_streams-test-admin"
AS_ADMIN = {"Authorization": f"Bearer {ADMIN}"}
TINY = {"name": "dl", "model": {"hidden": [8]}, "train": {"epochs": 1, "batch_size": 200}}


@pytest.fixture()
def settings(tmp_path):
    return Settings(data_dir=tmp_path / "data", admin_token=ADMIN)


@pytest.fixture()
def client(settings):
    with TestClient(create_app(settings), headers=AS_ADMIN) as c:
        yield c


def trained_run(client, settings) -> int:
    run = client.post("/api/v1/runs", json={"config": TINY}).json()
    assert execute_run(run["id"], settings) == "succeeded"
    return run["id"]


def test_a_download_link_serves_one_file_without_a_token_until_it_expires(client, settings):
    run_id = trained_run(client, settings)
    direct = client.get(f"/api/v1/runs/{run_id}/checkpoint")
    assert direct.status_code == 200 and len(direct.content) > 1000
    # A token in the URL is no longer accepted for downloads (it would land in the browser's history).
    assert client.get(f"/api/v1/runs/{run_id}/checkpoint", params={"token": ADMIN},
                      headers={"Authorization": ""}).status_code == 401
    made = client.post(f"/api/v1/runs/{run_id}/checkpoint/link")
    assert made.status_code == 201, made.text
    url = made.json()["url"]
    assert url.startswith("/api/v1/downloads/") and ADMIN not in url
    anon = client.get(url, headers={"Authorization": ""})
    assert anon.status_code == 200 and anon.content == direct.content
    assert f'filename="run-{run_id}-' in anon.headers["content-disposition"]
    # Another key, or a mangled one, serves nothing.
    assert client.get(url[:-4] + "AAAA", headers={"Authorization": ""}).status_code == 404
    assert client.get("/api/v1/downloads/short", headers={"Authorization": ""}).status_code == 422
    # Expired: 404, with a message saying so.
    with session_scope(settings.db_url) as s:
        s.execute(update(DownloadLink).values(expires_at=utcnow() - timedelta(seconds=1)))
    gone = client.get(url, headers={"Authorization": ""})
    assert gone.status_code == 404 and "expired" in gone.json()["detail"]
    # A run without a checkpoint gets no link.
    queued = client.post("/api/v1/runs", json={"config": TINY}).json()["id"]
    assert client.post(f"/api/v1/runs/{queued}/checkpoint/link").status_code == 404


def test_a_link_stops_working_when_its_user_leaves_the_team(client, settings):
    run_id = trained_run(client, settings)
    made = client.post("/api/v1/users", json={"name": "dora", "teams": ["default"]}).json()
    dora = {"Authorization": f"Bearer {made['token']['token']}"}
    url = client.post(f"/api/v1/runs/{run_id}/checkpoint/link", headers=dora).json()["url"]
    assert client.get(url, headers={"Authorization": ""}).status_code == 200
    client.post("/api/v1/teams", json={"name": "elsewhere"})
    assert client.patch(f"/api/v1/users/{made['user']['id']}", json={"teams": ["elsewhere"]}).status_code == 200
    assert client.get(url, headers={"Authorization": ""}).status_code == 404
    assert client.post(f"/api/v1/runs/{run_id}/checkpoint/link", headers=dora).status_code == 404


def test_an_exhausted_pool_answers_503_quickly_while_reads_go_on(tmp_path):
    """Every connection of the request-thread pool held (as slow downloads or streams once did): a route
    that needs one answers 503 within the pool timeout instead of queueing; the read routes, on their own
    pool in the event loop, are not affected (for a token already looked up)."""
    from app.db import POOL_TIMEOUT_S

    settings = Settings(data_dir=tmp_path / "data", admin_token=ADMIN, auth_cache_s=120)
    with TestClient(create_app(settings), headers=AS_ADMIN) as client:
        assert client.get("/api/v1/runs").status_code == 200
        _hold_every_connection(client, settings, POOL_TIMEOUT_S)


def _hold_every_connection(client, settings, pool_timeout):
    engine = get_engine(settings.db_url)
    held = [engine.connect() for _ in range(engine.pool.size() + engine.pool._max_overflow)]
    try:
        t0 = time.monotonic()
        resp = client.post("/api/v1/runs", json={"config": TINY})
        took = time.monotonic() - t0
        assert resp.status_code == 503 and resp.headers["retry-after"], resp.text
        assert took < pool_timeout + 2, took
        assert client.get("/api/v1/runs").status_code == 200
    finally:
        for conn in held:
            conn.close()
    assert client.post("/api/v1/runs", json={"config": TINY}).status_code == 201


@pytest.fixture()
def open_client(tmp_path):
    """Auth switched off (loopback only): the mode where cross-site writes and DNS rebinding matter."""
    with TestClient(create_app(Settings(data_dir=tmp_path / "data", auth=False))) as c:
        yield c


def test_with_auth_off_a_cross_site_write_is_refused(open_client):
    run_id = open_client.post("/api/v1/runs", json={"config": TINY}).json()["id"]
    # What a page on another site can send without a preflight: no body, a form, text/plain.
    for headers in ({}, {"Content-Type": "application/x-www-form-urlencoded"}, {"Content-Type": "text/plain"}):
        refused = open_client.post(f"/api/v1/runs/{run_id}/cancel", headers=headers)
        assert refused.status_code == 403 and "Content-Type" in refused.json()["detail"], (headers, refused.text)
        assert open_client.delete(f"/api/v1/runs/{run_id}", headers=headers).status_code == 403
    assert open_client.get(f"/api/v1/runs/{run_id}").json()["status"] == "queued"
    # An Origin that is not this server's: refused even with a JSON body.
    evil = open_client.post(f"/api/v1/runs/{run_id}/cancel", json={},
                            headers={"Origin": "http://evil.example"})
    assert evil.status_code == 403 and open_client.get(f"/api/v1/runs/{run_id}").json()["status"] == "queued"
    # The UI's own requests: same origin, with a header a cross-site page cannot send without a preflight.
    ok = open_client.post(f"/api/v1/runs/{run_id}/cancel",
                          headers={"X-Requested-With": "gxnor-ui", "Origin": "http://testserver"})
    assert ok.status_code == 200 and ok.json()["status"] == "cancelled"


def test_with_auth_off_only_loopback_host_names_are_answered(open_client):
    assert open_client.get("/api/v1/runs", headers={"Host": "localhost:8000"}).status_code == 200
    assert open_client.get("/api/v1/runs", headers={"Host": "127.0.0.1"}).status_code == 200
    assert open_client.get("/api/v1/runs", headers={"Host": "[::1]:8000"}).status_code == 200
    # DNS rebinding: the attacker's name pointed at 127.0.0.1.
    for host in ("evil.example", "evil.example:8000", "127.0.0.1.evil.example"):
        resp = open_client.get("/api/v1/runs", headers={"Host": host})
        assert resp.status_code == 400 and "Host" in resp.json()["detail"], host
    assert open_client.get("/", headers={"Host": "evil.example"}).status_code == 400


def test_allowed_hosts_restrict_an_authenticated_server_too(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", admin_token=ADMIN, allowed_hosts=["gxnor.example.org"])
    with TestClient(create_app(settings), headers=AS_ADMIN) as c:
        assert c.get("/api/v1/runs", headers={"Host": "gxnor.example.org"}).status_code == 200
        assert c.get("/api/v1/runs", headers={"Host": "gxnor.example.org:443"}).status_code == 200
        assert c.get("/api/v1/runs", headers={"Host": "other.example.org"}).status_code == 400
