"""What a run or a sweep would cost before it is submitted (app.estimator), and where the team's budget
stands (app.budget): for the launch forms, and later sweep cost and queue ETAs."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, model_validator

from app import budget, estimator
from app import runs as svc
from app.api.deps import SessionDep, SettingsDep
from app.auth import Auth
from app.schemas import ERRORS, ErrorOut
from gxnor_core.config import CleanText, ExperimentConfig
from gxnor_core.errors import FieldError
from gxnor_core.sweeps import SweepSpec, expand

router = APIRouter(prefix="/api/v1", tags=["estimate"], responses=ERRORS)


class EstimateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    config: ExperimentConfig | None = Field(None, description="One run's config (as for POST /runs).")
    sweep: SweepSpec | None = Field(None, description="A sweep spec (as for POST /sweeps, without team).")
    team: CleanText | None = Field(None, min_length=1, max_length=100,
                                   description="Whose budget to report (default: your only team).")

    @model_validator(mode="after")
    def _one_of(self):
        if (self.config is None) == (self.sweep is None):
            raise ValueError("give exactly one of config and sweep")
        return self


class KindEstimate(BaseModel):
    arch: str
    dataset: str
    device: str = Field(description="The configs' train.device (auto: any worker).")
    runs: int
    epochs: int = Field(description="Epochs of all these runs together.")
    seconds_per_epoch: float
    total_seconds: float
    source: str = Field(description='"learned from N runs" (finished here) or "default table".')
    learned_from: int


class TeamBudget(BaseModel):
    name: str
    queued_runs: int
    queued_seconds: float = Field(description="The team's queued work now, in estimated seconds.")
    running_runs: int
    max_queued_runs: int
    max_queued_seconds: float | None = Field(description="GXNOR_TEAM_MAX_QUEUED_SECONDS; null: no limit.")
    max_running: int | None = Field(description="GXNOR_TEAM_MAX_RUNNING; null: no limit.")
    fits: bool = Field(description="Whether this would be queued now (the queue cap and the queued-work budget).")


class EstimateOut(BaseModel):
    runs: int
    epochs: int
    total_seconds: float = Field(description="Estimated training time of every run, one after another.")
    kinds: list[KindEstimate] = Field(description="Per architecture × dataset × device.")
    team: TeamBudget | None = Field(description="Null when you belong to several teams and named none.")


@router.post("/estimate", response_model=EstimateOut, responses={
    400: {"model": ErrorOut, "description": "The body is not JSON"},
    413: {"model": ErrorOut, "description": "The body is larger than the server accepts"}})
def estimate(body: EstimateIn, session: SessionDep, settings: SettingsDep, who: Auth) -> dict:
    """Estimated training time of a config or a whole sweep (epochs × seconds per epoch, learned from the runs
    that finished here or from the default table), and the team's budget: nothing is queued."""
    configs = [body.config] if body.config is not None else [
        p.config for p in expand(body.sweep, max_runs=settings.max_sweep_runs)]
    groups: dict[tuple[str, str, str], list[int]] = {}
    for c in configs:
        group = groups.setdefault((c.model.arch, c.dataset.name, c.train.device), [0, 0])
        group[0] += 1
        group[1] += c.train.epochs
    kinds = []
    for (arch, dataset, device), (runs, epochs) in groups.items():
        e = estimator.per_epoch(session, arch, dataset, device)
        kinds.append({"arch": arch, "dataset": dataset, "device": device, "runs": runs, "epochs": epochs,
                      "seconds_per_epoch": e.seconds_per_epoch, "total_seconds": epochs * e.seconds_per_epoch,
                      "source": e.source, "learned_from": e.learned_from})
    total = sum(k["total_seconds"] for k in kinds)
    return {"runs": len(configs), "epochs": sum(k["epochs"] for k in kinds), "total_seconds": total,
            "kinds": kinds, "team": _team_budget(session, settings, who, body.team, len(configs), total)}


def _team_budget(session, settings, who, name: str | None, runs: int, seconds: float) -> dict | None:
    try:
        team = svc.resolve_team(session, who, name)
    except FieldError:
        if name is not None:
            raise
        return None  # several teams (or none) and none named
    queued, queued_s = budget.queued_work(session, team.id)
    limit_s = settings.team_max_queued_seconds or None
    return {"name": team.name, "queued_runs": queued, "queued_seconds": queued_s,
            "running_runs": budget.running_runs(session, team.id), "max_queued_runs": settings.max_queued_runs,
            "max_queued_seconds": limit_s, "max_running": settings.team_max_running or None,
            "fits": queued + runs <= settings.max_queued_runs and (limit_s is None or queued_s + seconds <= limit_s)}
