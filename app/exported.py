"""A finished run's model as a ``.gxn`` file and the integer engine that scores with it (docs/EXPORT.md,
"Serving"): what ``app/api/routes/models.py`` answers.

Everything expensive — reading the checkpoint, exporting, building the engine, scoring, timing — runs in one
small thread pool of ``GXNOR_SCORE_CONCURRENCY`` threads, never on the API's event loop.  A request that finds
every thread busy is refused at once (503 with Retry-After) rather than queued: scoring is CPU work, so a queue
would only add its wait to every answer while the CPU stays as busy.  The limit is the server's, shared by every
caller — nothing the refused caller did wrong — hence 503 (the server cannot take it now), not 429 (too many
requests from you).

Exports and engines are cached per (run, which) in a small LRU (``GXNOR_SCORE_CACHE_MODELS``), keyed also by
the checkpoint file they came from, so a newer checkpoint is never answered from a stale entry.
"""

from __future__ import annotations

import asyncio
import io
import math
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from fastapi import HTTPException
from sqlalchemy.orm import Session

from app import runs as svc
from app.models import Run
from app.settings import Settings
from gxnor_core.errors import FieldError

UNFINISHED = ("queued", "running")
LATENCY_BATCHES = (1, 64)
NPY_TYPES = ("application/x-npy", "application/octet-stream")


@dataclass(frozen=True)
class Source:
    """Which checkpoint file a run's (run, which) model comes from, checked visible, finished and exportable
    while a database session was open; exporting it needs no session."""

    run_id: int
    which: str
    path: Path


@dataclass
class Loaded:
    """One cache entry: the ``.gxn`` bytes and the engine built from them (and its profile once measured)."""

    path: Path
    data: bytes
    engine: Any
    profile: dict | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


def _refusal(config: dict) -> FieldError | None:
    """Why a run's network cannot be exported (``gxnor_core.export.config_refusal``), naming the field of the
    run's config (``config.weights.N``: its path in the run object), or None."""
    from gxnor_core.config import validate_config
    from gxnor_core.export import config_refusal

    refused = config_refusal(validate_config(config))
    return None if refused is None else FieldError(f"config.{refused[0]}", refused[1])


def locate(session: Session, run: Run, settings: Settings, which: str) -> Source:
    """The checkpoint a run's model is exported from: 409 while the run is queued or running (its latest
    checkpoint still changes and its best model may yet), 422 naming the field when its network cannot be
    exported, 404 when it has no such checkpoint."""
    if run.status in UNFINISHED:
        raise HTTPException(409, f"run {run.id} is {run.status}: a model is exported once the run has finished")
    if (refused := _refusal(run.config)) is not None:
        raise refused
    return Source(run.id, which, svc.checkpoint_file(session, run, settings, which))


class ModelService:
    """The process's scoring pool and model cache (one per app: ``app.state.models``)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.limit = settings.score_concurrency
        self.pool = ThreadPoolExecutor(max_workers=self.limit, thread_name_prefix="gxnor-score")
        self._busy = 0
        self._slots = threading.Lock()
        self._cache: OrderedDict[tuple[int, str], Loaded] = OrderedDict()
        self._cache_lock = threading.Lock()

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    async def submit(self, fn, *args):
        """Run ``fn(*args)`` in the pool; 503 with Retry-After when every slot is taken."""
        with self._slots:
            if self._busy >= self.limit:
                raise HTTPException(503, f"the server is scoring {self.limit} requests already "
                                    "(GXNOR_SCORE_CONCURRENCY); try again shortly", headers={"Retry-After": "1"})
            self._busy += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)
        finally:
            with self._slots:
                self._busy -= 1

    def load(self, source: Source) -> Loaded:
        """The cached export and engine of ``source`` (built on a miss; call in the pool)."""
        from gxnor_core.engine import Engine
        from gxnor_core.export import ExportError, export_checkpoint

        key = (source.run_id, source.which)
        with self._cache_lock:
            hit = self._cache.get(key)
            if hit is not None and hit.path == source.path:
                self._cache.move_to_end(key)
                return hit
        try:
            data = export_checkpoint(source.path.read_bytes(), {"run_id": source.run_id, "which": source.which})
        except ExportError as exc:  # a network the config check let through (a stored checkpoint of an old form)
            raise FieldError("which", f"{source.which}: {exc}") from None
        loaded = Loaded(source.path, data, Engine(data))
        with self._cache_lock:
            self._cache[key] = loaded
            self._cache.move_to_end(key)
            while len(self._cache) > self.settings.score_cache_models:
                self._cache.popitem(last=False)
        return loaded

    # -- the work done in the pool -------------------------------------------------------------------------

    def score(self, source: Source, body: bytes, content_type: str) -> dict:
        loaded = self.load(source)
        x = parse_inputs(body, content_type, loaded.engine.input_shape, self.settings.score_max_batch)
        t0 = time.perf_counter()
        result = loaded.engine.run(x, per_sample=True)  # one pass: the engine counts each sample's gate events
        seconds = time.perf_counter() - t0 - result.tuning_seconds  # a new batch size's kernel timing left out
        per_sample = [{name: int(v[i]) for name, v in result.sample_events.items()} for i in range(x.shape[0])]
        return scores(source, x, result, per_sample, seconds)

    def profile(self, source: Source) -> dict:
        loaded = self.load(source)
        with loaded.lock:  # measured once per cached model: a second caller waits for the first's figures
            if loaded.profile is None:
                loaded.profile = measure(loaded, source)
            return loaded.profile


def parse_inputs(body: bytes, content_type: str, shape: tuple[int, ...], max_batch: int) -> np.ndarray:
    """The batch of a scoring request as float32 N×C×H×W: a .npy array (``application/x-npy``), or JSON
    ``{"inputs": [...]}`` (nested arrays, N×C×H×W or N×features).  413 beyond ``max_batch`` samples; 422
    naming ``inputs`` for anything else wrong."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media in NPY_TYPES:
        try:
            x = np.load(io.BytesIO(body), allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise FieldError("inputs", f"not a readable .npy array ({exc})") from None
    else:
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise FieldError("inputs", "the body is neither JSON nor a .npy array (Content-Type: "
                             "application/x-npy)") from None
        if not isinstance(doc, dict) or "inputs" not in doc:
            raise FieldError("inputs", 'missing: send {"inputs": [[...], ...]}')
        extra = sorted(set(doc) - {"inputs"})
        if extra:
            raise FieldError(extra[0], "unknown key")
        try:
            x = np.asarray(doc["inputs"], dtype=np.float32)
        except (ValueError, TypeError):
            raise FieldError("inputs", "not a rectangular array of numbers") from None
    if x.dtype.kind not in "fiub":
        raise FieldError("inputs", f"dtype {x.dtype}: numbers expected")
    if x.ndim >= 1 and x.shape[0] > max_batch:
        raise HTTPException(413, f"inputs: {x.shape[0]} samples; at most {max_batch} per request "
                            "(GXNOR_SCORE_MAX_BATCH)")
    features = math.prod(shape)
    wanted = "×".join(map(str, shape))
    if x.ndim < 2 or x.shape[0] == 0 or (tuple(x.shape[1:]) != shape and x.shape[1:] != (features,)):
        raise FieldError("inputs", f"shape {list(x.shape)}; this model takes N×{wanted} (or N×{features}), "
                         f"1 ≤ N ≤ {max_batch}")
    x = x.astype(np.float32, copy=False)
    if not np.isfinite(x).all():
        raise FieldError("inputs", "holds NaN or infinite values")
    return x.reshape(x.shape[0], *shape)


def scores(source: Source, x: np.ndarray, result, per_sample: list[dict], seconds: float) -> dict:
    n = x.shape[0]
    logits = result.logits.numpy()
    return {
        "run_id": source.run_id, "which": source.which, "n": n,
        "predictions": logits.argmax(1).tolist(),
        "logits": logits.tolist(),
        "events": per_sample,
        "events_total": dict(result.events),
        "kernels": dict(result.kernels),
        "latency_ms": 1e3 * seconds, "latency_ms_per_sample": 1e3 * seconds / n,
        "kernel_tuning_ms": 1e3 * result.tuning_seconds,
    }


def fp32_bytes(meta: dict) -> int:
    """The same network in float32: every weight, and each layer's BatchNorm (γ, β, mean, variance per
    channel) — the full-precision state a .gxn file replaces."""
    total = 0
    for layer in meta["layers"]:
        total += math.prod(layer["weight_shape"]) + 4 * layer["weight_shape"][0]
    return 4 * total


def _median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * sorted(times)[len(times) // 2]


def measure(loaded: Loaded, source: Source) -> dict:
    """The export's size against float32, the engine's latency per sample at batch 1 and 64 on random inputs
    of the model's shape (median of a few runs after a warm-up, on this server), and the gate events it
    executes per sample on the run's probe batch (the samples its layer records were counted on)."""
    import torch

    engine = loaded.engine
    meta = engine.model.meta
    gen = torch.Generator().manual_seed(0)
    latency = []
    for batch in LATENCY_BATCHES:
        x = torch.rand((batch, *engine.input_shape), generator=gen) * 2 - 1
        engine.run(x)  # warm-up: numba compiles a kernel on first use
        repeats = 7 if batch == 1 else 3
        ms = _median_ms(lambda x=x: engine.run(x), repeats)
        latency.append({"batch": batch, "ms_per_batch": ms, "ms_per_sample": ms / batch, "repeats": repeats})
    return {
        "run_id": source.run_id, "which": source.which,
        "epoch": meta["source"].get("epoch"), "best_epoch": meta["source"].get("best_epoch"),
        "format_version": meta["version"], "size_bytes": len(loaded.data), "fp32_bytes": fp32_bytes(meta),
        "input_shape": meta["input_shape"], "classes": meta["classes"],
        "layers": [{"name": e["name"], "role": e["role"], "kind": e["kind"], "weights": math.prod(e["weight_shape"])}
                   for e in meta["layers"]],
        "latency": latency, "events": probe_events(engine, meta),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }



def probe_events(engine, meta: dict) -> dict:
    """Gate events per sample, per XNOR layer, executed by the engine on the probe batch the trainer counts
    its layer records on (the first ``PROBE_SIZE`` samples of the validation split, else the test split;
    gxnor_core.train) — so they are comparable with ``GET /runs/{id}/costs?epoch=`` this model's epoch."""
    from gxnor_core.config import validate_config
    from gxnor_core.data import load_dataset
    from gxnor_core.train import PROBE_SIZE

    cfg = validate_config(meta["source"]["config"])
    data = load_dataset(cfg.dataset)
    split = "val" if data.val_x.shape[0] else "test"
    x = (data.val_x if split == "val" else data.test_x)[:PROBE_SIZE]
    events = engine.run(x).events
    n = int(x.shape[0])
    return {"split": split, "samples": n, "per_sample": {name: count / n for name, count in events.items()}}
