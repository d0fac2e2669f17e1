"""All service settings: one pydantic-settings object, from flags or GXNOR_* variables."""

from __future__ import annotations

import contextlib
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from gxnor_core.costs import EnergyTable


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GXNOR_", extra="ignore")

    data_dir: Path = Field(Path("gxnor-data"), description="Everything the service stores lives under here.")
    database_url: str | None = Field(None, description="Default: SQLite file DATA_DIR/gxnor.db.")
    broker_url: str | None = Field(None, description="Default: a filesystem queue under DATA_DIR/broker.")
    artifact_dir: Path | None = Field(None, description="Default: DATA_DIR/artifacts (shared by API and workers).")
    datasets_dir: Path | None = Field(None, description="Where the standard files of the non-bundled datasets are "
                                      "(mnist/, cifar-10-batches-py/, …; docs/CONFIG.md): the same path for the API, "
                                      "which refuses a run whose files are missing, and every worker, which reads "
                                      "them.  Default: ~/.cache/gxnor/datasets.  `gxnor datasets` checks it.")
    queue: str = "gxnor"
    broker_visibility_timeout_s: float | None = Field(
        None, gt=0, description="Redis: seconds before an unacknowledged message is redelivered (kombu's "
        "default: one hour).  Leases make a redelivery harmless, so this only bounds recovery time.")
    progress_interval_s: float = Field(1.0, gt=0, description="How often a worker publishes progress.")
    lease_seconds: float = Field(30.0, gt=0, description="A worker's claim on a run lapses this long after "
                                 "its last heartbeat; the reaper then requeues the run.")
    reaper_interval_s: float = Field(10.0, gt=0, description="How often expired leases are looked for.")
    worker_heartbeat_s: float = Field(10.0, gt=0, le=3600, description="How often a worker process writes its "
                                      "heartbeat row (GET /workers); it counts as alive for three periods.")
    max_attempts: int = Field(3, ge=1, le=100, description="Attempt budget of a new run.")
    max_epochs: int = Field(10_000, ge=1, le=10_000, description="Server cap on train.epochs.")
    allowed_datasets: list[str] | None = None
    max_weights: int = Field(50_000_000, ge=1, description="Server cap on a model's weights.")
    max_macs: int = Field(2_000_000_000, ge=1, description="Server cap on a model's dense MACs per sample.")
    max_queued_runs: int = Field(1000, ge=1, description="Cap on one team's runs waiting in the queue (429 "
                                 "beyond).")
    max_sweep_runs: int = Field(500, ge=1, description="Cap on the runs one sweep expands to (422 beyond).")
    team_max_running: int = Field(0, ge=0, description="Runs of one team running at once (0: no limit).  A "
                                  "worker leaves a team's further runs queued and takes another team's run.")
    team_max_queued_seconds: float = Field(0.0, ge=0, description="Cap on one team's queued work in estimated "
                                           "seconds of training (app.estimator; 0: no limit; 429 beyond).")
    auth: bool = Field(True, description="Require API tokens.  Off is allowed only on a loopback address.")
    admin_token: SecretStr | None = Field(None, description="At first start (no users yet), the admin's token "
                                          "(for automation and tests); otherwise one is made and printed.")
    auth_cache_s: float = Field(2.0, ge=0, description="Seconds a token lookup is cached per process (a "
                                "revocation reaches other processes within this time).")
    max_body_bytes: int = Field(1_048_576, ge=1024, description="Largest request body accepted (413 beyond).")
    max_streams: int = Field(1000, ge=1, description="Live event streams (SSE) one API process serves at "
                             "once (429 beyond).")
    max_streams_per_user: int = Field(32, ge=1, description="Live event streams one user may hold open on one "
                                      "API process (429 beyond).")
    download_link_s: float = Field(300.0, gt=0, le=86_400, description="Lifetime of a download link.")
    score_max_batch: int = Field(256, ge=1, le=100_000, description="Most samples one scoring request may send "
                                 "(POST /runs/{id}/score; 413 beyond).  GXNOR_MAX_BODY_BYTES bounds the body too.")
    score_concurrency: int = Field(2, ge=1, le=64, description="Scoring and model-profile requests one API process "
                                   "runs at once, in its own thread pool (503 with Retry-After beyond).")
    score_cache_models: int = Field(4, ge=1, le=256, description="Exported models (and their engines) one API "
                                    "process keeps loaded, per run and checkpoint (least recently used dropped).")
    idempotency_key_s: float = Field(86_400.0, gt=0, description="How long the first answer to a run or sweep "
                                     "creation with an Idempotency-Key is replayed to retries with that key.")
    allowed_hosts: list[str] | None = Field(None, description="Host header values the API answers (with any "
                                            "port); others get 400.  Default: any with auth on, loopback names "
                                            "with auth off (DNS rebinding).")
    header_timeout_s: float = Field(10.0, gt=0, description="A client must send a request's headers within "
                                    "this time of its first byte (or of connecting); otherwise it is dropped.")
    health_port: int | None = Field(None, ge=0, le=65_535, description="Also answer /healthz on this port, from "
                                    "a thread off the event loop (fast under any load; 503 when the loop is stuck "
                                    "over 1 s; app.health_port).  Default: off.")
    health_host: str = Field("127.0.0.1", description="The address the health port listens on (`gxnor api "
                             "--health-port` sets it to the API's --host).")
    body_timeout_s: float = Field(30.0, gt=0, description="Longest wait for the next part of a request body "
                                  "(408 beyond).")
    shutdown_timeout_s: int = Field(5, ge=1, description="On SIGTERM/SIGINT, seconds open responses (downloads) "
                                    "get to finish before they are cut; event streams end at once.")
    energy_table: EnergyTable = Field(default_factory=EnergyTable, description="Energy per operation for the "
                                      "cost model (GET /runs/{id}/costs), as JSON; default Horowitz, ISSCC 2014, "
                                      "45 nm (gxnor_core.costs.EnergyTable; docs/METHOD.md §6).")

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'gxnor.db').resolve()}"

    @property
    def broker(self) -> str:
        return self.broker_url or "filesystem://localhost/"  # (a host: kombu warns without one)

    @property
    def broker_dir(self) -> Path:
        return (self.data_dir / "broker").resolve()

    @property
    def artifacts(self) -> Path:
        return (self.artifact_dir or self.data_dir / "artifacts").resolve()

    @property
    def datasets_root(self) -> Path:
        """The datasets directory: ``datasets_dir``, else the core's default (gxnor_core.data.default_root, which
        reads the same GXNOR_DATASETS_DIR, so a worker's training and the API's check agree)."""
        from gxnor_core.data import default_root

        return (self.datasets_dir or default_root()).expanduser().resolve()

    def ensure_dirs(self) -> None:
        """Make the data directory and its parts, private to this user (0700) — also when they exist: they
        hold the database (token hashes, everyone's runs), checkpoints and the queue."""
        dirs = [self.data_dir, self.artifacts]
        if self.broker_url is None:
            dirs += [self.broker_dir, *(self.broker_dir / sub for sub in ("queue", "processed", "control"))]
        for d in dirs:
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
            with contextlib.suppress(PermissionError):  # another user's directory (a shared mount): theirs
                d.chmod(0o700)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
