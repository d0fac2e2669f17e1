"""The workers and the queue (app.workers): who is alive, what each trains, where the caller's queued runs stand
and when they should start.  Workers and the queue are shared by every team: another team's runs are counted,
never named."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from app import workers as svc
from app.api.deps import SessionDep
from app.api.routes.runs import RunId
from app.auth import Auth
from app.schemas import ERRORS

router = APIRouter(prefix="/api/v1", tags=["workers"], responses=ERRORS)


class WorkerRun(BaseModel):
    id: int
    name: str | None = Field(description="Null when the run was deleted meanwhile.")


class WorkerOut(BaseModel):
    id: str = Field(description="hostname:pid — the name a run's `worker` field shows.")
    hostname: str
    pid: int
    device: str = Field(description="What it trains on: `cpu` or `cuda:<device name>`.")
    concurrency: int = Field(description="Runs it trains at once.")
    alive: bool = Field(description="It wrote its heartbeat within the last three of its heartbeat periods.")
    started_at: datetime
    last_seen: datetime
    busy: bool = Field(description="It is training a run (whichever team's).")
    run: WorkerRun | None = Field(description="The run it trains, when it is one of your teams' runs; null "
                                  "otherwise (idle, or another team's run: `busy` tells).")


class WorkersOut(BaseModel):
    workers: list[WorkerOut] = Field(description="Alive and dead ones (a dead row is pruned after some hours).")
    alive: int


class QueuedRun(BaseModel):
    id: int
    name: str
    project: str
    team: str
    position: int = Field(description="Its place in the whole queue, every team's runs counted (1: next).")
    ahead: int = Field(description="Queued runs ahead of it (position − 1).")
    seconds: float = Field(description="Its own estimated training time (app.estimator).")
    eta_seconds: float | None = Field(description="Estimated seconds until it starts: the work ahead of it "
                                      "(running runs included) over the alive workers' concurrency; null when no "
                                      "worker is alive.")


class QueueOut(BaseModel):
    length: int = Field(description="Queued runs of every team.")
    workers_alive: int
    capacity: int = Field(description="Runs the alive workers train at once.")
    items: list[QueuedRun] = Field(description="Your teams' queued runs, in queue order.")


class RunQueueOut(BaseModel):
    id: int
    status: str
    length: int = Field(description="Queued runs of every team.")
    workers_alive: int
    capacity: int
    position: int | None = Field(description="Null unless the run is queued; as in GET /queue.")
    ahead: int | None
    seconds: float | None
    eta_seconds: float | None


@router.get("/workers", response_model=WorkersOut)
def list_workers(session: SessionDep, who: Auth) -> dict:
    """Every worker process with its heartbeat: alive or not, its device, and the run it trains (named only when
    it is your teams')."""
    rows = svc.list_workers(session, who.team_ids)
    return {"workers": rows, "alive": sum(w["alive"] for w in rows)}


@router.get("/queue", response_model=QueueOut)
def get_queue(session: SessionDep, who: Auth) -> dict:
    """Your teams' queued runs in queue order, each with its place in the whole queue and an ETA."""
    return svc.queue(session, who.team_ids)


@router.get("/runs/{run_id}/queue", response_model=RunQueueOut, tags=["runs"])
def run_queue_position(run_id: RunId, session: SessionDep, who: Auth) -> dict:
    """A run's place in the queue, its ETA and whether any worker is alive (what a queued run's page says)."""
    return svc.run_queue(session, run_id, who.team_ids)
