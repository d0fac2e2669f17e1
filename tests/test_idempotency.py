"""``Idempotency-Key`` on run and sweep creation (app.idempotency), on a real SQLite file and a real PostgreSQL
database: a retry gets the first answer and creates nothing; parallel requests with one key make one run."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from app.db import session_scope
from app.models import IdempotencyKey, Run, Sweep, utcnow
from app.settings import Settings
from tests.pg import admin_app

ADMIN = "gx_idempotency-admin"
TINY = {"model": {"hidden": [8]}, "train": {"epochs": 1, "batch_size": 100}}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def service(request, tmp_path_factory):
    with admin_app(request.param, tmp_path_factory.mktemp(request.param), ADMIN, "gxnor_idem") as service:
        yield service


def run_body(name: str) -> dict:
    return {"config": {**TINY, "name": name}}


def runs_named(settings: Settings, name: str) -> int:
    with session_scope(settings.db_url) as s:
        return s.scalar(select(func.count()).select_from(Run).where(Run.name == name))


def post(client: TestClient, path: str, body: dict, key: str | None, **headers: str):
    return client.post(path, json=body, headers={**({"Idempotency-Key": key} if key else {}), **headers})


def test_a_retry_with_the_key_gets_the_first_answer_and_makes_no_second_run(service):
    client, settings = service
    key, body = uuid.uuid4().hex, run_body("retried")
    first = post(client, "/api/v1/runs", body, key)
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    again = post(client, "/api/v1/runs", body, key)
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content  # the same body, byte for byte: the same run id
    assert runs_named(settings, "retried") == 1


def test_without_a_key_each_request_makes_a_run(service):
    client, settings = service
    for _ in range(2):
        assert post(client, "/api/v1/runs", run_body("no-key"), None).status_code == 201
    assert runs_named(settings, "no-key") == 2


def test_the_same_key_with_another_request_is_refused(service):
    client, settings = service
    key = uuid.uuid4().hex
    assert post(client, "/api/v1/runs", run_body("first-body"), key).status_code == 201
    other = post(client, "/api/v1/runs", run_body("second-body"), key)
    assert other.status_code == 422 and "already used with a different request" in other.json()["message"]
    sweep = post(client, "/api/v1/sweeps", {"name": "s", "base": TINY, "grid": {"activations.r": [0.5]}}, key)
    assert sweep.status_code == 422  # another route is another request
    assert runs_named(settings, "first-body") == 1 and runs_named(settings, "second-body") == 0


def test_keys_belong_to_their_caller(service):
    client, settings = service
    made = client.post("/api/v1/users", json={"name": f"bob-{uuid.uuid4().hex[:6]}", "teams": ["default"]})
    bob = made.json()["token"]["token"]
    key, body = uuid.uuid4().hex, run_body("per-caller")
    mine = post(client, "/api/v1/runs", body, key)
    his = post(client, "/api/v1/runs", body, key, Authorization=f"Bearer {bob}")
    assert mine.status_code == his.status_code == 201 and mine.json()["id"] != his.json()["id"]
    assert runs_named(settings, "per-caller") == 2


def test_an_error_is_not_remembered(service):
    client, settings = service
    key = uuid.uuid4().hex
    bad = {"config": {**TINY, "name": "fixed-later", "train": {"epochs": 0}}}
    assert post(client, "/api/v1/runs", bad, key).status_code == 422
    assert post(client, "/api/v1/runs", bad, key).status_code == 422  # validated afresh, not replayed
    assert post(client, "/api/v1/runs", run_body("fixed-later"), key).status_code == 201
    assert runs_named(settings, "fixed-later") == 1


def expire(settings: Settings, key: str) -> None:
    """As if a day had passed for that key."""
    with session_scope(settings.db_url) as s:
        s.execute(update(IdempotencyKey).where(IdempotencyKey.key == key)
                  .values(expires_at=utcnow() - timedelta(seconds=1)))


def keys_stored(settings: Settings, key: str) -> int:
    with session_scope(settings.db_url) as s:
        return s.scalar(select(func.count()).select_from(IdempotencyKey).where(IdempotencyKey.key == key))


def test_an_expired_key_may_be_used_again_and_expired_keys_are_purged(service):
    client, settings = service
    key, body = uuid.uuid4().hex, run_body("expiring")
    first = post(client, "/api/v1/runs", body, key).json()
    expire(settings, key)
    second = post(client, "/api/v1/runs", body, key)
    assert second.status_code == 201 and second.json()["id"] != first["id"]
    assert post(client, "/api/v1/runs", body, key).json()["id"] == second.json()["id"]  # remembered anew
    assert keys_stored(settings, key) == 1
    expire(settings, key)
    assert post(client, "/api/v1/runs", run_body("another"), uuid.uuid4().hex).status_code == 201
    assert keys_stored(settings, key) == 0  # tidied by the next keyed request


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "tab\there"])
def test_a_malformed_key_is_a_422(service, key):
    client, _ = service
    resp = client.post("/api/v1/runs", json=run_body("malformed"), headers={"Idempotency-Key": key})
    assert resp.status_code == 422


def test_a_retried_sweep_gets_the_same_sweep(service):
    client, settings = service
    key = uuid.uuid4().hex
    body = {"name": f"sweep-{key[:6]}", "base": TINY, "grid": {"activations.r": [0.25, 0.5]}}
    first = post(client, "/api/v1/sweeps", body, key)
    again = post(client, "/api/v1/sweeps", body, key)
    assert first.status_code == again.status_code == 201 and again.content == first.content
    with session_scope(settings.db_url) as s:
        assert s.scalar(select(func.count()).select_from(Sweep).where(Sweep.name == body["name"])) == 1
        assert s.scalar(select(func.count()).select_from(Run).where(Run.sweep_id == first.json()["id"])) == 2


@pytest.mark.parametrize("path", ["/api/v1/runs", "/api/v1/sweeps"])
def test_parallel_requests_with_one_key_make_one_run(service, path):
    client, settings = service
    key, name = uuid.uuid4().hex, f"parallel-{uuid.uuid4().hex[:6]}"
    body = run_body(name) if path.endswith("runs") else {"name": name, "base": TINY, "grid": {"activations.r": [0.5]}}
    n = 20
    start, answers = threading.Barrier(n), []

    def send() -> None:
        start.wait()
        answers.append(post(client, path, body, key))

    threads = [threading.Thread(target=send) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {a.status_code for a in answers} == {201}
    assert len({a.content for a in answers}) == 1  # every one got the first answer
    if path.endswith("runs"):
        assert runs_named(settings, name) == 1
    else:
        with session_scope(settings.db_url) as s:
            assert s.scalar(select(func.count()).select_from(Sweep).where(Sweep.name == name)) == 1
            assert s.scalar(select(func.count()).select_from(Run).where(Run.sweep_id == answers[0].json()["id"])) == 1
