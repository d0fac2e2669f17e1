"""The health port: ``/healthz`` answered by a thread of the API process, off its event loop.

On the API's own port, a probe is answered in the protocol as soon as the event loop reads it
(``app.serving``) — but the loop reads a socket only between its steps, and a step of a saturated API runs
every request that became ready (on this project's 2-core test machine with 50 busy clients, 150–300 ms).  A
load balancer that times out after 100 ms would then take a busy-but-healthy process out of rotation.

With ``GXNOR_HEALTH_PORT`` set (``gxnor api --health-port N``), each API process also listens on that port
(``SO_REUSEPORT``: every process of ``--workers N`` binds it, and the kernel spreads probes among them) and
answers ``GET``/``HEAD /healthz`` from a thread of its own: within the interpreter's thread switch interval
(5 ms), whatever the loop is doing.  The answer is the one the loop keeps fresh (``HealthState``: the same
JSON and headers as on the API port, database and broker reachability); when the loop has not refreshed it
for ``STALE_S`` (1 s) — the loop is stuck — the answer is **503** ``{"status": "unresponsive"}``, so a wedged
process still leaves rotation.  Every other path is 404; a connection silent for ``HEALTH_TIMEOUT_S`` is
closed, and at most ``HEALTH_CONNECTIONS`` connections are served at once (more are closed at once).  The
port is for probes on a private network, not for the public.
"""

from __future__ import annotations

import contextlib
import http.server
import logging
import socket
import threading

from app.api.routes import health

log = logging.getLogger("gxnor.health")

HEALTH_TIMEOUT_S = 10.0
HEALTH_CONNECTIONS = 16


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a load balancer's probe uses it
    timeout = HEALTH_TIMEOUT_S
    server_version = "gxnor-health"
    sys_version = ""

    def do_GET(self) -> None:  # noqa: N802 (http.server's names)
        self._answer(head=False)

    def do_HEAD(self) -> None:  # noqa: N802
        self._answer(head=True)

    def _answer(self, head: bool) -> None:
        state = health.CURRENT
        if self.path.split("?", 1)[0] != "/healthz":
            response = health.json_response(b"404 Not Found", {"detail": "Not Found: this port answers /healthz only"})
        elif (response := state.response(head) if state is not None else None) is None:
            response = health.json_response(b"503 Service Unavailable", {
                "status": "unresponsive", "detail": "this API process has no fresh health answer: its event loop "
                f"has not refreshed it for over {health.STALE_S:g} s (or a request has just found the database "
                "unreachable and the next check is due)"})
        if head:
            response = response.partition(b"\r\n\r\n")[0] + b"\r\n\r\n"
        self.wfile.write(response)

    def log_message(self, format, *args) -> None:  # noqa: A002 - probes are not logged (a probe every second)
        pass


class HealthServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    allow_reuse_port = True  # every API process of --workers N binds the port
    request_queue_size = 64

    def __init__(self, host: str, port: int):
        if ":" in host:  # an IPv6 address ("::" as the API's --host)
            self.address_family = socket.AF_INET6
        super().__init__((host, port), _Handler)
        self._slots = threading.BoundedSemaphore(HEALTH_CONNECTIONS)

    def process_request(self, request, client_address) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)  # a flood of connections: closed, never a thread each
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


@contextlib.contextmanager
def serving(host: str, port: int | None):
    """Answer the health port for the ``with`` block (nothing when ``port`` is None)."""
    if port is None:
        yield None
        return
    server = HealthServer(host, port)  # an unusable port fails the API's start: a configured probe must answer
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.5}, name="gxnor-health",
                              daemon=True)
    thread.start()
    log.info("health port: http://%s:%d/healthz", host, server.server_address[1])
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
