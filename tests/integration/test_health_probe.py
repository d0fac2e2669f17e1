"""``/healthz`` as a load balancer asks it: on raw keep-alive connections, between ordinary requests, from
names the server does not answer to.  The protocol answers a plain probe itself (app.serving) from the
health state the app keeps fresh (app.api.routes.health); everything else must still reach the app."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest

from app.api.routes.health import STALE_S, HealthState
from app.settings import Settings

from .conftest import ADMIN_TOKEN, Proc, free_port, service_env, wait_healthy


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """One API for the module: each test only reads, on connections of its own (one start, not four)."""
    tmp_path = tmp_path_factory.mktemp("health")
    port = free_port()
    proc = Proc(["api", "--port", str(port)],
                service_env(tmp_path, GXNOR_ALLOWED_HOSTS='["127.0.0.1", "localhost"]'), tmp_path / "api.log")
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc)
        time.sleep(0.5)  # the health state's first refresh
        yield port
    finally:
        proc.stop()


def exchange(sock: socket.socket, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send one request and read one whole response (by its Content-Length)."""
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a response to {request[:40]!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    size = 0 if request.startswith(b"HEAD") else int(headers.get("content-length", 0))
    while len(body) < size:
        chunk = sock.recv(65536)
        assert chunk
        body += chunk
    assert len(body) == size, "more bytes than one response"
    return int(lines[0].split()[1]), headers, body


def probe(method: str = "GET", host: str = "127.0.0.1", extra: str = "") -> bytes:
    return f"{method} /healthz HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode()


def test_probes_and_requests_share_a_keep_alive_connection(api):
    with socket.create_connection(("127.0.0.1", api), timeout=10) as sock:
        for _ in range(3):
            status, headers, body = exchange(sock, probe())
            assert status == 200 and json.loads(body) == {"status": "ok", "database": True, "broker": True}
            assert headers["content-type"] == "application/json" and headers["cache-control"] == "no-store"
            assert "frame-ancestors 'none'" in headers["content-security-policy"]
            assert headers["x-content-type-options"] == "nosniff"
            # an ordinary request on the same connection still reaches the app, and the app's answer is whole
            status, _, body = exchange(sock, f"GET /api/v1/runs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                             f"Authorization: Bearer {ADMIN_TOKEN}\r\n\r\n".encode())
            assert status == 200 and json.loads(body)["total"] == 0
        status, headers, body = exchange(sock, probe("HEAD"))
        assert status == 200 and body == b"" and int(headers["content-length"]) > 0
        # the app's own route gives the same answer (a probe with a query string is not the protocol's)
        status, _, body = exchange(sock, b"GET /healthz?full=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert status == 200 and json.loads(body) == {"status": "ok", "database": True, "broker": True}


def test_a_probe_asking_to_close_is_answered_then_closed(api):
    with socket.create_connection(("127.0.0.1", api), timeout=10) as sock:
        status, headers, _ = exchange(sock, probe(extra="Connection: close\r\n"))
        assert status == 200 and headers["connection"] == "close"
        assert sock.recv(1) == b""  # closed by the server


def test_a_foreign_host_name_is_refused_by_the_app_as_before(api):
    with socket.create_connection(("127.0.0.1", api), timeout=10) as sock:
        status, _, body = exchange(sock, probe(host="attacker.example"))
        assert status == 400 and b"Host" in body


def test_a_probe_that_is_not_plain_goes_to_the_app(api):
    with socket.create_connection(("127.0.0.1", api), timeout=10) as sock:
        # with a body (Content-Length) the app answers, and reads the body, so the next request still parses
        status, _, _ = exchange(sock, probe(extra="Content-Length: 3\r\n") + b"abc")
        assert status == 200
        status, _, body = exchange(sock, probe())
        assert status == 200 and json.loads(body)["database"] is True
        # a probe whose head arrives in two parts: the parser gets both, the answer is one response
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHo")
        time.sleep(0.2)
        status, _, body = exchange(sock, b"st: 127.0.0.1\r\n\r\n")
        assert status == 200 and json.loads(body)["status"] == "ok"
        # two pipelined probes in one packet: both answered, in order
        sock.sendall(probe() + probe("HEAD"))
        data = b""
        deadline = time.monotonic() + 5
        while data.count(b"HTTP/1.1 200") < 2 and time.monotonic() < deadline:
            data += sock.recv(65536)
        assert data.count(b"HTTP/1.1 200") == 2


def test_the_state_says_degraded_when_the_database_is_unreachable_and_goes_stale_when_not_refreshed():
    async def scenario():
        broker = type("Reachable", (), {"get": staticmethod(_true)})()  # (the broker is not what is tested here)
        state = HealthState(Settings(database_url="postgresql+psycopg://nobody@127.0.0.1:1/none"), broker)
        task = asyncio.get_running_loop().create_task(state.run())
        try:
            for _ in range(100):
                if state.response(head=False) is not None:
                    break
                await asyncio.sleep(0.05)
        finally:
            task.cancel()
        body = state.response(head=False).partition(b"\r\n\r\n")[2]
        assert json.loads(body) == {"status": "degraded", "database": False, "broker": True}
        state.checked -= STALE_S + 0.1  # no refresh for longer than STALE_S: the protocol must not answer
        assert state.response(head=False) is None

    asyncio.run(scenario())


async def _true() -> bool:
    return True
