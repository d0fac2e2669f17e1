"""Real processes on real infrastructure: `gxnor api` / `gxnor worker` / `gxnor up`, PostgreSQL, Redis."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy import create_engine, text

from tests.services import (  # noqa: F401 - PG_ADMIN_URL, REDIS_URL: imported from here by other tests
    PG_ADMIN_URL,
    REDIS_URL,
    require_postgres,
    require_redis,
    require_redis_server_binary,
)

# Services started by these tests get this admin token at first start (GXNOR_ADMIN_TOKEN).
ADMIN_TOKEN = "gx_integration-test-admin-token"
AS_ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateRedis:
    """A redis-server of the test's own (on ``port``, or a free one) that keeps nothing on disk, so stopping
    it disturbs nobody else and loses every message."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.proc = None

    def start(self):
        require_redis_server_binary()
        self.proc = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(self.port),
                                      "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
        wait_for(lambda: self._ping(), timeout=10, interval=0.1, what="redis to start")

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def _ping(self):
        try:
            return redis.Redis(port=self.port).ping()
        except redis.ConnectionError:
            return False


@pytest.fixture()
def pg_url():
    """A fresh database on the PostgreSQL server, dropped afterwards."""
    require_postgres()
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"gxnor_it_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"PostgreSQL is needed at {PG_ADMIN_URL} (.ci/run starts it): {exc}")
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture()
def redis_url():
    require_redis()
    return REDIS_URL


class Proc:
    """A `gxnor` subprocess with its own log file; stopped at teardown."""

    def __init__(self, args: list[str], env: dict, log: Path):
        self.log = log
        self.handle = open(log, "w")  # noqa: SIM115 - closed in stop()
        self.p = subprocess.Popen([sys.executable, "-m", "gxnor_cli", *args], env=env,
                                  stdout=self.handle, stderr=subprocess.STDOUT, start_new_session=True)

    def send(self, sig) -> None:
        if self.p.poll() is None:
            os.kill(self.p.pid, sig)

    def stop(self, sig=signal.SIGTERM, timeout: float = 60) -> int:
        self.send(sig)
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.p.pid, signal.SIGKILL)
            return self.p.wait()
        finally:
            self.handle.close()

    def text(self) -> str:
        return self.log.read_text()


@pytest.fixture()
def procs():
    started: list[Proc] = []
    yield started
    for p in started:
        if p.p.poll() is None:
            p.stop(signal.SIGKILL, timeout=10)
        with contextlib.suppress(ProcessLookupError):  # and whatever it started (uvicorn's worker processes)
            os.killpg(p.p.pid, signal.SIGKILL)


def service_env(tmp_path: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GXNOR_")}
    env.update({"GXNOR_DATA_DIR": str(tmp_path / "data"), "GXNOR_PROGRESS_INTERVAL_S": "0.3",
                "GXNOR_ADMIN_TOKEN": ADMIN_TOKEN, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", **extra})
    return env


def wait_healthy(base: str, proc: Proc, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.p.poll() is not None:
            raise AssertionError(f"process exited early:\n{proc.text()[-3000:]}")
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{base} did not come up:\n{proc.text()[-3000:]}")


def wait_for(predicate, timeout: float = 120, interval: float = 0.3, what: str = "condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def start_cluster(tmp_path: Path, procs: list, api_args: tuple[str, ...] = (), **env_extra: str):
    """`gxnor api` on a free port plus ``add_worker(name)``; returns (httpx client, add_worker)."""
    env = service_env(tmp_path, **env_extra)
    port = free_port()
    api = Proc(["api", "--port", str(port), *api_args], env, tmp_path / "api.log")
    procs.append(api)
    base = f"http://127.0.0.1:{port}"
    wait_healthy(base, api)

    def add_worker(name: str) -> Proc:
        w = Proc(["worker", "--name", f"{name}@test"], env, tmp_path / f"{name}.log")
        procs.append(w)
        return w

    return httpx.Client(base_url=base, timeout=30, headers=AS_ADMIN), add_worker
