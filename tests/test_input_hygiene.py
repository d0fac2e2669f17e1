"""Control characters in names and in free-text query parameters, on SQLite and on PostgreSQL alike.

Every stored name (run name and project, sweep name and any string a sweep spec stores, token, team and
user names) and every free-text query parameter refuses the C0 and C1 control characters (U+0000–U+001F,
U+007F–U+009F; tab and newline included) with a 422 naming the field: nothing is stored, and the server
keeps answering.  Before this, a NUL byte was a 500 on PostgreSQL (which cannot store one in text) and
``compare?metric=%00`` a 503 on SQLite.  Legitimate unicode names are accepted and round-trip."""

import json
import subprocess
import sys
from contextlib import nullcontext

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from app.db import session_scope
from app.main import create_app
from app.models import EpochMetric, LayerRecord, Run
from app.settings import Settings
from tests.pg import fresh_database

ADMIN = "gx_hygiene-admin"
TINY = {"model": {"hidden": [8]}, "train": {"epochs": 1, "batch_size": 100}}
SWEEP = {"name": "sweep", "base": TINY, "grid": {"activations.r": [0.5]}}
# NUL, the last C0 character, DEL, a C1 character (NEL) and the last one; tab and newline are control
# characters too, refused in names (and in the query parameters: no name can hold one).
HOSTILE = {"nul": "\x00", "us": "\x1f", "del": "\x7f", "nel": "\u0085", "tab": "\t", "lf": "\n", "c1-end": "\x9f"}
NICE = "r=0.5 — café ✓ 研究 🚀"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def client(request, tmp_path_factory):
    """One app per database for the module (a fresh PostgreSQL database), with one queued run."""
    with fresh_database("gxnor_hygiene") if request.param == "postgresql" else nullcontext() as url:
        settings = Settings(data_dir=tmp_path_factory.mktemp(request.param), database_url=url, admin_token=ADMIN)
        with TestClient(create_app(settings), headers={"Authorization": f"Bearer {ADMIN}"},
                        raise_server_exceptions=False) as c:
            resp = c.post("/api/v1/runs", json={"config": {**TINY, "name": "the-first-run"}})
            assert resp.status_code == 201, resp.text
            c.run_id = resp.json()["id"]
            with session_scope(settings.db_url) as session:  # one recorded epoch: metric and layer reads run SQL
                session.add(EpochMetric(run_id=c.run_id, epoch=1, metrics={"epoch": 1, "val_error": 0.25}))
                session.add(LayerRecord(run_id=c.run_id, epoch=1, layer="fc1", record={"gate_event_rate": 0.5}))
                session.execute(update(Run).where(Run.id == c.run_id).values(epochs_done=1))
            yield c


# (place, the field the 422 must name, the request)
PLACES = [
    ("run name", "config.name", lambda c, v: c.post("/api/v1/runs", json={"config": {**TINY, "name": v}})),
    ("run project", "config.project", lambda c, v: c.post("/api/v1/runs", json={"config": {**TINY, "project": v}})),
    ("run team", "team", lambda c, v: c.post("/api/v1/runs", json={"config": TINY, "team": v})),
    ("sweep name", "name", lambda c, v: c.post("/api/v1/sweeps", json={**SWEEP, "name": v})),
    ("sweep team", "team", lambda c, v: c.post("/api/v1/sweeps", json={**SWEEP, "team": v})),
    ("sweep base project", "base.project",
     lambda c, v: c.post("/api/v1/sweeps", json={**SWEEP, "base": {**TINY, "project": v}})),
    # The base's name is replaced by each run's label, but the spec is stored as given.
    ("sweep base name", "base.name",
     lambda c, v: c.post("/api/v1/sweeps", json={**SWEEP, "base": {**TINY, "name": v}})),
    # A choice never drawn (seed 0 draws the second) is never validated as a config value, but it is stored
    # with the spec.
    ("sweep choice", "random.activations.window.choices.0", lambda c, v: c.post("/api/v1/sweeps", json={
        "name": "s", "base": TINY, "random": {"activations.window": {"choices": [v, "rect"]}}, "budget": 1})),
    ("token name", "name", lambda c, v: c.post("/api/v1/tokens", json={"name": v})),
    ("team name", "name", lambda c, v: c.post("/api/v1/teams", json={"name": v})),
    ("user name", "name", lambda c, v: c.post("/api/v1/users", json={"name": v, "teams": ["default"]})),
    ("user's team", "teams.0", lambda c, v: c.post("/api/v1/users", json={"name": "u", "teams": [v]})),
    ("list q", "q", lambda c, v: c.get("/api/v1/runs", params={"q": v})),
    ("list project", "project", lambda c, v: c.get("/api/v1/runs", params={"project": v})),
    ("list team", "team", lambda c, v: c.get("/api/v1/runs", params={"team": v})),
    ("metrics metric", "metric", lambda c, v: c.get(f"/api/v1/runs/{c.run_id}/metrics", params={"metric": v})),
    ("layers layer", "layer", lambda c, v: c.get(f"/api/v1/runs/{c.run_id}/layers", params={"layer": v})),
    ("compare metric", "metric", lambda c, v: c.get("/api/v1/compare", params={"ids": c.run_id, "metric": v})),
]


def _stored(client) -> dict[str, int]:
    return {"runs": client.get("/api/v1/runs").json()["total"],
            "sweeps": client.get("/api/v1/sweeps").json()["total"],
            "tokens": len(client.get("/api/v1/tokens").json()),
            "teams": len(client.get("/api/v1/teams").json()),
            "users": len(client.get("/api/v1/users").json())}


@pytest.mark.parametrize("place,field,send", PLACES, ids=[p[0] for p in PLACES])
def test_a_control_character_is_a_422_naming_the_field_and_nothing_is_stored(client, place, field, send):
    before = _stored(client)
    wrong = []
    for char in HOSTILE.values():
        for value in (f"bad{char}name", f"trailing{char}"):  # a trailing newline is the classic regex `$` hole
            resp = send(client, value)
            body = resp.json() if resp.headers.get("content-type") == "application/json" else {}
            if resp.status_code != 422 or body.get("field") != field or \
                    not body.get("message", "").startswith(f"{field}: "):
                wrong.append(f"{value!r}: {resp.status_code} {resp.text[:200]}")
    assert not wrong, f"{place}: " + "\n".join(wrong)
    assert _stored(client) == before
    assert client.get(f"/api/v1/runs/{client.run_id}").status_code == 200  # and it keeps answering
    assert client.get("/api/v1/runs", params={"q": "the-first"}).json()["total"] == 1


def test_the_message_says_which_character_and_where(client):
    body = client.post("/api/v1/runs", json={"config": {**TINY, "name": "ab\x00c"}}).json()
    assert "control character" in body["message"] and "U+0000" in body["message"], body
    body = client.get("/api/v1/runs", params={"q": "x\u0085"}).json()
    assert body["field"] == "q" and "U+0085" in body["message"], body


def test_unicode_names_are_accepted_and_round_trip(client):
    """Only the control characters are refused: their neighbours (space, ~, NBSP), accents, CJK and emoji
    are ordinary names, stored and searched as given."""
    for name in (NICE, "a b~c\xa0d"):
        resp = client.post("/api/v1/runs", json={"config": {**TINY, "name": name, "project": f"p {name}"}})
        assert resp.status_code == 201, resp.text
        run = client.get(f"/api/v1/runs/{resp.json()['id']}").json()
        assert (run["name"], run["project"], run["config"]["name"]) == (name, f"p {name}", name)
        found = client.get("/api/v1/runs", params={"q": name, "project": f"p {name}", "team": "default"}).json()
        assert [r["id"] for r in found["items"]] == [run["id"]]
    assert client.get(f"/api/v1/runs/{client.run_id}/metrics", params={"metric": NICE}).status_code == 200
    assert client.get(f"/api/v1/runs/{client.run_id}/layers", params={"layer": NICE}).json()["records"] == []
    assert client.get("/api/v1/compare", params={"ids": client.run_id, "metric": NICE}).status_code == 200

    resp = client.post("/api/v1/sweeps", json={**SWEEP, "name": NICE, "base": {**TINY, "project": NICE}})
    assert resp.status_code == 201, resp.text
    sweep = client.get(f"/api/v1/sweeps/{resp.json()['id']}").json()
    assert (sweep["name"], sweep["project"]) == (NICE, NICE)
    assert all(r["name"].startswith(f"{NICE} · r=0.5") for r in sweep["runs"])

    resp = client.post("/api/v1/tokens", json={"name": NICE})
    assert resp.status_code == 201, resp.text
    assert NICE in [t["name"] for t in client.get("/api/v1/tokens").json()]


def test_the_cli_refuses_them_too(tmp_path):
    """`gxnor train` validates with the same config model: exit 2, one line naming the field."""
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"name": "a\x00b"}))
    res = subprocess.run([sys.executable, "-m", "gxnor_cli", "train", str(path), "--out", str(tmp_path / "r")],
                         capture_output=True, text=True)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and "name: control characters are not allowed (U+0000" in lines[0], \
        res.stderr
    assert not (tmp_path / "r").exists()
