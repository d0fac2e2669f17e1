"""All service settings: one pydantic-settings object, from flags or GXNOR_* variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GXNOR_", extra="ignore")

    data_dir: Path = Field(Path("gxnor-data"), description="Everything the service stores lives under here.")
    database_url: str | None = Field(None, description="Default: SQLite file DATA_DIR/gxnor.db.")
    broker_url: str | None = Field(None, description="Default: a filesystem queue under DATA_DIR/broker.")
    artifact_dir: Path | None = Field(None, description="Default: DATA_DIR/artifacts (shared by API and workers).")
    queue: str = "gxnor"
    broker_visibility_timeout_s: float | None = Field(
        None, gt=0, description="Redis: seconds before an unacknowledged message is redelivered (kombu's "
        "default: one hour).  Leases make a redelivery harmless, so this only bounds recovery time.")
    progress_interval_s: float = Field(1.0, gt=0, description="How often a worker publishes progress.")
    lease_seconds: float = Field(30.0, gt=0, description="A worker's claim on a run lapses this long after "
                                 "its last heartbeat; the reaper then requeues the run.")
    reaper_interval_s: float = Field(10.0, gt=0, description="How often expired leases are looked for.")
    max_attempts: int = Field(3, ge=1, le=100, description="Attempt budget of a new run.")
    max_epochs: int = Field(10_000, ge=1, le=10_000, description="Server cap on train.epochs.")
    allowed_datasets: list[str] | None = None
    max_weights: int = Field(50_000_000, ge=1, description="Server cap on a model's weights.")
    max_macs: int = Field(2_000_000_000, ge=1, description="Server cap on a model's dense MACs per sample.")
    max_queued_runs: int = Field(1000, ge=1, description="Cap on one team's runs waiting in the queue (429 "
                                 "beyond).")
    max_sweep_runs: int = Field(500, ge=1, description="Cap on the runs one sweep expands to (422 beyond).")
    auth: bool = Field(True, description="Require API tokens.  Off is allowed only on a loopback address.")
    admin_token: SecretStr | None = Field(None, description="At first start (no users yet), the admin's token "
                                          "(for automation and tests); otherwise one is made and printed.")
    auth_cache_s: float = Field(2.0, ge=0, description="Seconds a token lookup is cached per process (a "
                                "revocation reaches other processes within this time).")
    max_body_bytes: int = Field(1_048_576, ge=1024, description="Largest request body accepted (413 beyond).")

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'gxnor.db').resolve()}"

    @property
    def broker(self) -> str:
        return self.broker_url or "filesystem://"

    @property
    def broker_dir(self) -> Path:
        return (self.data_dir / "broker").resolve()

    @property
    def artifacts(self) -> Path:
        return (self.artifact_dir or self.data_dir / "artifacts").resolve()

    def ensure_dirs(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.artifacts.mkdir(parents=True, exist_ok=True)
        if self.broker_url is None:
            for sub in ("queue", "processed", "control"):
                (self.broker_dir / sub).mkdir(parents=True, exist_ok=True)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
