"""``/healthz`` as a load balancer asks it: on raw keep-alive connections, between ordinary requests, from
names the server does not answer to.  The protocol answers a plain probe itself (app.serving) from the
health state the app keeps fresh (app.api.routes.health); everything else must still reach the app."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time

import pytest
from fastapi.testclient import TestClient

from app.api.routes.health import STALE_S, HealthState
from app.health_port import HEALTH_CONNECTIONS
from app.main import create_app
from app.settings import Settings

from .conftest import ADMIN_TOKEN, Proc, free_port, service_env, wait_healthy


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """One API for the module, with a health port: each test only reads, on connections of its own (one start,
    not five).  Yields (the API's port, the health port)."""
    tmp_path = tmp_path_factory.mktemp("health")
    port, health_port = free_port(), free_port()
    proc = Proc(["api", "--port", str(port), "--health-port", str(health_port)],
                service_env(tmp_path, GXNOR_ALLOWED_HOSTS='["127.0.0.1", "localhost"]'), tmp_path / "api.log")
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc)
        time.sleep(0.5)  # the health state's first refresh
        yield port, health_port
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def api(served):
    return served[0]


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


# --- the health port (gxnor api --health-port): /healthz from a thread of the API process, off its event loop

def test_the_health_port_gives_the_api_ports_answer_on_keep_alive_connections(served):
    port, health_port = served
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        _, _, on_the_api_port = exchange(sock, probe())
    with socket.create_connection(("127.0.0.1", health_port), timeout=10) as sock:
        for _ in range(3):
            status, headers, body = exchange(sock, probe())
            assert status == 200 and body == on_the_api_port
            assert json.loads(body) == {"status": "ok", "database": True, "broker": True}
            assert headers["cache-control"] == "no-store" and headers["x-content-type-options"] == "nosniff"
        status, headers, body = exchange(sock, probe("HEAD"))
        assert status == 200 and body == b"" and int(headers["content-length"]) == len(on_the_api_port)
        status, _, body = exchange(sock, b"GET /api/v1/runs HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert status == 404 and b"/healthz only" in body  # nothing else is served on this port
        status, _, _ = exchange(sock, probe(extra="Connection: close\r\n"))
        assert status == 200 and sock.recv(1) == b""


def _busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:  # Python work holding the GIL, as a saturated event loop does
        pass


def test_the_health_port_answers_while_the_event_loop_is_busy_and_503_once_it_is_stuck(tmp_path):
    """The point of the port: a probe is answered while the loop runs other work (on the API's port it
    waits for the loop), yet a loop stuck for over STALE_S makes the process say so (503), not "ok"."""
    settings = Settings(data_dir=tmp_path / "data", health_port=0, admin_token="gx_health-port-test")
    with TestClient(create_app(settings)) as client:
        health_port = client.app.state.health_server.server_address[1]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # until the state's first refresh (503 before it)
            with socket.create_connection(("127.0.0.1", health_port), timeout=10) as sock:
                if exchange(sock, probe())[0] == 200:
                    break
            time.sleep(0.1)

        async def hold_the_loop(seconds: float) -> None:
            _busy(seconds)

        with socket.create_connection(("127.0.0.1", health_port), timeout=10) as sock:
            client.portal.start_task_soon(hold_the_loop, 0.8)  # shorter than STALE_S: busy, not stuck
            time.sleep(0.2)
            t0 = time.perf_counter()
            status, _, body = exchange(sock, probe())
            took = time.perf_counter() - t0
            assert status == 200 and json.loads(body)["status"] == "ok"
            assert took < 0.4, f"the probe waited {took:.2f} s: for the event loop"
            time.sleep(1.0)  # the loop free again, and its health refreshed

            client.portal.start_task_soon(hold_the_loop, STALE_S + 1.5)  # stuck
            time.sleep(STALE_S + 0.6)
            status, _, body = exchange(sock, probe())
            assert status == 503 and json.loads(body)["status"] == "unresponsive"
            deadline = time.monotonic() + 10  # the loop runs again (in 0.9 s): its next refresh makes it 200
            while (status := exchange(sock, probe())[0]) == 503 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert status == 200


def test_the_health_port_serves_a_bounded_number_of_connections(served):
    """Idle connections hold the health port's threads: beyond HEALTH_CONNECTIONS a new one is closed at
    once (never a thread each), and a slot given back serves the next probe."""
    _, health_port = served
    idle = [socket.create_connection(("127.0.0.1", health_port), timeout=10) for _ in range(HEALTH_CONNECTIONS)]
    try:
        time.sleep(0.3)  # each accepted and waiting for its request in a thread of its own
        with socket.create_connection(("127.0.0.1", health_port), timeout=5) as extra:
            assert extra.recv(1) == b""  # closed at once (a served one would wait for its request: a timeout)
        status, _, _ = exchange(idle[0], probe())  # the ones held are still served
        assert status == 200
    finally:
        for sock in idle:
            sock.close()
    deadline = time.monotonic() + 5  # the threads notice their connections closed, and give their slots back
    while time.monotonic() < deadline:
        with socket.create_connection(("127.0.0.1", health_port), timeout=5) as sock, \
                contextlib.suppress(OSError):  # (closed at once, the probe unread: a reset)
            sock.sendall(probe())
            if sock.recv(12) == b"HTTP/1.1 200":
                return
        time.sleep(0.1)
    raise AssertionError("no probe answered after the idle connections closed")
