"""A real `gxnor api` under what a busy team and a hostile client do to it: more live pages and unread
downloads than its connection pools hold, stream limits, shutdown with pages open, slow clients.

Streams and downloads are opened on raw sockets, so each stays open, unread, as long as the test wants."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from .conftest import ADMIN_TOKEN, AS_ADMIN, Proc, free_port, service_env, wait_healthy

TINY = {"name": "watched", "model": {"hidden": [8]}, "train": {"epochs": 1000}}


def start_api(tmp_path: Path, procs: list, **env_extra: str) -> tuple[str, Proc]:
    port = free_port()
    api = Proc(["api", "--port", str(port)], service_env(tmp_path, **env_extra), tmp_path / "api.log")
    procs.append(api)
    base = f"http://127.0.0.1:{port}"
    wait_healthy(base, api)
    return base, api


def open_raw(base: str, path: str, headers: dict | None = None, timeout: float = 10) -> tuple[socket.socket, bytes]:
    """Send a GET and read only the response head; the body is left unread (the socket stays open)."""
    host, port = base.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=timeout)
    head = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{head}\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return sock, data


def status_of(head: bytes) -> int:
    return int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else -1


def timed_get(base: str, path: str, token: str | None = None) -> tuple[int, float]:
    t0 = time.monotonic()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    resp = httpx.get(base + path, headers=headers, timeout=20)
    return resp.status_code, time.monotonic() - t0


def other_team_user(admin: httpx.Client) -> str:
    assert admin.post("/api/v1/teams", json={"name": "other"}).status_code == 201
    made = admin.post("/api/v1/users", json={"name": "bob", "teams": ["other"]})
    assert made.status_code == 201, made.text
    return made.json()["token"]["token"]


def fake_checkpoint(db_url: str, data_dir: Path, run_id: int, size: int) -> None:
    """A checkpoint file of ``size`` bytes recorded for the run, as a worker records one."""
    rel = Path("runs") / str(run_id) / "checkpoint-00001-a1.pt"
    path = data_dir / "artifacts" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(1024) * (size // 1024))
    engine = create_engine(db_url)
    with engine.begin() as c:
        c.execute(text("INSERT INTO artifacts (run_id, kind, epoch, path, size, created_at) "
                       "VALUES (:r, 'checkpoint', 1, :p, :s, CURRENT_TIMESTAMP)"),
                  {"r": run_id, "p": str(rel), "s": size})
        c.execute(text("UPDATE runs SET epochs_done = 1 WHERE id = :r"), {"r": run_id})
    engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_more_streams_and_downloads_than_the_pools_hold_leave_other_teams_served(tmp_path, procs, backend, request):
    """80 live event streams and 45 unread 20 MB downloads (the pools hold 50 on SQLite, 40 + 40 on
    PostgreSQL): another team's health check, run list and static files still answer at once, no database
    connection sits idle in a transaction, and every stream ends cleanly when the run is cancelled."""
    extra = {"GXNOR_MAX_STREAMS_PER_USER": "200"}
    db_url = None
    if backend == "postgres":
        db_url = request.getfixturevalue("pg_url")
        extra["GXNOR_DATABASE_URL"] = db_url
    base, api = start_api(tmp_path, procs, **extra)
    db_url = db_url or f"sqlite:///{(tmp_path / 'data' / 'gxnor.db').resolve()}"
    admin = httpx.Client(base_url=base, headers=AS_ADMIN, timeout=30)
    bob = other_team_user(admin)
    run = admin.post("/api/v1/runs", json={"config": TINY}).json()  # queued (no worker): its streams stay open
    fake_checkpoint(db_url, tmp_path / "data", run["id"], 20 * 1024 * 1024)
    socks = []
    try:
        for _ in range(80):
            sock, head = open_raw(base, f"/api/v1/runs/{run['id']}/events?token={ADMIN_TOKEN}")
            assert status_of(head) == 200, head
            socks.append(sock)
        for _ in range(45):
            sock, head = open_raw(base, f"/api/v1/runs/{run['id']}/checkpoint", AS_ADMIN)
            assert status_of(head) == 200, head
            socks.append(sock)
        time.sleep(1.5)  # a couple of polls
        for path, token in (("/healthz", None), ("/api/v1/runs", bob), ("/static/css/app.css", None),
                            ("/api/v1/me", bob), ("/api/v1/runs", ADMIN_TOKEN)):
            status, took = timed_get(base, path, token)
            assert status == 200 and took < 2.0, (path, status, took)
        if backend == "postgres":
            with create_engine(db_url).connect() as c:
                states = dict(c.execute(text("SELECT coalesce(state, '?'), count(*) FROM pg_stat_activity "
                                             "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                                             "GROUP BY 1")).all())
            assert states.get("idle in transaction", 0) == 0, states
            assert sum(states.values()) < 30, states  # pooled connections, not one per stream or download
        # The run is cancelled: every open stream gets its final status and ends.
        assert admin.post(f"/api/v1/runs/{run['id']}/cancel").status_code == 200
        for sock in socks[:80]:
            sock.settimeout(10)
            data = b""
            while not data.endswith(b"0\r\n\r\n"):  # the chunked body's end
                chunk = sock.recv(65536)
                assert chunk, data[-300:]
                data += chunk
            assert b"event: status" in data and b'"cancelled"' in data
    finally:
        for sock in socks:
            sock.close()
    status, took = timed_get(base, "/api/v1/runs", bob)
    assert status == 200 and took < 2.0
    assert "Exception in ASGI application" not in api.text() and "Traceback" not in api.text()


def test_stream_limits_answer_429_and_are_given_back_and_slow_clients_are_dropped(tmp_path, procs):
    base, _ = start_api(tmp_path, procs, GXNOR_MAX_STREAMS_PER_USER="3", GXNOR_MAX_STREAMS="5",
                        GXNOR_HEADER_TIMEOUT_S="1", GXNOR_BODY_TIMEOUT_S="1")  # (one server for both: suite time)
    admin = httpx.Client(base_url=base, headers=AS_ADMIN, timeout=30)
    bob = other_team_user(admin)
    mine = admin.post("/api/v1/runs", json={"config": TINY}).json()["id"]
    bobs = httpx.post(f"{base}/api/v1/runs", json={"config": TINY}, headers={"Authorization": f"Bearer {bob}"},
                      timeout=30).json()["id"]
    socks = []

    def fill(run_id: int, token: str, allowed: int) -> bytes:
        """Open ``allowed`` streams (each 200), then one more: its response head."""
        for _ in range(allowed):
            sock, head = open_raw(base, f"/api/v1/runs/{run_id}/events?token={token}")
            assert status_of(head) == 200, head
            socks.append(sock)
        sock, head = open_raw(base, f"/api/v1/runs/{run_id}/events?token={token}")
        sock.close()
        return head

    try:
        head = fill(mine, ADMIN_TOKEN, 3)
        assert status_of(head) == 429 and b"retry-after" in head.lower(), head  # per user
        head = fill(bobs, bob, 2)
        assert status_of(head) == 429, head  # per process: 5 open
        socks.pop(0).close()  # a viewer leaves (the client just goes away): its slot is given back
        deadline = time.monotonic() + 10
        while True:
            sock, head = open_raw(base, f"/api/v1/runs/{mine}/events?token={ADMIN_TOKEN}")
            if status_of(head) == 200 or time.monotonic() > deadline:
                break
            sock.close()
            time.sleep(0.2)
        socks.append(sock)
        assert status_of(head) == 200, head
    finally:
        for sock in socks:
            sock.close()
    check_slow_clients(base)


def test_sigterm_with_live_pages_open_stops_the_server_at_once(tmp_path, procs):
    base, api = start_api(tmp_path, procs)
    admin = httpx.Client(base_url=base, headers=AS_ADMIN, timeout=30)
    run = admin.post("/api/v1/runs", json={"config": TINY}).json()
    socks = [open_raw(base, f"/api/v1/runs/{run['id']}/events?token={ADMIN_TOKEN}")[0] for _ in range(10)]
    t0 = time.monotonic()
    code = api.stop(signal.SIGTERM, timeout=20)
    took = time.monotonic() - t0
    # (uvicorn re-raises the signal once it has shut down: the process ends by SIGTERM, after a clean shutdown)
    assert code in (0, -signal.SIGTERM) and took < 8, (code, took, api.text()[-2000:])
    assert "Application shutdown complete" in api.text()
    for sock in socks:  # each stream was ended (EOF), not left hanging
        sock.settimeout(5)
        with contextlib.suppress(ConnectionResetError):
            while sock.recv(65536):
                pass
        sock.close()


def check_slow_clients(base: str) -> None:
    """A client that connects and sends nothing, one that trickles its headers (slowloris), and one whose
    body stops arriving are all dropped after the server's timeouts (1 s here)."""
    host, port = base.removeprefix("http://").split(":")

    def closed_within(sock: socket.socket, seconds: float, trickle: bytes = b"") -> float | None:
        """Seconds until the server closed the connection (None if it did not within ``seconds``); sends one
        byte of ``trickle`` every 0.2 s meanwhile (a slowloris)."""
        sock.setblocking(False)
        t0 = time.monotonic()
        sent = 0
        while time.monotonic() - t0 < seconds:
            try:
                if not sock.recv(4096):
                    return time.monotonic() - t0
            except BlockingIOError:
                pass
            except ConnectionResetError:
                return time.monotonic() - t0
            if sent < len(trickle):
                with contextlib.suppress(BrokenPipeError, ConnectionResetError, BlockingIOError):
                    sock.send(trickle[sent:sent + 1])
                    sent += 1
            time.sleep(0.2)
        return None

    silent = socket.create_connection((host, int(port)))
    trickling = socket.create_connection((host, int(port)))
    took = closed_within(silent, 5)
    assert took is not None and took < 3, took
    took = closed_within(trickling, 5, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100)
    assert took is not None and took < 3, took
    # A body that stops arriving: 408 after the body timeout.
    slow_body = socket.create_connection((host, int(port)), timeout=10)
    slow_body.sendall(b"POST /api/v1/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + ADMIN_TOKEN.encode()
                      + b"\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"config\":")
    t0 = time.monotonic()
    answer = slow_body.recv(4096)
    assert status_of(answer) == 408 and time.monotonic() - t0 < 4, answer
    slow_body.close()
    # Meanwhile, and after, ordinary requests are served.
    assert httpx.get(f"{base}/api/v1/runs", headers=AS_ADMIN, timeout=10).status_code == 200
