"""Runs changed after they were made (app.run_edits, app.run_meta): PATCH of name, tags, notes and archived, the
list's tag filter, notes search and archive filter, and bulk actions — on a real SQLite file and a real
PostgreSQL database, with another team's runs always a 404."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from app.db import session_scope
from app.models import Run
from app.schemas import RunList, RunOut
from tests.pg import app_with_two_teams

ADMIN = "gx_run-edits-admin"
TINY = {"model": {"hidden": [8]}, "train": {"epochs": 1, "batch_size": 100}}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def service(request, tmp_path_factory):
    """The app, with the admin (team default) as the client's caller, and a token of bob in team blue."""
    with app_with_two_teams(request.param, tmp_path_factory.mktemp(request.param), ADMIN, "gxnor_edits") as service:
        yield service


def new_run(client: TestClient, name: str, status: str = "succeeded", headers: dict | None = None) -> int:
    """A run made through the API, then set to ``status`` as a worker would leave it."""
    resp = client.post("/api/v1/runs", json={"config": {**TINY, "name": name}}, headers=headers or {})
    assert resp.status_code == 201, resp.text
    run_id = resp.json()["id"]
    if status != "queued":
        with session_scope(client.app.state.settings.db_url) as s:
            s.execute(update(Run).where(Run.id == run_id).values(status=status))
    return run_id


def listed(client: TestClient, **params) -> list[dict]:
    resp = client.get("/api/v1/runs", params={"limit": 500, **params})
    assert resp.status_code == 200, resp.text
    RunList.model_validate(resp.json())
    return resp.json()["items"]


def test_patch_changes_each_field_and_leaves_the_others(service):
    client, _, _ = service
    run_id = new_run(client, "before")
    got = client.patch(f"/api/v1/runs/{run_id}", json={"name": "after"})
    assert got.status_code == 200, got.text
    assert got.json()["name"] == "after" and got.json()["config"]["name"] == "before"  # the config as submitted
    assert got.json()["tags"] == [] and got.json()["notes"] == "" and got.json()["archived"] is False
    got = client.patch(f"/api/v1/runs/{run_id}", json={"tags": ["paper", "baseline", "paper", "ünï côdé"]}).json()
    assert got["tags"] == ["baseline", "paper", "ünï côdé"] and got["name"] == "after"
    got = client.patch(f"/api/v1/runs/{run_id}", json={"notes": "lr too high?\n\tretry with 0.01"}).json()
    assert got["notes"] == "lr too high?\n\tretry with 0.01" and got["tags"] == ["baseline", "paper", "ünï côdé"]
    got = client.patch(f"/api/v1/runs/{run_id}", json={"tags": ["paper"], "archived": True}).json()
    assert got["tags"] == ["paper"] and got["archived"] is True
    RunOut.model_validate(got)
    again = client.get(f"/api/v1/runs/{run_id}").json()
    assert (again["name"], again["tags"], again["notes"], again["archived"]) == (
        "after", ["paper"], "lr too high?\n\tretry with 0.01", True)
    assert client.patch(f"/api/v1/runs/{run_id}", json={"notes": None, "tags": []}).status_code == 200
    cleared = client.get(f"/api/v1/runs/{run_id}").json()
    assert cleared["notes"] == "" and cleared["tags"] == []


@pytest.mark.parametrize(("body", "field"), [
    ({"name": ""}, "name"),
    ({"name": "a\x00b"}, "name"),
    ({"name": None}, "name"),
    ({"tags": ["ok", "bad\x07"]}, "tags.1"),
    ({"tags": [""]}, "tags.0"),
    ({"tags": ["x" * 65]}, "tags.0"),
    ({"tags": [" padded"]}, "tags.0"),
    ({"tags": [f"t{i}" for i in range(33)]}, "tags"),
    ({"tags": "paper"}, "tags"),
    ({"tags": None}, "tags"),
    ({"notes": "x" * 10_001}, "notes"),
    ({"notes": "a\x00b"}, "notes"),
    ({"archived": "maybe"}, "archived"),
    ({"archived": None}, "archived"),
    ({"colour": "red"}, "colour"),
    ({}, ""),
])
def test_patch_bad_input_is_422_naming_the_field(service, body, field):
    client, _, _ = service
    run_id = new_run(client, "patched-badly")
    resp = client.patch(f"/api/v1/runs/{run_id}", json=body)
    assert resp.status_code == 422, resp.text
    assert resp.json()["field"] == field
    assert client.get(f"/api/v1/runs/{run_id}").json()["name"] == "patched-badly"  # nothing written


def test_patch_of_a_missing_or_another_teams_run_is_404_and_archiving_an_unfinished_run_409(service):
    client, _, bob = service
    his = new_run(client, "bobs", headers=bob)
    for run_id in (his, 2_000_000_000):
        resp = client.patch(f"/api/v1/runs/{run_id}", json={"name": "mine now"})
        assert resp.status_code == 404 and resp.json()["detail"] == f"run {run_id} not found"
    assert client.get(f"/api/v1/runs/{his}", headers=bob).json()["name"] == "bobs"
    queued = new_run(client, "still queued", status="queued")
    resp = client.patch(f"/api/v1/runs/{queued}", json={"archived": True, "name": "renamed"})
    assert resp.status_code == 409 and "only a finished run" in resp.json()["detail"]
    assert client.get(f"/api/v1/runs/{queued}").json()["name"] == "still queued"  # the request wrote nothing
    assert client.patch(f"/api/v1/runs/{queued}", json={"tags": ["waiting"]}).json()["tags"] == ["waiting"]


def test_list_filters_by_tag_searches_notes_and_hides_archived_runs(service):
    client, _, bob = service
    tag = f"abl-{uuid.uuid4().hex[:6]}"
    a, b, c = (new_run(client, f"{tag}-{i}") for i in "abc")
    his = new_run(client, "bobs-tagged", headers=bob)
    client.patch(f"/api/v1/runs/{his}", json={"tags": [tag]}, headers=bob)
    for run_id, tags in ((a, [tag, "z"]), (b, [tag])):
        client.patch(f"/api/v1/runs/{run_id}", json={"tags": tags})
    items = listed(client, tag=tag)
    assert [i["id"] for i in items] == [b, a]  # newest first; bob's run is not ours
    assert [i["tags"] for i in items] == [[tag], [tag, "z"]] and all(i["notes"] is None for i in items)
    assert {i["id"]: i["tags"] for i in listed(client, q=tag)}[c] == []

    word = f"diverged{uuid.uuid4().hex[:6]}"
    client.patch(f"/api/v1/runs/{c}", json={"notes": f"Loss {word.upper()} at epoch 3; 100% sure"})
    assert [i["id"] for i in listed(client, q=word)] == [c]  # case-insensitive, in the notes
    assert [i["id"] for i in listed(client, q="100% sure")] == [c]  # % is a character, not a wildcard
    assert listed(client, q=f"{word}-not-there") == []

    client.patch(f"/api/v1/runs/{a}", json={"archived": True})
    assert [i["id"] for i in listed(client, tag=tag)] == [b]
    assert [(i["id"], i["archived"]) for i in listed(client, tag=tag, archived="true")] == [(a, True)]
    assert [i["id"] for i in listed(client, tag=tag, archived="any")] == [b, a]
    total = client.get("/api/v1/runs", params={"tag": tag, "archived": "any", "limit": 1}).json()["total"]
    assert total == 2
    assert client.get("/api/v1/runs", params={"archived": "yes"}).json()["field"] == "archived"
    assert client.get("/api/v1/runs", params={"tag": "a\x01"}).json()["field"] == "tag"
    client.patch(f"/api/v1/runs/{a}", json={"archived": False})
    assert [i["id"] for i in listed(client, tag=tag)] == [b, a]
    # Sorting by a run metric joins the summaries: the filters still apply.
    assert [i["id"] for i in listed(client, tag=tag, sort="best_val_error")] == [b, a]


def test_bulk_actions_answer_per_id_and_touch_only_the_callers_runs(service):
    client, _, bob = service
    tag = f"bulk-{uuid.uuid4().hex[:6]}"
    done, queued = new_run(client, "bulk-done"), new_run(client, "bulk-queued", status="queued")
    his, missing = new_run(client, "bulk-his", status="queued", headers=bob), 2_000_000_001

    def bulk(action: str, ids: list[int], **extra) -> dict:
        resp = client.post("/api/v1/runs/bulk", json={"ids": ids, "action": action, **extra})
        assert resp.status_code == 200, resp.text
        out = resp.json()
        assert [r["id"] for r in out["results"]] == list(dict.fromkeys(ids))
        return {r["id"]: r["status"] for r in out["results"]} | {"done": out["done"]}

    ids = [done, his, queued, missing, done]
    assert bulk("tag", ids, tags=[tag, "x"]) == {done: 200, his: 404, queued: 200, missing: 404, "done": 2}
    assert [i["id"] for i in listed(client, tag=tag)] == [queued, done]
    assert client.get(f"/api/v1/runs/{his}", headers=bob).json()["tags"] == []
    assert bulk("untag", ids, tags=["x"])["done"] == 2
    assert client.get(f"/api/v1/runs/{done}").json()["tags"] == [tag]

    assert bulk("archive", ids) == {done: 200, his: 404, queued: 409, missing: 404, "done": 1}
    assert [i["id"] for i in listed(client, tag=tag)] == [queued]
    assert bulk("unarchive", ids)["done"] == 2
    assert bulk("cancel", ids) == {done: 409, his: 404, queued: 200, missing: 404, "done": 1}
    assert client.get(f"/api/v1/runs/{queued}").json()["status"] == "cancelled"
    assert client.get(f"/api/v1/runs/{his}", headers=bob).json()["status"] == "queued"

    running = new_run(client, "bulk-running", status="running")
    assert bulk("delete", [done, running, his, missing]) == {done: 204, running: 409, his: 404, missing: 404,
                                                            "done": 1}
    assert client.get(f"/api/v1/runs/{done}").status_code == 404
    assert client.get(f"/api/v1/runs/{running}").status_code == 200
    assert client.get(f"/api/v1/runs/{his}", headers=bob).status_code == 200
    assert [i["id"] for i in listed(client, tag=tag, archived="any")] == [queued]  # the deleted run's tags went


def test_bulk_tagging_stops_at_the_tag_limit_per_run(service):
    client, _, _ = service
    full, empty = new_run(client, "many-tags"), new_run(client, "no-tags")
    client.patch(f"/api/v1/runs/{full}", json={"tags": [f"t{i}" for i in range(31)]})
    resp = client.post("/api/v1/runs/bulk", json={"ids": [full, empty], "action": "tag", "tags": ["a", "b"]}).json()
    assert [(r["status"], r["ok"]) for r in resp["results"]] == [(422, False), (200, True)]
    assert "at most 32" in resp["results"][0]["detail"]
    assert len(client.get(f"/api/v1/runs/{full}").json()["tags"]) == 31  # nothing added to it


@pytest.mark.parametrize(("body", "field"), [
    ({"ids": [1], "action": "tag"}, "tags"),
    ({"ids": [1], "action": "archive", "tags": ["x"]}, "tags"),
    ({"ids": [1], "action": "explode"}, "action"),
    ({"ids": [], "action": "archive"}, "ids"),
    ({"ids": list(range(1, 502)), "action": "archive"}, "ids"),
    ({"ids": [0], "action": "archive"}, "ids.0"),
    ({"ids": [1], "action": "tag", "tags": ["a\x1b[31m"]}, "tags.0"),
])
def test_bulk_bad_input_is_422_naming_the_field(service, body, field):
    client, _, _ = service
    resp = client.post("/api/v1/runs/bulk", json=body)
    assert resp.status_code == 422 and resp.json()["field"] == field, resp.text
