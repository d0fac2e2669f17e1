"""API reads take turns: at most ``read_concurrency`` of them run at once in a process, the rest wait in
arrival order.

Why.  The read routes read the database inline, on the event loop (docs/DESIGN.md, "Reads on the event loop"):
a request's handler runs from its first byte to its response in one step, ~1–2 ms.  Under a closed-loop load
of 50 dashboard clients, each of the loop's iterations then runs ~50 such steps back to back (~50–100 ms),
and everything else the loop does — a health probe answered by the protocol (app.serving), an epoch event
sent to a live page, a static file — waits for the iteration to end.  With turns, an iteration runs at most
``read_concurrency`` handlers; the others wait on a future, which costs nothing until their turn.
Throughput does not change (the handlers ran one after another anyway); the wait moves from the loop to a
FIFO queue, where it delays only the reads behind it.

What takes a turn: ``GET``/``HEAD`` requests under ``/api/`` — the inline reads.  Writes run in the thread
pool and may wait on a database lock for seconds, so they never take one.  A turn ends when the response
starts: a stream or a download (``/events``, a checkpoint, an export) holds it only until its first bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque


class ReadTurns:
    """Pure ASGI middleware: FIFO turns for the API's reads (see the module docstring)."""

    def __init__(self, app, limit: int):
        self.app = app
        self.limit = limit
        self.active = 0
        self.waiting: deque[asyncio.Future] = deque()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD") or not scope["path"].startswith("/api/"):
            return await self.app(scope, receive, send)
        await self._take()
        ended = False

        def end() -> None:
            nonlocal ended
            if not ended:
                ended = True
                self._give_back()

        async def send_and_end(message):
            if message["type"] == "http.response.start":
                end()
            await send(message)

        try:
            await self.app(scope, receive, send_and_end)
        finally:
            end()

    async def _take(self) -> None:
        if self.active < self.limit and not self.waiting:
            self.active += 1
            return
        turn = asyncio.get_running_loop().create_future()
        self.waiting.append(turn)
        try:
            await turn  # _give_back passed its turn on to this one (active unchanged)
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self._give_back()  # the turn came, but the request is gone: pass it on
            else:
                with contextlib.suppress(ValueError):  # (already skipped by a _give_back)
                    self.waiting.remove(turn)
            raise

    def _give_back(self) -> None:
        while self.waiting:
            turn = self.waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        self.active -= 1
