"""Two admins demoting each other at the same moment must not leave the server without an admin — on
PostgreSQL (row locks) and on SQLite (one writer at a time)."""

import threading
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.db import session_scope
from app.main import create_app
from app.models import User
from app.settings import Settings

ADMIN = "gx_last-admin-test"


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request, tmp_path):
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    return Settings(data_dir=tmp_path / "data", database_url=url, admin_token=ADMIN, auth_cache_s=30)


def test_two_admins_demoting_each_other_at_once_leave_one_admin(settings, monkeypatch):
    import app.api.routes.access as access

    # Hold each request a moment after its check, so the two always overlap: without a lock both would see
    # two admins and both would go ahead.
    check = access._other_admins

    def slow_check(session, user_id):
        n = check(session, user_id)
        time.sleep(0.3)
        return n

    monkeypatch.setattr(access, "_other_admins", slow_check)
    with TestClient(create_app(settings)) as client:
        for round_ in range(2):
            resp = client.post("/api/v1/users", json={"name": f"boss{round_}", "is_admin": True},
                               headers={"Authorization": f"Bearer {ADMIN}"})
            assert resp.status_code == 201, resp.text
            boss = resp.json()
            ids = {u["name"]: u["id"] for u in client.get("/api/v1/users",
                                                          headers={"Authorization": f"Bearer {ADMIN}"}).json()}
            admin_id = ids["admin"]
            start = threading.Barrier(2)
            answers: dict[str, int] = {}

            def demote(who: str, token: str, target: int, start=start, answers=answers):
                start.wait()
                resp = client.patch(f"/api/v1/users/{target}", json={"is_admin": False},
                                    headers={"Authorization": f"Bearer {token}"})
                answers[who] = resp.status_code

            threads = [threading.Thread(target=demote, args=("admin", ADMIN, boss["user"]["id"])),
                       threading.Thread(target=demote, args=("boss", boss["token"]["token"], admin_id))]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            assert sorted(answers.values()) == [200, 409], answers
            with session_scope(settings.db_url) as s:
                admins = list(s.scalars(select(User.name).where(User.is_admin)))
                assert len(admins) == 1, admins
                assert s.scalar(select(func.count()).select_from(User)) == 2 + round_
            # Put the admin back for the next round (whoever is left promotes it).
            if admins == [f"boss{round_}"]:
                assert client.patch(f"/api/v1/users/{admin_id}", json={"is_admin": True},
                                    headers={"Authorization": f"Bearer {boss['token']['token']}"}).status_code == 200
                assert client.patch(f"/api/v1/users/{boss['user']['id']}", json={"is_admin": False},
                                    headers={"Authorization": f"Bearer {ADMIN}"}).status_code == 200
