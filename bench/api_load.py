"""REST API latency and throughput under a dashboard read mix, on SQLite and PostgreSQL, over loopback.

    python -m bench.api_load [--backend sqlite|postgres|both] [--runs 1000] [--epochs 50]
                             [--clients 50] [--duration 20] [--warmup 2] [--workers 1]
                             [--client aiohttp|httpx|wrk] [--scoring N]

For each backend a fresh database is created (``app.db.migrate``) and seeded in bulk
(SQLAlchemy Core executemany) with RUNS finished runs × EPOCHS epochs × 4 layer records per
epoch (the mnist_cnn layers conv1, conv2, fc1, fc2), with payloads shaped like the ones the
worker writes: run-level metrics as ``gxnor_core.train`` reports them, layer records as
``gxnor_core.probes.probe`` produces them plus the trainer's ``transitions`` /
``transition_matrix`` (3×3) / ``moves`` / ``epoch``.  SQLite is a file in a temporary data
dir; PostgreSQL is a new database ``gxnor_bench_<random>`` on
``postgresql+psycopg://postgres@127.0.0.1:5432`` (dropped at the end; ``VACUUM ANALYZE`` after
seeding, as autovacuum would do on its own).  Seeding takes ~10 s per backend.

Then the real API runs as a subprocess (``python -m gxnor_cli api --workers N``; uvicorn has been
reported to add ~44 ms per keep-alive request with several workers — not seen with uvicorn 0.54: p50 fell
from 75 to 53 ms going from 1 to 2 workers) with the filesystem broker, and CLIENTS
closed-loop clients on one keep-alive connection each — asyncio with aiohttp (or httpx), or
``wrk`` (one thread, CLIENTS connections, the same mix in a generated Lua script) — send, for
DURATION seconds after a WARMUP, a mix of

    30 %  GET /api/v1/runs                      random filter / sort / order / offset, limit 50
    30 %  GET /api/v1/runs/{id}
    20 %  GET /api/v1/runs/{id}/metrics?points=200
    10 %  GET /api/v1/runs/{id}/layers?epoch=<random>
    10 %  GET /api/v1/compare?ids=<5 random>&metric=val_error

Printed (JSON): per backend the requests completed in the window, errors (non-2xx or
exceptions), requests per second and latency percentiles (overall and per endpoint), plus
``target_p99_ms``.  Latency is client-side wall time per request.

Caveat: the load generator runs on the same machine as the server (2 cores here), so the
two compete for CPU — a Python generator takes most of a core at ~1 000 req/s, wrk a tenth
of that; figures are a lower bound on what the server alone can do, and noisy
(±20 % between runs; compare backends within one run).  The default run (both backends)
takes about 1–2 minutes including seeding.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import create_engine, insert, text

from gxnor_core.metrics import network_metrics, sortable, summarize

PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
PG_ADMIN_DB = "test"
TARGET_P99_MS = 100
ADMIN_TOKEN = "gx_bench-admin-token"  # the API's admin token (GXNOR_ADMIN_TOKEN); its runs are in team "default"
CHUNK = 5_000
PROJECTS = ("mnist", "cifar", "ablations", "sweeps", "default")
LAYERS = (  # mnist_cnn: name, kind, num_weights, dense MACs per sample, input is real
    ("conv1", "conv", 800, 460_800, True),
    ("conv2", "conv", 51_200, 3_276_800, False),
    ("fc1", "fc", 524_288, 524_288, False),
    ("fc2", "fc", 5_120, 5_120, False),
)
SORTABLE = ("created_at", "name", "status", "epochs_done", *sortable())  # as app.runs.SORTABLE
MIX = (("list", 30), ("run", 30), ("metrics", 20), ("layers", 10), ("compare", 10))
QUERIES = ("lr0.01", "mnist", "s1", "cifar-lr", "sweeps")


# ---------------------------------------------------------------- seeding

def _metrics(rng: random.Random, epoch: int, epochs: int, lr0: float, base_err: float) -> dict:
    p = epoch / epochs
    err = base_err * (1.0 + 4.0 * (1.0 - p) ** 3) * rng.uniform(0.95, 1.05)
    return {
        "epoch": epoch,
        "train_loss": 0.9 * (1.0 - p) ** 2 + 0.05 + rng.uniform(0, 0.01),
        "train_error": err * 0.7,
        "val_loss": 0.8 * (1.0 - p) ** 2 + 0.08 + rng.uniform(0, 0.02),
        "val_error": err * rng.uniform(0.97, 1.03),
        "test_loss": 0.8 * (1.0 - p) ** 2 + 0.09 + rng.uniform(0, 0.02),
        "test_error": err * rng.uniform(0.97, 1.03),
        "lr": lr0 * (0.01 ** p),
        "epoch_seconds": rng.uniform(8.0, 12.0),
        "samples_per_second": rng.uniform(5_000, 7_000),
        "weight_sparsity": rng.uniform(0.45, 0.55),
        "activation_sparsity": rng.uniform(0.5, 0.8),
        "gate_event_rate": rng.uniform(0.15, 0.3),
        "transition_rate": 0.05 * (1.0 - p) + rng.uniform(0, 0.005),
        "persistent_bytes_per_weight": 9.0,  # ternary DST driven by Adam (the default config)
    }


def _layer(rng: random.Random, epoch: int, spec: tuple) -> dict:
    name, kind, n, macs, real = spec
    zero = int(n * rng.uniform(0.45, 0.55))
    neg = (n - zero) // 2
    states = [neg, zero, n - zero - neg]
    moved = int(n * rng.uniform(0.001, 0.05))
    off = [moved // 6] * 6
    matrix = [[states[0] - off[0] - off[1], off[0], off[1]],
              [off[2], states[1] - off[2] - off[3], off[3]],
              [off[4], off[5], states[2] - off[4] - off[5]]]
    act_sparsity = 0.0 if real else rng.uniform(0.4, 0.85)
    rate = (1.0 - act_sparsity) * (1.0 - zero / n)
    levels = None if real else [rng.randrange(1_000, 5_000), rng.randrange(100, 40_000), rng.randrange(1_000, 9_000)]
    return {
        "layer": name, "kind": kind, "input_is_real": real, "num_weights": n, "weight_states": states,
        "weight_sparsity": zero / n, "activation_levels": levels, "activation_sparsity": act_sparsity,
        "macs": macs, "events": rate * macs, "gate_event_rate": rate,
        "transitions": sum(off), "transition_matrix": matrix, "moves": moved + rng.randrange(0, 100), "epoch": epoch,
    }


def seed(url: str, runs: int, epochs: int, rng: random.Random, now: datetime | None = None) -> dict:
    """Schema via migrate(), then bulk inserts (runs created before ``now``); returns counts and seconds."""
    from app.db import migrate
    from app.models import EpochMetric, LayerRecord, Project, Run, RunSummary
    from app.summaries import rows_of
    from gxnor_core.config import ExperimentConfig

    t0 = time.perf_counter()
    migrate(url)
    base_cfg = ExperimentConfig(dataset={"name": "mnist"}, model={"arch": "mnist_cnn"},
                                train={"epochs": epochs}).model_dump(mode="json")
    info = {"device": "cpu", "layers": [s[0] for s in LAYERS], "discrete_layers": [s[0] for s in LAYERS],
            "num_weights": sum(s[2] for s in LAYERS), "num_discrete_weights": sum(s[2] for s in LAYERS),
            "train_samples": 54_000, "val_samples": 6_000, "test_samples": 10_000, "batches_per_epoch": 540,
            "start_epoch": 0}
    now = now or datetime.now(UTC)
    engine = create_engine(url)
    n_metrics = n_layers = 0
    try:
        with engine.begin() as conn:
            team_id = conn.scalar(text("SELECT id FROM teams WHERE name = 'default'"))  # made by the migrations
            conn.execute(insert(Project), [{"id": i + 1, "team_id": team_id, "name": p,
                                            "created_at": now - timedelta(days=400)} for i, p in enumerate(PROJECTS)])
            run_rows, summary_rows, metric_rows, layer_rows = [], [], [], []

            def flush(force: bool = False) -> None:
                """Parents first (foreign keys), in chunks of about CHUNK layer records."""
                nonlocal n_metrics, n_layers
                if not force and len(layer_rows) < CHUNK:
                    return
                for model, rows in ((Run, run_rows), (RunSummary, summary_rows), (EpochMetric, metric_rows),
                                    (LayerRecord, layer_rows)):
                    if rows:
                        conn.execute(insert(model), rows)
                n_metrics += len(metric_rows)
                n_layers += len(layer_rows)
                for rows in (run_rows, summary_rows, metric_rows, layer_rows):
                    rows.clear()

            for rid in range(1, runs + 1):
                project = PROJECTS[rid % len(PROJECTS)]
                lr0 = rng.choice((0.001, 0.003, 0.01, 0.03))
                base_err = rng.uniform(0.006, 0.03)
                cfg = json.loads(json.dumps(base_cfg))
                cfg.update(name=f"{project}-lr{lr0:g}-s{rid}", project=project)
                cfg["train"].update(lr=lr0, seed=rid, batch_size=rng.choice((50, 100, 200)))
                cfg["activations"]["r"] = rng.choice((0.5, 1.0))
                metrics = [_metrics(rng, e, epochs, lr0, base_err) for e in range(1, epochs + 1)]
                records = {m["epoch"]: [_layer(rng, m["epoch"], spec) for spec in LAYERS] for m in metrics}
                for m in metrics:  # the layer aggregates, as train() makes them (the catalog's over_layers)
                    m.update(network_metrics(records[m["epoch"]]))
                best = min(metrics, key=lambda m: m["val_error"])
                summary = summarize(metrics[-1], {"best_val_error": best["val_error"], "best_epoch": best["epoch"],
                                                  "test_error_at_best": best["test_error"],
                                                  "best_test_error": min(m["test_error"] for m in metrics)})
                created = now - timedelta(minutes=10 * (runs - rid) + 60)
                run_rows.append({
                    "id": rid, "project_id": PROJECTS.index(project) + 1, "name": cfg["name"],
                    "status": "succeeded", "config": cfg, "created_at": created,
                    "started_at": created + timedelta(seconds=5),
                    "finished_at": created + timedelta(seconds=5 + 10 * epochs), "error": None,
                    "cancel_requested": False, "attempt": 1, "worker": "gxnor-1@bench",
                    "heartbeat_at": created + timedelta(seconds=5 + 10 * epochs),
                    "progress_epoch": epochs, "progress_fraction": 1.0, "total_epochs": epochs, "info": info,
                    "epochs_done": epochs, "summary": summary,
                })
                summary_rows += rows_of(rid, summary)
                for m in metrics:
                    metric_rows.append({"run_id": rid, "epoch": m["epoch"], "metrics": m})
                    layer_rows += [{"run_id": rid, "epoch": m["epoch"], "layer": r["layer"], "record": r}
                                   for r in records[m["epoch"]]]
                flush()
            flush(force=True)
            if engine.dialect.name == "postgresql":
                for table, col in (("projects", "id"), ("runs", "id")):
                    conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', '{col}'), "
                                      f"(SELECT max({col}) FROM {table}))"))
        if engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE"))
    finally:
        engine.dispose()
    return {"runs": runs, "epoch_metrics": n_metrics, "layer_records": n_layers,
            "seed_s": round(time.perf_counter() - t0, 1)}


@contextmanager
def pg_database():
    """A fresh PostgreSQL database, dropped WITH (FORCE) on exit."""
    name = f"gxnor_bench_{secrets.token_hex(4)}"
    admin = create_engine(f"{PG_SERVER}/{PG_ADMIN_DB}", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield f"{PG_SERVER}/{name}"
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


# ---------------------------------------------------------------- server

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def api_server(data_dir: Path, url: str, workers: int = 1, **extra_env: str):
    """``python -m gxnor_cli api`` as a subprocess; yields its base URL once /healthz answers 200."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GXNOR_")}
    env.update(GXNOR_DATA_DIR=str(data_dir), GXNOR_DATABASE_URL=url, GXNOR_ADMIN_TOKEN=ADMIN_TOKEN, **extra_env)
    log_path = data_dir / "api.log"
    root = Path(__file__).resolve().parent.parent
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "gxnor_cli", "api", "--port", str(port),
                                 "--workers", str(workers)], cwd=root, env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"API exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            with suppress(httpx.HTTPError):
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"API not healthy after 60 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        yield base
    finally:
        # The whole process group: with --workers N, uvicorn's worker processes too.
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


# ---------------------------------------------------------------- load

def _request(rng: random.Random, runs: int, epochs: int) -> tuple[str, str, dict]:
    kind = rng.choices([k for k, _ in MIX], weights=[w for _, w in MIX])[0]
    rid = rng.randint(1, runs)
    if kind == "list":
        params: dict = {"limit": 50, "sort": rng.choice(SORTABLE), "order": rng.choice(("asc", "desc"))}
        filt = rng.random()
        if filt < 0.25:
            params["project"] = rng.choice(PROJECTS)
        elif filt < 0.4:
            params["q"] = rng.choice(QUERIES)
        elif filt < 0.5:
            params["status"] = "succeeded"
        params["offset"] = rng.choice((0, 0, 0, 50, 100, rng.randrange(0, max(1, runs - 50))))
        return kind, "/api/v1/runs", params
    if kind == "run":
        return kind, f"/api/v1/runs/{rid}", {}
    if kind == "metrics":
        return kind, f"/api/v1/runs/{rid}/metrics", {"points": 200}
    if kind == "layers":
        return kind, f"/api/v1/runs/{rid}/layers", {"epoch": rng.randint(1, epochs)}
    ids = ",".join(str(i) for i in rng.sample(range(1, runs + 1), min(5, runs)))
    return kind, "/api/v1/compare", {"ids": ids, "metric": "val_error"}


async def _client(base: str, rng: random.Random, runs: int, epochs: int, t_start: float, t_end: float,
                  out: list, library: str, gate: asyncio.Event | None = None) -> None:
    """One closed-loop client on one keep-alive connection."""
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    if library == "aiohttp":
        import aiohttp

        connector = aiohttp.TCPConnector(limit=1)
        async with aiohttp.ClientSession(base, connector=connector, headers=headers,
                                         timeout=aiohttp.ClientTimeout(total=60)) as session:

            async def get(path, params):
                async with session.get(path, params=params) as resp:
                    return resp.status, len(await resp.read())

            await _loop(get, rng, runs, epochs, t_start, t_end, out, gate)
        return
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits, headers=headers) as client:

        async def get(path, params):
            resp = await client.get(path, params=params)
            return resp.status_code, len(resp.content)

        await _loop(get, rng, runs, epochs, t_start, t_end, out, gate)


async def _loop(get, rng: random.Random, runs: int, epochs: int, t_start: float, t_end: float, out: list,
                gate: asyncio.Event | None = None) -> None:
    """Requests until ``t_end``; while ``gate`` is cleared, none (the connection stays open)."""
    while (t0 := time.perf_counter()) < t_end:
        if gate is not None and not gate.is_set():
            await gate.wait()
            continue
        kind, path, params = _request(rng, runs, epochs)
        try:
            status, size = await get(path, params)
        except Exception as exc:  # noqa: BLE001 - any failure is an error
            status, size = type(exc).__name__, 0
        t1 = time.perf_counter()
        if t0 >= t_start:
            out.append((kind, t1 - t0, status, size, t1))


async def _load(base: str, clients: int, warmup: float, duration: float, runs: int, epochs: int,
                rng: random.Random, library: str) -> tuple[list, float, float]:
    out: list = []
    t_start = time.perf_counter() + warmup
    t_end = t_start + duration
    await asyncio.gather(*(_client(base, random.Random(rng.random()), runs, epochs, t_start, t_end, out, library)
                           for _ in range(clients)))
    return out, t_start, time.perf_counter()


def _pct(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    i = min(len(sorted_values) - 1, max(0, math.ceil(q / 100 * len(sorted_values)) - 1))  # nearest rank
    return round(sorted_values[i] * 1000, 1)


def summarise(samples: list, t_start: float, t_stop: float) -> dict:
    def is_ok(status) -> bool:
        return isinstance(status, int) and 200 <= status < 300

    lat = sorted(s[1] for s in samples)
    errors = [s for s in samples if not is_ok(s[2])]
    by_kind: dict[str, list] = defaultdict(list)
    for s in samples:
        by_kind[s[0]].append(s)
    per_endpoint = {}
    for kind, _ in MIX:
        rows = by_kind.get(kind, [])
        kl = sorted(r[1] for r in rows)
        per_endpoint[kind] = {
            "requests": len(rows), "errors": sum(1 for r in rows if not is_ok(r[2])),
            "p50_ms": _pct(kl, 50), "p99_ms": _pct(kl, 99), "max_ms": _pct(kl, 100),
            "mean_kb": round(sum(r[3] for r in rows) / max(1, len(rows)) / 1024, 1),
        }
    error_kinds: dict[str, int] = defaultdict(int)
    for e in errors:
        error_kinds[f"{e[0]}:{e[2]}"] += 1
    elapsed = t_stop - t_start
    return {
        "requests": len(samples), "errors": len(errors), "rps": round(len(samples) / elapsed, 1),
        "p50_ms": _pct(lat, 50), "p90_ms": _pct(lat, 90), "p99_ms": _pct(lat, 99), "max_ms": _pct(lat, 100),
        "per_endpoint": per_endpoint, **({"error_kinds": dict(error_kinds)} if error_kinds else {}),
    }


def bench_backend(backend: str, args: argparse.Namespace) -> dict:
    from app.settings import Settings

    rng = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix=f"gxnor-bench-{backend}-"))
    try:
        with (pg_database() if backend == "postgres" else _nothing(Settings(data_dir=tmp).db_url)) as url:
            seeded = seed(url, args.runs, args.epochs, rng)
            print(f"[{backend}] seeded {seeded}", file=sys.stderr, flush=True)
            with api_server(tmp, url, args.workers) as base:
                if args.client == "wrk":
                    result = _wrk(base, args, tmp)
                else:
                    samples, t_start, t_stop = _run(_load(base, args.clients, args.warmup, args.duration, args.runs,
                                                          args.epochs, rng, args.client))
                    result = summarise(samples, t_start, t_stop)
                print(f"[{backend}] {result['requests']} requests, {result['rps']} req/s, p99 {result['p99_ms']} ms",
                      file=sys.stderr, flush=True)
                if args.scoring:
                    result["with_scoring"] = _with_scoring(base, tmp, url, args, rng)
            return {**result, "seed": seeded}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------- the read mix beside scoring requests

SCORE_BATCH = 16


def _with_scoring(base: str, data_dir: Path, url: str, args: argparse.Namespace, rng: random.Random) -> dict:
    """The read mix again, now beside ``--scoring`` closed-loop clients that score batches of SCORE_BATCH
    digits against a finished run's exported model (``POST /runs/{id}/score``; the run is trained here first,
    through the worker's own ``execute_run``: mnist_cnn, 1 epoch on 1 000 mnist5k images).  The read mix's figures are
    comparable with the plain run above (same API process, same data); the scoring clients' own figures —
    and how many were told 503 (every scoring slot busy) — are reported beside them."""
    from app.settings import Settings
    from gxnor_core.config import DatasetConfig
    from gxnor_core.data import load_dataset
    from worker.runner import execute_run

    config = {"name": "scored", "dataset": {"name": "mnist5k", "limit": 1000}, "model": {"arch": "mnist_cnn"},
              "train": {"epochs": 1}}
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=60) as c:
        resp = c.post("/api/v1/runs", json={"config": config})
        resp.raise_for_status()
        run_id = resp.json()["id"]
    outcome = execute_run(run_id, Settings(data_dir=data_dir, database_url=url))
    if outcome != "succeeded":
        raise RuntimeError(f"the scored run ended {outcome}")
    x = load_dataset(DatasetConfig(name="mnist5k")).test_x[:SCORE_BATCH].numpy()
    body = json.dumps({"inputs": x.tolist()}).encode()
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=300) as c:
        # Unmeasured: the first score exports the model and compiles the engine's kernels (seconds).
        c.post(f"/api/v1/runs/{run_id}/score", content=body,
               headers={"Content-Type": "application/json"}).raise_for_status()

    async def both():
        scores: list = []
        t_start = time.perf_counter() + args.warmup
        t_end = t_start + args.duration
        reads = _load(base, args.clients, args.warmup, args.duration, args.runs, args.epochs, rng, args.client)
        scorers = [_scorer(base, run_id, body, t_start, t_end, scores) for _ in range(args.scoring)]
        (samples, r_start, r_stop), *_ = await asyncio.gather(reads, *scorers)
        return summarise(samples, r_start, r_stop), scores, t_start, time.perf_counter()

    reads, scores, t_start, t_stop = _run(both())
    reads.pop("per_endpoint", None)
    lat = sorted(s[0] for s in scores if s[1] == 200)
    busy = sum(1 for s in scores if s[1] == 503)
    result = {"read_mix": reads, "scoring": {
        "clients": args.scoring, "batch": SCORE_BATCH, "scored": len(lat), "busy_503": busy,
        "other_errors": len(scores) - len(lat) - busy, "per_s": round(len(lat) / (t_stop - t_start), 1),
        "p50_ms": _pct(lat, 50), "p99_ms": _pct(lat, 99)}}
    print(f"[with scoring] read mix {reads['rps']} req/s, p99 {reads['p99_ms']} ms; scoring {result['scoring']}",
          file=sys.stderr, flush=True)
    return result


async def _scorer(base: str, run_id: int, body: bytes, t_start: float, t_end: float, out: list) -> None:
    """One closed-loop scoring client; after a 503 it waits the Retry-After the server names (at most 1 s)."""
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=base, timeout=60, headers=headers) as client:
        while (t0 := time.perf_counter()) < t_end:
            try:
                resp = await client.post(f"/api/v1/runs/{run_id}/score", content=body)
                status: int | str = resp.status_code
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            if t0 >= t_start:
                out.append((time.perf_counter() - t0, status))
            if status == 503:
                await asyncio.sleep(min(1.0, float(resp.headers.get("retry-after", 1))))


# The same mix for wrk (a C load generator: far less client CPU on the 2 cores the server shares).
_WRK_SCRIPT = """
math.randomseed(%(seed)d)
local sorts = {%(sorts)s}
local projects = {%(projects)s}
local queries = {%(queries)s}
local offsets = {0, 0, 0, 50, 100}
local function pick(t) return t[math.random(#t)] end
request = function()
  local r = math.random(100)
  local id = math.random(1, %(runs)d)
  local path
  if r <= %(list)d then
    path = "/api/v1/runs?limit=50&sort=" .. pick(sorts) .. "&order=" .. pick({"asc", "desc"})
    local f = math.random()
    if f < 0.25 then path = path .. "&project=" .. pick(projects)
    elseif f < 0.4 then path = path .. "&q=" .. pick(queries)
    elseif f < 0.5 then path = path .. "&status=succeeded" end
    local o = math.random(6)
    path = path .. "&offset=" .. (o <= 5 and offsets[o] or math.random(0, math.max(0, %(runs)d - 50)))
  elseif r <= %(run)d then path = "/api/v1/runs/" .. id
  elseif r <= %(metrics)d then path = "/api/v1/runs/" .. id .. "/metrics?points=200"
  elseif r <= %(layers)d then path = "/api/v1/runs/" .. id .. "/layers?epoch=" .. math.random(1, %(epochs)d)
  else
    local ids = {}
    for i = 1, 5 do ids[i] = math.random(1, %(runs)d) end
    path = "/api/v1/compare?metric=val_error&ids=" .. table.concat(ids, ",")
  end
  return wrk.format("GET", path, {["Authorization"] = "Bearer %(token)s"})
end
"""


def _wrk(base: str, args: argparse.Namespace, workdir: Path) -> dict:
    """Run wrk with the mix (one thread, CLIENTS connections): warm-up, then the measured run."""
    cumulative, bounds = 0, {}
    for kind, weight in MIX:
        cumulative += weight
        bounds[kind] = cumulative
    lua = workdir / "mix.lua"
    lua.write_text(_WRK_SCRIPT % {
        "seed": args.seed, "runs": args.runs, "epochs": args.epochs, "token": ADMIN_TOKEN,
        "sorts": ", ".join(f'"{k}"' for k in SORTABLE), "projects": ", ".join(f'"{p}"' for p in PROJECTS),
        "queries": ", ".join(f'"{q}"' for q in QUERIES), **bounds})
    common = ["wrk", "-t1", f"-c{args.clients}", "-s", str(lua), "--latency"]
    subprocess.run([*common, f"-d{max(1, round(args.warmup))}", base], capture_output=True, check=True)
    out = subprocess.run([*common, f"-d{round(args.duration)}", "--timeout", "60s", base], capture_output=True,
                         text=True, check=True).stdout

    def ms(text: str) -> float:
        value, unit = float(text[:-2] if text.endswith(("ms", "us")) else text[:-1]), text[-2:]
        return round(value * {"us": 0.001, "ms": 1.0}.get(unit, 1000.0), 1)

    pct = {int(m[0]): ms(m[1]) for m in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M)}
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {"requests": requests, "errors": (int(non2xx.group(1)) if non2xx else 0)
            + (sum(int(x) for x in socket.groups()) if socket else 0),
            "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50_ms": pct[50], "p75_ms": pct[75], "p90_ms": pct[90], "p99_ms": pct[99],
            "max_ms": ms(re.search(r"Latency\s+\S+\s+\S+\s+(\S+)", out).group(1)),
            "note": "wrk: latency includes connecting (50 connections opened at once); no per-endpoint split"}


def _run(coro):
    """asyncio.run, on uvloop when it is there (less client CPU on the machine the server shares)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


@contextmanager
def _nothing(value):
    yield value


def _sigterm(signum, frame):
    raise SystemExit(128 + signum)  # run the finally blocks: stop the API, drop the database


def _default_client() -> str:
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        return "httpx"
    return "aiohttp"


def quiet_collector() -> None:
    """Put everything a load process has imported so far out of the garbage collector's reach.  The benches
    import the app's settings, and with them PyTorch: a full (generation-2) collection then walks those
    objects too, pausing the process 50–250 ms (measured in every process of ``bench.sse_load``) — and a
    pause in a *client* lands in the latencies it records, as if the server had been slow.  (The API does
    the same at start-up: ``app.main``.)"""
    gc.collect()
    gc.freeze()


def main() -> None:
    signal.signal(signal.SIGTERM, _sigterm)
    quiet_collector()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--duration", type=float, default=20.0, help="measured seconds")
    ap.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds of load before")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=1, help="API processes (gxnor api --workers)")
    ap.add_argument("--scoring", type=int, default=0, metavar="N",
                    help="then measure the read mix again beside N clients scoring batches against an exported "
                    "model (POST /runs/{id}/score); 0: not")
    ap.add_argument("--client", choices=("aiohttp", "httpx", "wrk"), default=_default_client(),
                    help="load generator: Python asyncio clients with aiohttp (default when installed) or httpx, "
                    "or wrk (a C program, apt install wrk: the least client CPU on the machine the server shares)")
    args = ap.parse_args()
    if args.runs < 5 or args.epochs < 1:
        ap.error("need --runs >= 5 and --epochs >= 1")
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    result: dict = {
        "setup": {"runs": args.runs, "epochs": args.epochs, "layers_per_epoch": len(LAYERS),
                  "clients": args.clients, "duration_s": args.duration, "warmup_s": args.warmup,
                  "uvicorn_workers": args.workers, "client": args.client, "cpus": os.cpu_count(),
                  "note": "load generator shares the machine with the server"},
        "target_p99_ms": TARGET_P99_MS,
    }
    for backend in backends:
        result[backend] = bench_backend(backend, args)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
