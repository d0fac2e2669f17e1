"""The API's read routes answer the same on PostgreSQL as on SQLite.

The read paths differ between the two (app.db.get_read_engine: autocommit on PostgreSQL; app.runs.list_runs:
one sorting statement on PostgreSQL, ids then rows on SQLite), so the same seeded data — the benchmark's
seeder, with the same random seed — is put in a SQLite file and a fresh PostgreSQL database and every read
is asked of both.
"""

import random
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.runs import SORTABLE
from app.settings import Settings
from bench.api_load import PROJECTS, seed

ADMIN = "gx_reads-admin"
RUNS, EPOCHS = 24, 6
NOW = datetime(2026, 11, 26, 12, 0, 0, 250_000, tzinfo=UTC)


def _client(tmp_path, name: str, url: str | None):
    settings = Settings(data_dir=tmp_path / name, database_url=url, admin_token=ADMIN)
    settings.ensure_dirs()
    seed(settings.db_url, RUNS, EPOCHS, random.Random(7), NOW)
    return TestClient(create_app(settings), headers={"Authorization": f"Bearer {ADMIN}"})


@pytest.fixture()
def both(tmp_path, pg_url):
    with _client(tmp_path, "sqlite", None) as lite, _client(tmp_path, "pg", pg_url) as pg:
        for c in (lite, pg):  # a second team, with a user who must see none of the default team's runs
            assert c.post("/api/v1/teams", json={"name": "other"}).status_code == 201
            c.other = c.post("/api/v1/users", json={"name": "eve", "teams": ["other"]}).json()["token"]["token"]
        yield lite, pg


def _paths() -> list[str]:
    lists = [f"/api/v1/runs?sort={s}&order={o}&limit=7&offset={off}"
             for s in SORTABLE for o in ("asc", "desc") for off in (0, 7, 30)]
    lists += [f"/api/v1/runs?project={PROJECTS[1]}", "/api/v1/runs?status=succeeded&sort=best_val_error",
              "/api/v1/runs?status=queued", "/api/v1/runs?team=default&limit=5", "/api/v1/runs?team=other",
              "/api/v1/runs?q=LR0.01", "/api/v1/runs?q=%25", "/api/v1/runs?q=_s1", "/api/v1/runs?q=-S1",
              "/api/v1/runs?sweep=3"]
    one = [f"/api/v1/runs/{i}" for i in (1, 9, RUNS)]
    one += [f"/api/v1/runs/{i}/metrics" for i in (2, 5)] + ["/api/v1/runs/5/metrics?points=4&metric=val_error"]
    one += ["/api/v1/runs/3/layers", "/api/v1/runs/3/layers?epoch=2", "/api/v1/runs/3/layers?layer=conv2",
            "/api/v1/runs/3/layers?epoch=4&layer=fc1", "/api/v1/runs/3/layers?epoch=99",
            "/api/v1/runs/3/layers?points=4"]
    one += ["/api/v1/compare?ids=4,2,11", "/api/v1/compare?ids=1,2&metric=train_loss&points=4"]
    return lists + one


def _first_difference(a, b, where="") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                return _first_difference(a.get(k), b.get(k), f"{where}.{k}")
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return _first_difference(x, y, f"{where}[{i}]")
    return f"{where}: {a!r} != {b!r}"


def test_every_read_answers_the_same_on_postgresql_as_on_sqlite(both):
    lite, pg = both
    for path in _paths():
        a, b = lite.get(path), pg.get(path)
        assert a.status_code == b.status_code == 200, (path, a.text[:200], b.text[:200])
        assert a.json() == b.json(), (path, _first_difference(a.json(), b.json()))
    # what the answers hold, not only that they agree
    page = pg.get("/api/v1/runs?sort=best_val_error&order=asc&limit=5&offset=2").json()
    errors = [r["summary"]["best_val_error"] for r in page["items"]]
    assert page["total"] == RUNS and len(errors) == 5 and errors == sorted(errors)
    cifar = pg.get(f"/api/v1/runs?project={PROJECTS[1]}").json()  # the seeder puts run i in PROJECTS[i % 5]
    assert cifar["total"] == len(range(1, RUNS + 1, len(PROJECTS))) and {r["project"] for r in cifar["items"]} == {
        PROJECTS[1]}
    assert [r["epoch"] for r in pg.get("/api/v1/runs/3/layers?epoch=2").json()["records"]] == [2] * 4
    assert pg.get("/api/v1/runs/3/layers?epoch=99").json()["records"] == []
    assert len(pg.get("/api/v1/runs/2/metrics").json()["epochs"]) == EPOCHS


def test_another_teams_runs_are_404_and_unlisted_on_both(both):
    for c in both:
        eve = {"Authorization": f"Bearer {c.other}"}
        assert c.get("/api/v1/runs", headers=eve).json()["total"] == 0
        for path in ("/api/v1/runs/3", "/api/v1/runs/3/metrics", "/api/v1/runs/3/layers?epoch=2",
                     "/api/v1/compare?ids=3"):
            assert c.get(path, headers=eve).status_code == 404, path
        for path in ("/api/v1/runs/999", "/api/v1/runs/999/metrics", "/api/v1/runs/999/layers"):
            assert c.get(path).status_code == 404, path
