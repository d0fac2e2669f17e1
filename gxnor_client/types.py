"""What the client returns: plain, frozen dataclasses over the API's JSON (docs/API.md), each keeping the whole
answer in ``raw``.

Not the server's pydantic schemas (app.schemas): importing those loads SQLAlchemy and torch, and a notebook or a
CI job that only talks to a server should not need either.  The fields here are the ones a script reads most;
anything else is in ``raw``, so a field the server adds later is never out of reach.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

ACTIVE = ("queued", "running")  # a run or sweep in these states has not ended


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True)
class Progress:
    epoch: int  # the epoch being trained (1-based), or the last one finished
    fraction: float  # of that epoch
    epochs_done: int
    total_epochs: int

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Progress:
        return cls(epoch=d["epoch"], fraction=d["fraction"], epochs_done=d["epochs_done"],
                   total_epochs=d["total_epochs"])

    @property
    def epochs(self) -> float:
        """Epochs done, with the fraction of the one in progress."""
        return self.epochs_done + (self.fraction if self.epoch > self.epochs_done else 0.0)


@dataclass(frozen=True)
class Run:
    id: int
    name: str
    status: str  # queued, running, succeeded, failed, cancelled
    project: str
    team: str
    sweep_id: int | None
    progress: Progress
    summary: dict[str, float | int | None]  # every run metric of the catalog (GET /catalog → metrics.run)
    config: dict[str, Any]
    tags: list[str]
    notes: str | None
    archived: bool
    error: str | None
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @property
    def finished(self) -> bool:
        return self.status not in ACTIVE

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Run:
        return cls(id=d["id"], name=d["name"], status=d["status"], project=d.get("project", ""),
                   team=d.get("team", ""), sweep_id=d.get("sweep_id"), progress=Progress.from_json(d["progress"]),
                   summary=d.get("summary") or {}, config=d.get("config") or {}, tags=list(d.get("tags") or []),
                   notes=d.get("notes"), archived=bool(d.get("archived")), error=d.get("error"),
                   created_at=_time(d.get("created_at")), started_at=_time(d.get("started_at")),
                   finished_at=_time(d.get("finished_at")), raw=d)


@dataclass(frozen=True)
class RunPage:
    """One page of ``GET /runs``: ``items`` and the ``total`` that match the filters."""

    items: list[Run]
    total: int
    limit: int
    offset: int

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


@dataclass(frozen=True)
class Sweep:
    id: int
    name: str
    status: str  # queued, running, finished, cancelled
    fields: list[str]  # the dotted config fields it varies
    counts: dict[str, int]  # runs per status
    total: int
    progress: float  # fraction of all its epochs done
    run_ids: list[int]
    results: list[dict[str, Any]]  # per config: overrides, n, n_done, metrics → {mean, std, n} (GET /sweeps/{id})
    raw: dict[str, Any] = field(repr=False, compare=False)

    @property
    def finished(self) -> bool:
        return self.status not in ACTIVE

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Sweep:
        run_ids = d.get("run_ids") or [r["id"] for r in d.get("runs", [])]
        return cls(id=d["id"], name=d["name"], status=d["status"], fields=list(d.get("fields") or []),
                   counts=dict(d.get("counts") or {}), total=d.get("total", len(run_ids)),
                   progress=d.get("progress", 0.0), run_ids=run_ids, results=list(d.get("results") or []), raw=d)


@dataclass(frozen=True)
class Comparison:
    """``GET /compare``: the runs (id, name, status, summary, config), one metric aligned by epoch."""

    metric: str
    epochs: list[int]
    series: dict[int, list[float | None]]  # run id → the metric at each of ``epochs``
    runs: list[dict[str, Any]]
    config_diff: dict[str, list[Any]]  # the config fields that differ → each run's value
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Comparison:
        return cls(metric=d["metric"], epochs=d["epochs"], series={int(k): v for k, v in d["series"].items()},
                   runs=d["runs"], config_diff=d["config_diff"], raw=d)


@dataclass(frozen=True)
class BulkResult:
    """``POST /runs/bulk``: how many runs the action applied to, and per id ``{id, ok, status, detail}``."""

    action: str
    done: int
    results: list[dict[str, Any]]

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.results if not r["ok"]]
