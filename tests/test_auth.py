"""Teams, tokens and limits against the real app on a real SQLite file."""

import hashlib
import os
import re
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.db import session_scope
from app.main import create_app
from app.models import ApiToken
from app.settings import Settings
from worker.runner import execute_run

ADMIN = "gx_auth-test-admin"
TINY = {"model": {"hidden": [16]}, "train": {"epochs": 1, "batch_size": 100}}


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture()
def settings(tmp_path):
    return Settings(data_dir=tmp_path / "data", admin_token=ADMIN, auth_cache_s=30, max_queued_runs=3)


@pytest.fixture()
def world(settings):
    """An admin, teams red and blue, users alice (red), bob (blue) and carol (both), each with a token."""
    with TestClient(create_app(settings)) as client:
        admin = bearer(ADMIN)
        for team in ("red", "blue"):
            assert client.post("/api/v1/teams", json={"name": team}, headers=admin).status_code == 201
        tokens = {}
        for user, teams in (("alice", ["red"]), ("bob", ["blue"]), ("carol", ["red", "blue"])):
            resp = client.post("/api/v1/users", json={"name": user, "teams": teams}, headers=admin)
            assert resp.status_code == 201, resp.text
            tokens[user] = resp.json()["token"]["token"]
        yield client, tokens


def api_routes(client) -> list[tuple[str, str]]:
    """Every documented API operation (method, path template)."""
    paths = client.get("/openapi.json").json()["paths"]
    return sorted((m.upper(), p) for p, ops in paths.items() if p.startswith("/api/v1") for m in ops)


def object_routes(client) -> list[tuple[str, str]]:
    """Every API operation that addresses one run."""
    return [(m, p) for m, p in api_routes(client) if "{run_id}" in p]


def test_every_api_route_needs_a_token_but_healthz(settings):
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200
        routes = api_routes(client)
        assert len(routes) >= 15
        for method, path in routes:
            if path in ("/api/v1/downloads/{key}", "/api/v1/downloads/model/{key}", "/api/v1/downloads/records/{key}"):
                # their key is the credential (tests/test_streams_and_downloads.py, tests/test_model_serving.py,
                # tests/test_artifacts.py)
                continue
            url = re.sub(r"\{[a-z_]+\}", "1", path)
            for headers in ({}, bearer("gx_not-a-token"), {"Authorization": f"Basic {ADMIN}"}):
                resp = client.request(method, url, headers=headers)
                assert resp.status_code == 401, (method, url, headers, resp.status_code)
                assert resp.headers["www-authenticate"] == "Bearer"
        # The admin's token (GXNOR_ADMIN_TOKEN at first start) works, and is stored only as a hash.
        me = client.get("/api/v1/me", headers=bearer(ADMIN)).json()
        assert me["user"]["name"] == "admin" and me["user"]["is_admin"]
        assert [t["name"] for t in me["teams"]] == ["default"]
        with session_scope(settings.db_url) as s:
            stored = list(s.scalars(select(ApiToken.token_hash)))
        assert stored == [hashlib.sha256(ADMIN.encode()).hexdigest()]


def test_another_teams_run_is_a_404_on_every_route_and_absent_from_lists(world, settings):
    client, tokens = world
    alice, bob = bearer(tokens["alice"]), bearer(tokens["bob"])
    run = client.post("/api/v1/runs", json={"config": {**TINY, "name": "red-secret"}}, headers=alice).json()
    assert run["team"] == "red"
    execute_run(run["id"], settings)
    assert client.get(f"/api/v1/runs/{run['id']}/checkpoint", headers=alice).status_code == 200

    routes = object_routes(client)
    assert {p.rsplit("/", 1)[-1] for _, p in routes} >= {"{run_id}", "metrics", "layers", "events", "cancel",
                                                          "checkpoint"}
    for method, path in routes:
        resp = client.request(method, path.replace("{run_id}", str(run["id"])).replace("{format}", "csv"), headers=bob)
        assert resp.status_code == 404, (method, path, resp.status_code)
        assert "red-secret" not in resp.text
    # ?token= (the event stream) is scoped the same way; downloads do not take it at all (use a download link).
    assert client.get(f"/api/v1/runs/{run['id']}/events", params={"token": tokens["bob"]}).status_code == 404
    assert client.get(f"/api/v1/runs/{run['id']}/checkpoint", params={"token": tokens["alice"]}).status_code == 401
    assert client.get(f"/api/v1/compare?ids={run['id']}", headers=bob).status_code == 404
    assert client.get("/api/v1/runs", headers=bob).json()["total"] == 0
    assert client.get("/api/v1/runs", params={"project": "default"}, headers=bob).json()["items"] == []
    # Bob's delete attempt did nothing; alice (and carol, also in red) still see the run.
    assert client.get(f"/api/v1/runs/{run['id']}", headers=alice).json()["status"] == "succeeded"
    assert client.get(f"/api/v1/runs/{run['id']}", headers=bearer(tokens["carol"])).status_code == 200
    # The admin is a member of "default" only: team data is not the admin's either.
    assert client.get(f"/api/v1/runs/{run['id']}", headers=bearer(ADMIN)).status_code == 404


def test_team_of_a_new_run_and_the_per_team_queue_cap(world):
    client, tokens = world
    carol, alice, bob = bearer(tokens["carol"]), bearer(tokens["alice"]), bearer(tokens["bob"])
    resp = client.post("/api/v1/runs", json={"config": TINY}, headers=carol)
    assert resp.status_code == 422 and resp.json()["field"] == "team" and "2 teams" in resp.json()["message"]
    resp = client.post("/api/v1/runs", json={"config": TINY, "team": "green"}, headers=carol)
    assert resp.status_code == 422 and resp.json()["field"] == "team"
    resp = client.post("/api/v1/runs", json={"config": TINY, "team": "blue"}, headers=alice)
    assert resp.status_code == 422 and resp.json()["field"] == "team"  # not alice's team
    assert client.post("/api/v1/runs", json={"config": TINY, "team": "blue"}, headers=carol).json()["team"] == "blue"
    # Same project name in two teams: two projects.
    for _ in range(3):
        assert client.post("/api/v1/runs", json={"config": TINY}, headers=alice).status_code == 201
    full = client.post("/api/v1/runs", json={"config": TINY}, headers=alice)
    assert full.status_code == 429 and "per team" in full.json()["detail"]
    assert client.post("/api/v1/runs", json={"config": TINY}, headers=bob).status_code == 201  # blue: 2 queued
    assert client.get("/api/v1/runs", headers=alice).json()["total"] == 3
    assert client.get("/api/v1/runs", headers=carol).json()["total"] == 5


def test_tokens_are_shown_once_listed_without_secret_and_revocable(world):
    client, tokens = world
    alice = bearer(tokens["alice"])
    made = client.post("/api/v1/tokens", json={"name": "laptop"}, headers=alice)
    assert made.status_code == 201
    second = made.json()["token"]
    assert second.startswith("gx_") and second != tokens["alice"]
    listed = client.get("/api/v1/tokens", headers=alice).json()
    assert [t["name"] for t in listed] == ["first token", "laptop"]
    assert all("token" not in t and t["user"] == "alice" for t in listed)
    assert second not in client.get("/api/v1/tokens", headers=alice).text
    # Someone else's token id is a 404; alice revokes her laptop token and it stops working at once.
    laptop_id = made.json()["id"]
    assert client.delete(f"/api/v1/tokens/{laptop_id}", headers=bearer(tokens["bob"])).status_code == 404
    assert client.get("/api/v1/me", headers=bearer(second)).status_code == 200  # (now cached)
    assert client.delete(f"/api/v1/tokens/{laptop_id}", headers=alice).status_code == 204
    resp = client.get("/api/v1/me", headers=bearer(second))
    assert resp.status_code == 401 and "revoked" in resp.json()["detail"]
    assert client.get("/api/v1/me", headers=alice).status_code == 200  # her other token still works
    # Only admins manage users and teams, or make tokens for others.
    assert client.post("/api/v1/teams", json={"name": "x"}, headers=alice).status_code == 403
    assert client.get("/api/v1/users", headers=alice).status_code == 403
    assert client.post("/api/v1/tokens", json={"user": "bob"}, headers=alice).status_code == 403
    # An admin moves alice to blue: she sees blue's runs now, not red's.
    users = {u["name"]: u for u in client.get("/api/v1/users", headers=bearer(ADMIN)).json()}
    resp = client.patch(f"/api/v1/users/{users['alice']['id']}", json={"teams": ["blue"]}, headers=bearer(ADMIN))
    assert [t["name"] for t in resp.json()["teams"]] == ["blue"]
    assert [t["name"] for t in client.get("/api/v1/me", headers=alice).json()["teams"]] == ["blue"]
    assert client.post("/api/v1/users", json={"name": "alice"}, headers=bearer(ADMIN)).status_code == 409
    bad = client.post("/api/v1/users", json={"name": "dave", "teams": ["nope"]}, headers=bearer(ADMIN))
    assert bad.status_code == 422 and bad.json()["field"] == "teams"


@pytest.mark.slow
def test_gxnor_refuses_a_public_address_without_auth_and_token_command_makes_a_working_token(tmp_path, settings,
                                                                                           gxnor_here):
    # (`gxnor token`'s real process: test_access_hardening)
    for cmd in ("api", "up"):  # real processes: if the refusal broke, they would serve (and be killed at 60 s)
        res = subprocess.run([sys.executable, "-X", "importtime", "-m", "gxnor_cli", cmd, "--host", "0.0.0.0",
                              "--no-auth", "--data-dir", str(tmp_path / "d")],
                             capture_output=True, text=True, timeout=60)
        timed = [ln for ln in res.stderr.splitlines() if ln.startswith("import time:")]
        said = [ln for ln in res.stderr.splitlines() if ln not in timed]
        assert res.returncode == 2 and len(said) == 1 and "refusing to listen on 0.0.0.0" in said[0], res.stderr
        # said at once: before PyTorch and the app are imported (seconds)
        assert not {ln.rsplit("|", 1)[-1].strip().split(".")[0] for ln in timed} & {"torch", "app"}, cmd
    # GXNOR_AUTH=false (no flag) is refused too, once the settings are read
    res = subprocess.run([sys.executable, "-m", "gxnor_cli", "api", "--host", "0.0.0.0", "--data-dir",
                          str(tmp_path / "d")], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "GXNOR_AUTH": "false"})
    assert res.returncode == 2 and "refusing to listen on 0.0.0.0" in res.stderr, res.stderr
    res = gxnor_here("token", "--data-dir", settings.data_dir)
    assert res.returncode == 0, res.stderr
    token = res.stdout.strip().splitlines()[-1]
    with TestClient(create_app(settings)) as client:
        assert client.get("/api/v1/me", headers=bearer(token)).json()["user"]["name"] == "admin"
    res = gxnor_here("token", "--user", "nobody", "--data-dir", settings.data_dir)
    assert res.returncode == 2 and "nobody" in res.stderr


def test_auth_off_on_loopback_needs_no_token(tmp_path):
    with TestClient(create_app(Settings(data_dir=tmp_path / "open", auth=False))) as client:
        assert client.post("/api/v1/runs", json={"config": TINY}).status_code == 201
        assert client.get("/api/v1/runs").json()["total"] == 1
        assert client.get("/api/v1/me").json()["user"]["name"] == "anonymous"


def test_an_open_event_stream_ends_when_its_token_is_revoked(world, settings):
    client, tokens = world
    alice = bearer(tokens["alice"])
    run = client.post("/api/v1/runs", json={"config": {**TINY, "name": "watched"}}, headers=alice).json()
    made = client.post("/api/v1/tokens", json={"name": "tab"}, headers=alice).json()
    # Revoke from another process's point of view: straight in the database, with no cache clearing here.
    from sqlalchemy import update

    from app.auth import CACHE
    from app.models import utcnow

    with client.stream("GET", f"/api/v1/runs/{run['id']}/events", params={"token": made["token"]}) as resp:
        assert resp.status_code == 200
        lines = resp.iter_lines()
        assert next(line for line in lines if line.startswith("event:")) == "event: progress"
        with session_scope(settings.db_url) as s:
            s.execute(update(ApiToken).where(ApiToken.id == made["id"]).values(revoked_at=utcnow()))
        CACHE.clear()  # as if auth_cache_s had passed
        events = [line for line in lines if line.startswith("event:") or line.startswith("data:")]
    assert events[-2:] == ["event: status", 'data: {"status": "unauthorized"}']
