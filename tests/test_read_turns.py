"""app.turns.ReadTurns: at most ``limit`` API reads at once, the rest in arrival order; writes, non-API paths
and a started response (a stream) hold no turn; a waiting request that goes away gives up its place."""

from __future__ import annotations

import asyncio

import pytest

from app.turns import ReadTurns


class Recorder:
    """An ASGI app whose requests each wait for the test to release them, recording what ran when."""

    def __init__(self, stream_paths=()):
        self.running: set[str] = set()
        self.most = 0
        self.started: list[str] = []
        self.release: dict[str, asyncio.Event] = {}
        self.stream_paths = set(stream_paths)

    def gate(self, name: str) -> asyncio.Event:
        return self.release.setdefault(name, asyncio.Event())

    async def __call__(self, scope, receive, send):
        name = f"{scope['method']} {scope['path']}"
        self.started.append(name)
        self.running.add(name)
        self.most = max(self.most, len(self.running))
        try:
            if scope["path"] in self.stream_paths:  # a stream: starts its response, then goes on for a while
                await send({"type": "http.response.start", "status": 200, "headers": []})
                await self.gate(name).wait()
                await send({"type": "http.response.body", "body": b"end"})
            else:
                await self.gate(name).wait()
                await send({"type": "http.response.start", "status": 200, "headers": []})
                await send({"type": "http.response.body", "body": b"ok"})
        finally:
            self.running.discard(name)


def request(app, method: str, path: str):
    sent: list = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "headers": []}
    return asyncio.ensure_future(app(scope, receive, send)), sent


async def settle():
    for _ in range(5):
        await asyncio.sleep(0)


def test_reads_take_turns_in_arrival_order():
    async def go():
        inner = Recorder()
        app = ReadTurns(inner, limit=2)
        tasks = [request(app, "GET", f"/api/v1/r{i}")[0] for i in range(5)]
        await settle()
        assert inner.started == ["GET /api/v1/r0", "GET /api/v1/r1"]  # two turns; three wait
        inner.gate("GET /api/v1/r1").set()
        await settle()
        assert inner.started[-1] == "GET /api/v1/r2"
        inner.gate("GET /api/v1/r0").set()
        await settle()
        assert inner.started[-1] == "GET /api/v1/r3"
        for i in range(5):
            inner.gate(f"GET /api/v1/r{i}").set()
        await asyncio.gather(*tasks)
        assert inner.most == 2
        assert inner.started == [f"GET /api/v1/r{i}" for i in range(5)]
        assert app.active == 0 and not app.waiting

    asyncio.run(go())


@pytest.mark.parametrize(("method", "path"), [("POST", "/api/v1/runs"), ("GET", "/static/app.css"),
                                              ("GET", "/healthz")])
def test_writes_and_non_api_paths_take_no_turn(method, path):
    async def go():
        inner = Recorder()
        app = ReadTurns(inner, limit=1)
        held = request(app, "GET", "/api/v1/held")[0]
        await settle()
        other = request(app, method, path)[0]
        await settle()
        assert f"{method} {path}" in inner.running  # not behind the read that holds the only turn
        inner.gate(f"{method} {path}").set()
        inner.gate("GET /api/v1/held").set()
        await asyncio.gather(held, other)

    asyncio.run(go())


def test_a_started_response_gives_its_turn_back():
    async def go():
        inner = Recorder(stream_paths={"/api/v1/runs/1/events"})
        app = ReadTurns(inner, limit=1)
        stream, sent = request(app, "GET", "/api/v1/runs/1/events")
        await settle()
        assert sent and sent[0]["type"] == "http.response.start"
        read = request(app, "GET", "/api/v1/runs")[0]
        await settle()
        assert "GET /api/v1/runs" in inner.running  # while the stream is still open
        inner.gate("GET /api/v1/runs").set()
        await read
        inner.gate("GET /api/v1/runs/1/events").set()
        await stream
        assert app.active == 0

    asyncio.run(go())


def test_a_waiting_request_that_goes_away_gives_up_its_place():
    async def go():
        inner = Recorder()
        app = ReadTurns(inner, limit=1)
        first = request(app, "GET", "/api/v1/a")[0]
        await settle()
        gone = request(app, "GET", "/api/v1/gone")[0]
        last = request(app, "GET", "/api/v1/b")[0]
        await settle()
        gone.cancel()
        await settle()
        inner.gate("GET /api/v1/a").set()
        await settle()
        assert inner.started == ["GET /api/v1/a", "GET /api/v1/b"]
        inner.gate("GET /api/v1/b").set()
        await asyncio.gather(first, last)
        assert gone.cancelled()
        assert app.active == 0 and not app.waiting

    asyncio.run(go())


def test_an_error_in_the_handler_gives_the_turn_back():
    async def broken(scope, receive, send):
        raise RuntimeError("boom")

    async def go():
        app = ReadTurns(broken, limit=1)
        for _ in range(3):
            task = request(app, "GET", "/api/v1/x")[0]
            with pytest.raises(RuntimeError):
                await task
        assert app.active == 0

    asyncio.run(go())
