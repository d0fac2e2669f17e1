"""Live run events (Server-Sent Events) that hold no database connection while they wait.

Each API process has one **hub**, and in it one **feed** per watched run, shared by every viewer of that run
in the process.  One poller serves all feeds: every ``poll_s`` it reads the watched runs' rows in one
statement and, for the runs that recorded new epochs, those epochs in a second one — short indexed reads on
the API's own read connections, inline on the event loop like the read routes (a worker thread would cost
more: under load, each blocking call a thread makes waits for the event loop to release the GIL), and the
connection goes straight back.  New epochs, progress changes and the final status go to each viewer's
bounded queue.  1 000 viewers of 50 runs cost two short reads a second, not 1 000.

A new viewer **joins** the feed (a new feed starts from the newest epoch stored), then reads its own
catch-up (the epochs after the one it already has: ``after`` or ``Last-Event-ID``) — both in the same step
of the event loop, so nothing can be recorded between them unseen — and skips any feed event it already had
from the catch-up: nothing is missed and nothing is sent twice.

**Limits**: ``max_streams_per_user`` concurrent streams per user and ``max_streams`` per process; beyond
either the request is refused with 429 before the stream starts (``Hub.acquire``).  A viewer that stops
reading fills its queue (``QUEUE_EVENTS``) and is dropped (EventSource reconnects from its last event id).
Each viewer re-checks its token every ``check_s`` (revoked, expired, left the team: the stream ends).

**Shutdown**: ``Hub.close_all`` ends every stream (the app calls it on SIGTERM/SIGINT, before uvicorn
waits for open responses, and at lifespan shutdown), so a server with open pages stops at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from fastapi import HTTPException
from sqlalchemy import Text, and_, bindparam, cast, func, or_, select
from starlette.responses import StreamingResponse

from app.db import get_read_engine
from app.models import FINISHED, EpochMetric, Run

log = logging.getLogger("gxnor.streams")

QUEUE_EVENTS = 1_000  # a viewer this far behind is dropped (it reconnects from its last event id)
KEEPALIVE_S = 15.0  # a comment line this often: proxies keep the connection, a vanished client is noticed
_END = object()  # the stream's last item
_CHECK = ("check", None, b"")
_PING = ("ping", None, b": keep-alive\n\n")

_RUNS = select(Run.id, Run.status, Run.progress_epoch, Run.progress_fraction, Run.epochs_done, Run.total_epochs,
               Run.error).where(Run.id.in_(bindparam("ids", expanding=True)))
_EPOCHS_AFTER = (select(EpochMetric.epoch, cast(EpochMetric.metrics, Text))
                 .where(EpochMetric.run_id == bindparam("run"), EpochMetric.epoch > bindparam("after"))
                 .order_by(EpochMetric.epoch))
_NEWEST = select(func.max(EpochMetric.epoch)).where(EpochMetric.run_id == bindparam("run"))


def _sse(event: str, data, event_id: int | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def _epoch_event(epoch: int, raw: str) -> bytes:
    return f"id: {epoch}\nevent: epoch\ndata: {raw}\n\n".encode()  # the stored JSON as it is (one line)


@dataclass(eq=False)
class Viewer:
    queue: asyncio.Queue


@dataclass(eq=False)
class Feed:
    """One run's viewers and what the poller last saw of it."""

    run_id: int
    viewers: set[Viewer] = field(default_factory=set)
    last_epoch: int = 0
    last_progress_event: tuple | None = None  # ("progress", state, bytes): also what a viewer joining now gets

    def publish(self, item) -> None:
        for viewer in list(self.viewers):
            try:
                viewer.queue.put_nowait(item)
            except asyncio.QueueFull:  # not reading: drop it (its stream ends; EventSource reconnects)
                self.viewers.discard(viewer)
                with contextlib.suppress(asyncio.QueueEmpty):
                    viewer.queue.get_nowait()
                viewer.queue.put_nowait(_END)


class StreamLimit(HTTPException):
    def __init__(self, message: str):
        super().__init__(429, message, headers={"Retry-After": "10"})


class Hub:
    """Every live stream of this process: the feeds, their poller, and the per-user and per-process counts."""

    def __init__(self, db_url: str, poll_s: float, max_streams: int, max_per_user: int, check_s: float = 2.0):
        self.db_url, self.poll_s, self.check_s = db_url, poll_s, check_s
        self.max_streams, self.max_per_user = max_streams, max_per_user
        self.feeds: dict[int, Feed] = {}
        self.per_user: Counter[int] = Counter()
        self.open = 0
        self.closing = False
        self._viewers: set[Viewer] = set()
        self._poller: asyncio.Task | None = None

    # -- limits
    def acquire(self, user_id: int) -> None:
        """Count one more stream for the user (429 beyond a limit); ``release`` gives it back."""
        if self.closing:
            raise HTTPException(503, "the server is shutting down", headers={"Retry-After": "5"})
        if self.open >= self.max_streams:
            raise StreamLimit(f"this server process already serves {self.open} live streams (the limit); "
                              "try again shortly")
        if self.per_user[user_id] >= self.max_per_user:
            raise StreamLimit(f"you already have {self.per_user[user_id]} live streams open (the limit per "
                              "user); close some run pages")
        self.open += 1
        self.per_user[user_id] += 1

    def release(self, user_id: int) -> None:
        self.open -= 1
        self.per_user[user_id] -= 1
        if self.per_user[user_id] <= 0:
            del self.per_user[user_id]

    # -- reads (inline: short indexed reads on the read engine, which nothing else holds)
    def _connect(self):
        return get_read_engine(self.db_url).connect()

    def _join(self, run_id: int, viewer: Viewer, after: int) -> tuple[Feed, list[tuple[int, str]]]:
        """Add the viewer to the run's feed (made if needed) and read its catch-up, with no await between."""
        with self._connect() as conn:
            feed = self.feeds.get(run_id)
            if feed is None:
                feed = Feed(run_id, last_epoch=conn.execute(_NEWEST, {"run": run_id}).scalar() or 0)
                self.feeds[run_id] = feed
            feed.viewers.add(viewer)
            catch_up = [tuple(r) for r in conn.execute(_EPOCHS_AFTER, {"run": run_id, "after": after})]
        if self._poller is None or self._poller.done():
            self._poller = asyncio.get_running_loop().create_task(self._poll())
        return feed, catch_up

    def _leave(self, feed: Feed, viewer: Viewer) -> None:
        feed.viewers.discard(viewer)
        if not feed.viewers and self.feeds.get(feed.run_id) is feed:
            del self.feeds[feed.run_id]

    async def _poll(self) -> None:
        now = time.monotonic()
        next_check, next_ping = now + self.check_s, now + KEEPALIVE_S
        while self.feeds:
            try:
                feeds, rows, new = self._read()
            except Exception as err:  # noqa: BLE001 - a database outage: keep the viewers, try again
                log.warning("live events: read failed (%s); retrying", err)
                await asyncio.sleep(max(self.poll_s, 1.0))
            else:
                for rid, feed in feeds.items():
                    self._publish(feed, rows.get(rid), new.get(rid, ()))
            now = time.monotonic()
            if now >= next_check:  # every viewer re-checks its token
                next_check = now + self.check_s
                self._broadcast(_CHECK)
            if now >= next_ping:  # a comment line: proxies keep the connection, a vanished client is noticed
                next_ping = now + KEEPALIVE_S
                self._broadcast(_PING)
            await asyncio.sleep(self.poll_s)

    def _broadcast(self, item) -> None:
        for feed in list(self.feeds.values()):
            feed.publish(item)

    def _read(self) -> tuple[dict[int, Feed], dict, dict[int, list[tuple[int, str]]]]:
        """One poll of every watched run: their rows, then the new epochs of those that recorded some."""
        feeds = dict(self.feeds)
        with self._connect() as conn:
            rows = {r[0]: r for r in conn.execute(_RUNS, {"ids": list(feeds)})}
            grown = [f for rid, f in feeds.items() if rid in rows and rows[rid][4] > f.last_epoch]
            new: dict[int, list[tuple[int, str]]] = {}
            if grown:
                stmt = (select(EpochMetric.run_id, EpochMetric.epoch, cast(EpochMetric.metrics, Text))
                        .where(or_(*(and_(EpochMetric.run_id == f.run_id, EpochMetric.epoch > f.last_epoch)
                                     for f in grown)))
                        .order_by(EpochMetric.run_id, EpochMetric.epoch))
                for rid, epoch, raw in conn.execute(stmt):
                    new.setdefault(rid, []).append((epoch, raw))
        return feeds, rows, new

    def _publish(self, feed: Feed, row, epochs) -> None:
        for epoch, raw in epochs:
            if epoch > feed.last_epoch:
                feed.last_epoch = epoch
                feed.publish(("epoch", epoch, _epoch_event(epoch, raw)))
        if row is None:
            final = _sse("status", {"status": "deleted"})
        else:
            _, status, epoch, fraction, done, total, error = row
            progress = {"status": status, "epoch": epoch, "fraction": fraction, "epochs_done": done,
                        "total_epochs": total}
            if feed.last_progress_event is None or progress != feed.last_progress_event[1]:
                feed.last_progress_event = ("progress", progress, _sse("progress", progress))
                feed.publish(feed.last_progress_event)
            final = _sse("status", {"status": status, "error": error}) if status in FINISHED else None
        if final is not None:
            feed.publish(("final", None, final))
            if self.feeds.get(feed.run_id) is feed:
                del self.feeds[feed.run_id]  # its viewers end; a later viewer starts a new feed

    # -- one viewer
    def viewer(self) -> Viewer:
        """A new viewer's queue, known to ``close_all`` until ``forget``."""
        viewer = Viewer(asyncio.Queue(QUEUE_EVENTS))
        self._viewers.add(viewer)
        return viewer

    def forget(self, viewer: Viewer) -> None:
        self._viewers.discard(viewer)

    @staticmethod
    def end(viewer: Viewer) -> None:
        """End the viewer's stream at its next step (its client left, or the server is shutting down)."""
        with contextlib.suppress(asyncio.QueueEmpty):
            viewer.queue.get_nowait()  # room for the end, even in a full queue
        with contextlib.suppress(asyncio.QueueFull):
            viewer.queue.put_nowait(_END)

    async def stream(self, viewer: Viewer, run_id: int, after: int,
                     allowed: Callable[[], Awaitable[bool]]) -> AsyncIterator[bytes]:
        """One viewer's events: catch-up first, then the feed's, until the run ends, the token stops being
        good for it (checked every ``check_s``), the viewer falls behind, its client leaves, or the server
        shuts down."""
        feed = None
        try:
            try:
                feed, catch_up = self._join(run_id, viewer, after)
            except Exception as err:  # noqa: BLE001 - the database went away just now: end; the client retries
                log.warning("run %s events: could not start (%s)", run_id, err)
                return
            seen = after
            for epoch, raw in catch_up:
                seen = epoch
                yield _epoch_event(epoch, raw)
            last_progress = None
            if feed.last_progress_event is not None:  # where the run stands now, for a viewer joining a feed
                last_progress = feed.last_progress_event[1]
                yield feed.last_progress_event[2]
            while True:
                # No timer per viewer: the poller's own items (CHECK, PING) wake every viewer on schedule.
                item = await viewer.queue.get()
                if item is _END:
                    return
                kind, value, payload = item
                if kind == "check":
                    if not await allowed():  # token revoked, expired, or its user left the run's team
                        yield _sse("status", {"status": "unauthorized"})
                        return
                    continue
                if kind == "epoch":
                    if value <= seen:
                        continue
                    seen = value
                elif kind == "progress":
                    if value == last_progress:
                        continue
                    last_progress = value
                yield payload
                if kind == "final":
                    return
        finally:
            if feed is not None:
                self._leave(feed, viewer)

    def close_all(self) -> None:
        """End every open stream (server shutdown); new ones are refused with 503."""
        self.closing = True
        for viewer in list(self._viewers):
            self.end(viewer)


class EventStream(StreamingResponse):
    """The SSE response.  Starlette's ``StreamingResponse`` runs each stream in an anyio task group that
    listens for the disconnect and cancels the body when it comes; when a thousand clients leave at once,
    those cancellations stall the event loop for seconds.  Here a plain task waits for the disconnect and
    *ends* the viewer (``Hub.end``): its stream returns at its next step, nothing is cancelled.  The stream
    slot is given back however the response ends — finished, client gone, server shutting down — even if
    its body never started."""

    def __init__(self, hub: Hub, events: Callable[[Viewer], AsyncIterator[bytes]], release: Callable[[], None],
                 headers: dict[str, str]):
        super().__init__((), media_type="text/event-stream", headers=headers)
        self._hub, self._events, self._release = hub, events, release

    async def __call__(self, scope, receive, send) -> None:
        viewer = self._hub.viewer()
        body = self._events(viewer)
        watch = None
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            watch = asyncio.get_running_loop().create_task(self._until_disconnect(receive, viewer))
            async for chunk in body:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            if watch is not None:
                watch.cancel()
            self._hub.forget(viewer)
            release, self._release = self._release, None
            if release is not None:
                release()
            with contextlib.suppress(Exception):
                await body.aclose()

    @staticmethod
    async def _until_disconnect(receive, viewer: Viewer) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        Hub.end(viewer)
