"""Migration 0010: configs stored before ``activations.overlap`` existed keep the summed derivative they were
made with (docs/METHOD.md §2), on SQLite and PostgreSQL; downgrade takes the key away again."""

from __future__ import annotations

import copy
import json
from contextlib import nullcontext
from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import MetaData, create_engine, insert, text

from app.db import alembic_config
from gxnor_core import build_model
from gxnor_core.config import validate_config
from gxnor_core.layers import StepActivation
from tests.pg import fresh_database


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    with fresh_database("gxnor_overlap") if request.param == "postgresql" else nullcontext() as url:
        yield url or f"sqlite:///{tmp_path / 'overlap.db'}"



def _old(config: dict) -> dict:
    """A config as revision 0009's code stored it: validated and written out in full, without the key."""
    full = validate_config(config).model_dump(mode="json")
    del full["activations"]["overlap"]
    return full


RUNS = {  # id → config as stored before the migration
    1: _old({"name": "r-below-a", "model": {"hidden": [8]}, "activations": {"r": 0.25, "a": 0.5}}),
    2: {},  # a config stored as given: no activations section at all
    3: _old({"name": "fp", "weights": {"discrete": False}, "activations": {"discrete": False}}),
    4: {"activations": {"r": 0.0, "overlap": "paper"}},  # names its overlap already: left alone
}
SWEEPS = {  # id → spec as stored (preset merged in)
    1: {"name": "r", "base": {"dataset": {"name": "mnist5k"}, "activations": {"a": 1.0}},
        "grid": {"activations.r": [0.0, 0.5]}, "seeds": [0], "baseline": True, "seed": 0},
    2: {"name": "m", "base": {}, "list": [{"dst.m": 1.0}], "seed": 0, "baseline": False},
}


def _stored(engine) -> tuple[dict, dict]:
    with engine.connect() as conn:
        runs = {i: json.loads(c) for i, c in conn.execute(text("SELECT id, CAST(config AS TEXT) FROM runs"))}
        sweeps = {i: json.loads(s) for i, s in conn.execute(text("SELECT id, CAST(spec AS TEXT) FROM sweeps"))}
    return runs, sweeps


def _overlap(config: dict) -> str:
    """The overlap of the activation the trainer builds from a stored config."""
    model = build_model(validate_config(config))
    return next(m.act.overlap for m in model.modules() if isinstance(m, StepActivation))


def test_migration_0010_keeps_stored_configs_on_the_summed_derivative(db_url):
    cfg = alembic_config(db_url)
    command.upgrade(cfg, "0009")
    engine = create_engine(db_url)
    with engine.begin() as conn:
        md = MetaData()
        md.reflect(conn, only=["runs", "projects", "sweeps"])
        t = md.tables
        team = conn.execute(text("SELECT id FROM teams WHERE name = 'default'")).scalar()
        now = datetime.now(UTC)
        project = conn.execute(insert(t["projects"]).values(team_id=team, name="p", created_at=now)
                               .returning(t["projects"].c.id)).scalar()
        for sid, spec in SWEEPS.items():
            conn.execute(insert(t["sweeps"]).values(id=sid, project_id=project, name=spec["name"], spec=spec,
                                                    fields=[], points=[], created_at=now))
        for rid, config in RUNS.items():
            conn.execute(insert(t["runs"]).values(
                id=rid, project_id=project, name=f"run-{rid}", config=config, created_at=now,
                status="succeeded" if rid != 2 else "queued", cancel_requested=False, attempt=1, max_attempts=3,
                progress_epoch=0, progress_fraction=0.0, total_epochs=1, epochs_done=0,
                sweep_id=1 if rid == 1 else None, sweep_index=0 if rid == 1 else None))

    command.upgrade(cfg, "0010")
    runs, sweeps = _stored(engine)
    for rid in (1, 2, 3):
        want = copy.deepcopy(RUNS[rid])
        want.setdefault("activations", {})["overlap"] = "sum"
        assert runs[rid] == want, rid  # the key added, nothing else changed
    assert runs[4] == RUNS[4]
    # a resumed or queued run trains with the derivative it was submitted with; the new default is the paper's
    assert _overlap(runs[1]) == _overlap(runs[2]) == "sum"
    assert _overlap(RUNS[1]) == "paper"
    for sid, spec in SWEEPS.items():
        want = copy.deepcopy(spec)
        want["base"].setdefault("activations", {})["overlap"] = "sum"
        assert sweeps[sid] == want, sid

    command.downgrade(cfg, "0009")
    runs, sweeps = _stored(engine)
    assert {i: runs[i] for i in (1, 2, 3)} == {1: RUNS[1], 2: {"activations": {}}, 3: RUNS[3]}
    assert runs[4] == {"activations": {"r": 0.0}}  # the older code refuses the key, whatever its value
    assert sweeps[1] == SWEEPS[1] and sweeps[2] == {**SWEEPS[2], "base": {"activations": {}}}
    command.upgrade(cfg, "head")
    engine.dispose()
