"""``Client``: the REST API of a GXNOR Lab server from Python (docs/CLIENT.md).

A request that may not have reached the server, or whose answer was lost (a dropped connection, a timeout, a
502/503/504), is sent again, up to ``ATTEMPTS`` times in all.  The POST that creates a run or a sweep carries
an ``Idempotency-Key`` (one fresh key per call, the same on each of its retries), so a retry after a lost
answer gets the first answer back instead of making a second run (docs/API.md, "Retrying safely").  Every
refusal is an ``ApiError`` with the status, the field a 422 names, and the server's message.
"""

from __future__ import annotations

import contextlib
import copy
import os
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import httpx

from gxnor_client.types import BulkResult, Comparison, Run, RunPage, Sweep

ATTEMPTS = 4
RETRY_STATUSES = frozenset({502, 503, 504})
MAX_RETRY_AFTER_S = 10.0
RECORD_FILES = ("metrics.csv", "metrics.jsonl", "layers.csv", "layers.jsonl")


class ApiError(Exception):
    """A request the server refused (``status``: 4xx/5xx), or one that never got an answer (``status`` None:
    unreachable after the retries).  ``field`` is the dotted field a 422 is about (``config.train.lr``);
    ``message`` the server's one-line reason."""

    def __init__(self, status: int | None, message: str, field: str | None = None, body: Any = None):
        super().__init__(f"{status}: {message}" if status is not None else message)
        self.status, self.message, self.field, self.body = status, message, field, body

    @classmethod
    def from_response(cls, resp: httpx.Response) -> ApiError:
        try:
            body = resp.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return cls(resp.status_code, resp.text.strip() or resp.reason_phrase, body=body)
        detail = body.get("detail")
        message = body.get("message") or (detail if isinstance(detail, str) else None) or resp.reason_phrase
        return cls(resp.status_code, message, body.get("field"), body)


def set_field(config: dict[str, Any], path: str, value: Any) -> None:
    """``config["train"]["epochs"] = value`` for ``path`` ``train.epochs`` (``train__epochs`` works too, as a
    keyword argument cannot hold a dot); sections are made as needed."""
    keys = path.replace("__", ".").split(".")
    node = config
    for k in keys[:-1]:
        node = node.setdefault(k, {})
        if not isinstance(node, dict):
            raise ValueError(f"{path}: {k} is not a section")
    node[keys[-1]] = value


class Client:
    """A GXNOR Lab server's REST API.  ``Client("http://127.0.0.1:8000", token)`` (token default: the
    ``GXNOR_TOKEN`` variable); use it in a ``with`` block, or ``close()`` it."""

    def __init__(self, server: str, token: str | None = None, *, timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None):
        self.server = server.rstrip("/")
        token = token or os.environ.get("GXNOR_TOKEN")
        self._http = httpx.Client(base_url=self.server, timeout=timeout, transport=transport,
                                  headers={"Authorization": f"Bearer {token}"} if token else {})
        self._presets: dict[str, dict] | None = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # ------------------------------------------------------------------------------------------------ transport
    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        """``method path`` (under /api/v1 unless it starts with /), sent again after a transport error or a
        502/503/504 — after the ``Retry-After`` the server names (at most 10 s), else 0.5, 1, 2 s.  A refusal
        raises ``ApiError``."""
        url = path if path.startswith("/") else f"/api/v1/{path}"
        for attempt in range(ATTEMPTS):
            pause = 0.5 * 2 ** attempt
            try:
                resp = self._http.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                if attempt == ATTEMPTS - 1:
                    raise ApiError(None, f"{self.server}: {exc}") from exc
            else:
                if resp.status_code not in RETRY_STATUSES or attempt == ATTEMPTS - 1:
                    if resp.status_code >= 400:
                        raise ApiError.from_response(resp)
                    return resp
                with contextlib.suppress(ValueError):
                    pause = min(float(resp.headers.get("Retry-After", pause)), MAX_RETRY_AFTER_S)
            time.sleep(pause)
        raise AssertionError("unreachable")

    def _json(self, method: str, path: str, **kwargs) -> Any:
        return self.request(method, path, **kwargs).json()

    def _create(self, path: str, body: dict) -> Any:
        """POST with a fresh Idempotency-Key, the same on each retry: a lost answer never makes a second one."""
        return self._json("POST", path, json=body, headers={"Idempotency-Key": str(uuid.uuid4())})

    def url(self, made: Run | Sweep) -> str:
        """The dashboard's address of a run or a sweep."""
        return f"{self.server}/#/{'runs' if isinstance(made, Run) else 'sweeps'}/{made.id}"

    # ------------------------------------------------------------------------------------------------------ runs
    def presets(self) -> dict[str, dict]:
        """The server's config presets (GET /catalog → presets), fetched once."""
        if self._presets is None:
            self._presets = self._json("GET", "catalog")["presets"]
        return self._presets

    def submit(self, config: str | Mapping[str, Any], overrides: Mapping[str, Any] | None = None, *,
               team: str | None = None, **fields: Any) -> Run:
        """Queue a run: ``config`` is a config (a mapping, docs/CONFIG.md) or the name of a server preset;
        ``overrides`` (``{"activations.a": 0.5}``) and keyword fields (``train__epochs=2``, ``name="x"``) change
        it first.  The server validates it: a bad field is an ``ApiError`` 422 naming it."""
        if isinstance(config, str):
            presets = self.presets()
            name = config.removeprefix("preset:")
            if name not in presets:
                raise ApiError(422, f"config: unknown preset {name!r}; presets: {', '.join(presets)}", "config")
            config = presets[name]
        body = copy.deepcopy(dict(config))
        for path, value in {**(overrides or {}), **fields}.items():
            set_field(body, path, value)
        return Run.from_json(self._create("runs", {"config": body, **({"team": team} if team else {})}))

    def run(self, run_id: int) -> Run:
        return Run.from_json(self._json("GET", f"runs/{run_id}"))

    def runs(self, *, status: str | None = None, project: str | None = None, team: str | None = None,
             sweep: int | None = None, q: str | None = None, tag: str | None = None, archived: str | None = None,
             sort: str | None = None, order: str | None = None, limit: int = 50, offset: int = 0) -> RunPage:
        """One page of the run list (GET /runs), filtered, sorted by ``sort`` (a catalog run metric or
        created_at, …); ``archived``: "false" (default), "true" or "any"."""
        params = {k: v for k, v in {"status": status, "project": project, "team": team, "sweep": sweep, "q": q,
                                    "tag": tag, "archived": archived, "sort": sort, "order": order,
                                    "limit": limit, "offset": offset}.items() if v is not None}
        page = self._json("GET", "runs", params=params)
        return RunPage([Run.from_json(r) for r in page["items"]], page["total"], page["limit"], page["offset"])

    def wait(self, run_id: int, progress: Callable[[Run], Any] | None = None, *, poll_s: float = 1.0,
             timeout: float | None = None) -> Run:
        """Follow the run until it ends (polling GET /runs/{id} every ``poll_s``): ``progress(run)`` after each
        look, the ended run returned.  ``timeout`` (seconds): an ``ApiError`` (status None) if it has not ended."""
        return _follow(lambda: self.run(run_id), progress, poll_s, timeout, f"run {run_id}")

    def metrics(self, run_id: int) -> list[dict[str, Any]]:
        """Every epoch's metrics, one dict per epoch (``epoch`` and the catalog's epoch metrics)."""
        return self._json("GET", f"runs/{run_id}/metrics")["epochs"]

    def layers(self, run_id: int, *, epoch: int | None = None, layer: str | None = None) -> list[dict[str, Any]]:
        """Layer records (every epoch, or one; every layer, or one): one dict per layer and epoch."""
        params = {k: v for k, v in {"epoch": epoch, "layer": layer}.items() if v is not None}
        return self._json("GET", f"runs/{run_id}/layers", params=params)["records"]

    def download(self, run_id: int, file: str, path: str | Path) -> Path:
        """Save one of the run's record files (``metrics.csv``, ``metrics.jsonl``, ``layers.csv``,
        ``layers.jsonl``) to ``path``, streamed; returns the path."""
        if file not in RECORD_FILES:
            raise ValueError(f"file: one of {', '.join(RECORD_FILES)}")
        path = Path(path)
        with self._http.stream("GET", f"/api/v1/runs/{run_id}/{file}") as resp:
            if resp.status_code >= 400:
                resp.read()
                raise ApiError.from_response(resp)
            with path.open("wb") as out:
                for chunk in resp.iter_bytes():
                    out.write(chunk)
        return path

    def checkpoint(self, run_id: int, which: str = "latest") -> bytes:
        """The run's checkpoint: the latest, or with ``which="best"`` the best-validation model."""
        return self.request("GET", f"runs/{run_id}/checkpoint", params={"which": which}).content

    def compare(self, ids: Iterable[int], metric: str = "val_error") -> Comparison:
        """Up to 20 runs side by side: their configs' differences and ``metric`` aligned by epoch."""
        return Comparison.from_json(self._json("GET", "compare", params={
            "ids": ",".join(str(i) for i in ids), "metric": metric}))

    def update(self, run_id: int, **fields: Any) -> Run:
        """Change any of ``name``, ``tags`` (the whole set), ``notes``, ``archived`` (PATCH /runs/{id})."""
        return Run.from_json(self._json("PATCH", f"runs/{run_id}", json=fields))

    def cancel(self, run_id: int) -> Run:
        """Stop a queued or running run (409 if it already ended)."""
        return Run.from_json(self._json("POST", f"runs/{run_id}/cancel"))

    def bulk(self, action: str, ids: Iterable[int], tags: Iterable[str] = ()) -> BulkResult:
        """One action on many runs (POST /runs/bulk): each id answered on its own in ``results``."""
        out = self._json("POST", "runs/bulk", json={"action": action, "ids": list(ids), "tags": list(tags)})
        return BulkResult(out["action"], out["done"], out["results"])

    def tag(self, ids: int | Iterable[int], tags: str | Iterable[str]) -> BulkResult:
        return self.bulk("tag", _ids(ids), _tags(tags))

    def untag(self, ids: int | Iterable[int], tags: str | Iterable[str]) -> BulkResult:
        return self.bulk("untag", _ids(ids), _tags(tags))

    def archive(self, ids: int | Iterable[int]) -> BulkResult:
        """Hide finished runs from the list (``runs(archived="true")`` shows them)."""
        return self.bulk("archive", _ids(ids))

    def unarchive(self, ids: int | Iterable[int]) -> BulkResult:
        return self.bulk("unarchive", _ids(ids))

    # ---------------------------------------------------------------------------------------------------- sweeps
    def sweep(self, spec: str | Mapping[str, Any], overrides: Mapping[str, Any] | None = None, *,
              name: str | None = None, team: str | None = None) -> Sweep:
        """Queue a sweep: ``spec`` is a sweep spec (name, base, grid | list | random, seeds, …; docs/API.md) or
        a sweep preset's name (``paper-r`` or ``preset:paper-r``); ``overrides`` change fields of its base
        config.  Its runs are in ``run_ids``."""
        body = {"name": spec.removeprefix("preset:"), "preset": spec.removeprefix("preset:")} \
            if isinstance(spec, str) else copy.deepcopy(dict(spec))
        if overrides:
            body["base"] = body.get("base") or {}
            for path, value in overrides.items():
                set_field(body["base"], path, value)
        body.update({k: v for k, v in {"name": name, "team": team}.items() if v})
        return Sweep.from_json(self._create("sweeps", body))

    def get_sweep(self, sweep_id: int) -> Sweep:
        """The sweep, its runs and its results (mean ± sd over seeds per config)."""
        return Sweep.from_json(self._json("GET", f"sweeps/{sweep_id}"))

    def wait_sweep(self, sweep_id: int, progress: Callable[[Sweep], Any] | None = None, *, poll_s: float = 2.0,
                   timeout: float | None = None) -> Sweep:
        """Follow the sweep until every run has ended, as ``wait`` does a run."""
        return _follow(lambda: self.get_sweep(sweep_id), progress, poll_s, timeout, f"sweep {sweep_id}")

    def cancel_sweep(self, sweep_id: int) -> Sweep:
        return Sweep.from_json(self._json("POST", f"sweeps/{sweep_id}/cancel"))


def _ids(ids: int | Iterable[int]) -> list[int]:
    return [ids] if isinstance(ids, int) else list(ids)


def _tags(tags: str | Iterable[str]) -> list[str]:
    return [tags] if isinstance(tags, str) else list(tags)


def _follow(look: Callable[[], Any], progress: Callable[[Any], Any] | None, poll_s: float, timeout: float | None,
            what: str) -> Any:
    """``look()`` every ``poll_s`` until what it returns has ``finished``; ``progress`` after each look; an
    ``ApiError`` (status None) after ``timeout`` seconds."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        seen = look()
        if progress is not None:
            progress(seen)
        if seen.finished:
            return seen
        if deadline is not None and time.monotonic() >= deadline:
            raise ApiError(None, f"{what} still {seen.status} after {timeout:g} s")
        time.sleep(poll_s)
