"""A PostgreSQL outage: the API answers 503 (not 500, not a hang) and a worker retries its epoch.

The outage is real at the network level: API and worker reach PostgreSQL through a TCP
relay that the test closes (every connection dropped, new ones refused) and reopens.
"""

import contextlib
import socket
import threading
import time
import uuid

import pytest

from tests.integration.conftest import free_port, start_cluster, wait_for


class Relay:
    """127.0.0.1:port → PostgreSQL, with an off switch."""

    def __init__(self, target=("127.0.0.1", 5432)):
        self.target, self.port = target, free_port()
        self.conns: list[socket.socket] = []
        self.server: socket.socket | None = None
        self.lock = threading.Lock()

    def up(self) -> None:
        self.server = socket.create_server(("127.0.0.1", self.port), reuse_port=True)
        threading.Thread(target=self._accept, args=(self.server,), daemon=True).start()

    def down(self) -> None:
        with contextlib.suppress(OSError):
            self.server.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
        self.server.close()
        with self.lock:
            for c in self.conns:
                with contextlib.suppress(OSError):
                    c.shutdown(socket.SHUT_RDWR)
                c.close()
            self.conns.clear()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


@pytest.fixture()
def relay():
    r = Relay()
    r.up()
    yield r
    with contextlib.suppress(OSError):
        r.down()


def test_postgres_outage_gives_503_and_the_worker_finishes_the_run_without_partial_epochs(
        tmp_path, pg_url, redis_url, procs, relay):
    url = pg_url.replace("127.0.0.1:5432", f"127.0.0.1:{relay.port}")
    client, add_worker = start_cluster(tmp_path, procs, GXNOR_DATABASE_URL=url, GXNOR_BROKER_URL=redis_url,
                                       GXNOR_QUEUE=f"gxnor-outage-{uuid.uuid4().hex[:8]}")
    add_worker("w1")
    # Digits epochs (a tenth of mnist5k's): enough left when the database goes away that even a fast machine
    # is still training when it comes back 4 s later.
    config = {"name": "outage", "model": {"hidden": [256, 256]}, "train": {"epochs": 100, "batch_size": 50}}
    run_id = client.post("/api/v1/runs", json={"config": config}).json()["id"]
    wait_for(lambda: client.get(f"/api/v1/runs/{run_id}").json()["progress"]["epochs_done"] >= 2,
             what="two epochs")

    relay.down()
    t0 = time.time()
    resp = client.get("/api/v1/runs")
    assert resp.status_code == 503 and time.time() - t0 < 10
    assert client.get(f"/api/v1/runs/{run_id}").status_code == 503
    assert client.get("/healthz").json()["database"] is False
    time.sleep(4)  # the worker keeps training and cannot record its epochs meanwhile
    relay.up()

    run = wait_for(lambda: (r := client.get(f"/api/v1/runs/{run_id}")).status_code == 200
                   and r.json()["status"] in ("succeeded", "failed") and r.json(), timeout=240,
                   what="the run to finish")
    assert run["status"] == "succeeded", run["error"]
    assert run["attempt"] == 1  # the same worker carried on; nothing was handed over
    epochs = [m["epoch"] for m in client.get(f"/api/v1/runs/{run_id}/metrics").json()["epochs"]]
    assert epochs == list(range(1, 101))
    layers = client.get(f"/api/v1/runs/{run_id}/layers").json()["records"]
    assert sorted((r["epoch"], r["layer"]) for r in layers) == [(e, n) for e in range(1, 101)
                                                               for n in ("fc1", "fc2", "fc3")]

    # Connections dropped while the API is idle (a server restart overnight): the read pool pings a connection
    # that sat idle before using it, so the first request afterwards is answered, not a 503.
    relay.down()
    relay.up()
    time.sleep(1.5)
    for path in (f"/api/v1/runs/{run_id}", f"/api/v1/runs/{run_id}/metrics", "/api/v1/runs"):
        assert client.get(path).status_code == 200, path
    client.close()
