"""Tokens that expire, the last admin kept, `gxnor token --expires-in-days/--admin`, and a failed run's
traceback shown to admins only — against the real app on a real SQLite file."""

import logging
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from app.db import session_scope
from app.main import create_app
from app.models import ApiToken, User
from app.settings import Settings
from worker.runner import execute_run

ADMIN = "gx_hardening-test-admin"
TINY = {"model": {"hidden": [16]}, "train": {"epochs": 1, "batch_size": 100}}


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture()
def settings(tmp_path):
    return Settings(data_dir=tmp_path / "data", admin_token=ADMIN, auth_cache_s=30)


@pytest.fixture()
def world(settings):
    """The admin; alice (team red) and dan (team default), each with a token."""
    with TestClient(create_app(settings)) as client:
        assert client.post("/api/v1/teams", json={"name": "red"}, headers=bearer(ADMIN)).status_code == 201
        tokens = {}
        for user, teams in (("alice", ["red"]), ("dan", ["default"])):
            resp = client.post("/api/v1/users", json={"name": user, "teams": teams}, headers=bearer(ADMIN))
            assert resp.status_code == 201, resp.text
            tokens[user] = resp.json()["token"]["token"]
        yield client, tokens


def _set_expiry(settings, token_id: int, when: datetime) -> None:
    with session_scope(settings.db_url) as s:
        s.execute(update(ApiToken).where(ApiToken.id == token_id).values(expires_at=when))


def test_a_token_can_expire_and_is_then_refused_like_a_revoked_one(world, settings):
    client, tokens = world
    alice = bearer(tokens["alice"])
    made = client.post("/api/v1/tokens", json={"name": "week", "expires_in_days": 7}, headers=alice)
    assert made.status_code == 201, made.text
    week = made.json()
    expires = datetime.fromisoformat(week["expires_at"])
    assert abs(expires - (datetime.now(UTC) + timedelta(days=7))) < timedelta(minutes=1)
    assert client.get("/api/v1/me", headers=bearer(week["token"])).status_code == 200
    listed = {t["name"]: t for t in client.get("/api/v1/tokens", headers=alice).json()}
    assert listed["week"]["expires_at"] == week["expires_at"]
    assert listed["first token"]["expires_at"] is None  # no expires_in_days: never
    forever = client.post("/api/v1/tokens", json={"name": "forever"}, headers=alice).json()
    assert forever["expires_at"] is None
    for bad in (0, -1, 3651, "7", 1.5, True):
        resp = client.post("/api/v1/tokens", json={"name": "x", "expires_in_days": bad}, headers=alice)
        assert resp.status_code == 422, (bad, resp.status_code)

    # The token's time is up (set in the database; no waiting); as if auth_cache_s had passed:
    from app.auth import CACHE

    _set_expiry(settings, week["id"], datetime.now(UTC) - timedelta(seconds=1))
    CACHE.clear()
    resp = client.get("/api/v1/me", headers=bearer(week["token"]))
    assert resp.status_code == 401 and resp.headers["www-authenticate"] == "Bearer"
    assert client.get("/api/v1/me", headers=alice).status_code == 200  # her other tokens still work
    assert client.get("/api/v1/me", headers=bearer(forever["token"])).status_code == 200


def test_a_cached_lookup_does_not_outlive_the_tokens_expiry(world, settings, monkeypatch):
    """auth_cache_s is 30 s here; a token that expires in 10 s must stop working at 10 s, cache or not."""
    import app.auth

    client, tokens = world
    made = client.post("/api/v1/tokens", json={"name": "short"}, headers=bearer(tokens["alice"])).json()
    _set_expiry(settings, made["id"], datetime.now(UTC) + timedelta(seconds=10))
    assert client.get("/api/v1/me", headers=bearer(made["token"])).status_code == 200  # now cached
    assert client.get("/api/v1/me", headers=bearer(made["token"])).status_code == 200
    real = time.time
    monkeypatch.setattr(app.auth, "_wall_clock", lambda: real() + 20)  # 20 s later
    assert client.get("/api/v1/me", headers=bearer(made["token"])).status_code == 401
    assert client.get("/api/v1/me", headers=bearer(tokens["alice"])).status_code == 200


def gxnor(*args):
    return subprocess.run([sys.executable, "-m", "gxnor_cli", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_gxnor_token_expires_in_days(settings):
    with TestClient(create_app(settings)):
        pass  # first start: the database and the admin
    res = gxnor("token", "--expires-in-days", "2", "--data-dir", str(settings.data_dir))
    assert res.returncode == 0, res.stderr
    token = res.stdout.strip().splitlines()[-1]
    with TestClient(create_app(settings)) as client:
        assert client.get("/api/v1/me", headers=bearer(token)).json()["user"]["name"] == "admin"
        mine = [t for t in client.get("/api/v1/tokens", headers=bearer(token)).json() if t["name"] == "cli"]
    assert len(mine) == 1
    expires = datetime.fromisoformat(mine[0]["expires_at"])
    assert abs(expires - (datetime.now(UTC) + timedelta(days=2))) < timedelta(minutes=1)
    for bad in ("0", "-3", "abc", "99999"):
        res = gxnor("token", "--expires-in-days", bad, "--data-dir", str(settings.data_dir))
        assert res.returncode == 2 and "--expires-in-days" in res.stderr, (bad, res.stderr)


def test_the_last_admin_cannot_be_demoted(world):
    client, tokens = world
    users = {u["name"]: u for u in client.get("/api/v1/users", headers=bearer(ADMIN)).json()}
    resp = client.patch(f"/api/v1/users/{users['admin']['id']}", json={"is_admin": False}, headers=bearer(ADMIN))
    assert resp.status_code == 409, resp.text
    assert "admin" in resp.json()["detail"] and "no admin" in resp.json()["detail"]
    assert client.get("/api/v1/me", headers=bearer(ADMIN)).json()["user"]["is_admin"]
    # Changing the last admin's teams, or "demoting" a user who is no admin, is fine.
    ok = client.patch(f"/api/v1/users/{users['admin']['id']}", json={"teams": ["default", "red"], "is_admin": True},
                      headers=bearer(ADMIN))
    assert ok.status_code == 200 and ok.json()["is_admin"]
    assert client.patch(f"/api/v1/users/{users['dan']['id']}", json={"is_admin": False},
                        headers=bearer(ADMIN)).status_code == 200
    # With a second admin, the first may step down; then the second is the last one.
    assert client.patch(f"/api/v1/users/{users['dan']['id']}", json={"is_admin": True},
                        headers=bearer(ADMIN)).status_code == 200
    assert client.patch(f"/api/v1/users/{users['admin']['id']}", json={"is_admin": False},
                        headers=bearer(ADMIN)).status_code == 200
    resp = client.patch(f"/api/v1/users/{users['dan']['id']}", json={"is_admin": False},
                        headers=bearer(tokens["dan"]))
    assert resp.status_code == 409
    assert client.get("/api/v1/me", headers=bearer(tokens["dan"])).json()["user"]["is_admin"]


@pytest.mark.slow
def test_gxnor_token_admin_restores_admin_rights(settings):
    with TestClient(create_app(settings)) as client:
        resp = client.post("/api/v1/users", json={"name": "ops"}, headers=bearer(ADMIN))
        assert resp.status_code == 201
    # However it happened (an older version let the last admin step down), nobody is admin any more.
    with session_scope(settings.db_url) as s:
        s.execute(update(User).values(is_admin=False))
    res = gxnor("token", "--admin", "--data-dir", str(settings.data_dir))
    assert res.returncode == 0, res.stderr
    token = res.stdout.strip().splitlines()[-1]
    res = gxnor("token", "--user", "ops", "--admin", "--name", "ops-cli", "--data-dir", str(settings.data_dir))
    assert res.returncode == 0, res.stderr
    ops = res.stdout.strip().splitlines()[-1]
    with TestClient(create_app(settings)) as client:
        assert client.get("/api/v1/me", headers=bearer(token)).json()["user"] == {
            "id": 1, "name": "admin", "is_admin": True, "teams": [{"id": 1, "name": "default"}]}
        me = client.get("/api/v1/me", headers=bearer(ops)).json()["user"]
        assert me["name"] == "ops" and me["is_admin"]
        assert client.get("/api/v1/users", headers=bearer(ops)).status_code == 200
    # Without --admin, rights are left as they are.
    with session_scope(settings.db_url) as s:
        s.execute(update(User).where(User.name == "ops").values(is_admin=False))
    assert gxnor("token", "--user", "ops", "--data-dir", str(settings.data_dir)).returncode == 0
    with session_scope(settings.db_url) as s:
        assert s.scalar(select(User.is_admin).where(User.name == "ops")) is False


ABSOLUTE_PATH = re.compile(r"(?:^|[\s'\"(=,:])/[\w.~-]+/")


def test_a_failed_run_shows_a_one_line_reason_to_its_team_and_the_traceback_to_admins(world, settings, caplog,
                                                                                      tmp_path, monkeypatch):
    client, tokens = world
    dan = bearer(tokens["dan"])
    # cifar10's files are on the server (so the run is accepted) but damaged: the worker fails it.
    damaged = tmp_path / "datasets" / "cifar-10-batches-py"
    damaged.mkdir(parents=True)
    for f in (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"):
        (damaged / f).write_bytes(b"not a pickle")
    monkeypatch.setenv("GXNOR_DATASETS_DIR", str(tmp_path / "datasets"))
    cfg = {**TINY, "name": "no-data", "dataset": {"name": "cifar10"}, "model": {"arch": "mlp", "hidden": [8]}}
    run = client.post("/api/v1/runs", json={"config": cfg}, headers=dan).json()
    with caplog.at_level(logging.ERROR, logger="gxnor.worker"):
        assert execute_run(run["id"], settings) == "failed"
    # The server log has the whole traceback.
    logged = [r for r in caplog.records if r.name == "gxnor.worker" and r.exc_info]
    assert logged and "DatasetError" in caplog.text and "Traceback" in caplog.text

    seen = client.get(f"/api/v1/runs/{run['id']}", headers=dan).json()
    assert seen["status"] == "failed"
    error = seen["error"]
    assert error.startswith("DatasetError: dataset 'cifar10' in …/cifar-10-batches-py: data_batch_1 cannot be "
                            "read"), error
    assert "\n" not in error and "Traceback" not in error and len(error) <= 500
    assert not ABSOLUTE_PATH.search(error), error
    assert ".py" not in error and str(settings.data_dir) not in error
    assert seen["error_detail"] is None
    listed = client.get("/api/v1/runs", headers=dan).json()["items"]
    assert [(r["error"], r["error_detail"]) for r in listed] == [(error, None)]

    as_admin = client.get(f"/api/v1/runs/{run['id']}", headers=bearer(ADMIN)).json()
    assert as_admin["error"] == error
    detail = as_admin["error_detail"]
    assert detail.startswith("Traceback (most recent call last):") and "runner.py" in detail
    assert f"DatasetError: dataset 'cifar10' in {damaged}: data_batch_1 cannot be read" in detail
