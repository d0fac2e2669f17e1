"""`gxnor up` keeps its data directory to itself: every directory 0700 and every file 0600 (no group or
other bits) — the SQLite database and its WAL, checkpoints, the filesystem queue."""

import os
import signal
import stat

import httpx

from .conftest import AS_ADMIN, Proc, free_port, service_env, wait_for, wait_healthy


def _loose(root) -> dict[str, str]:
    """Paths under root (and root itself) with any group/other permission bit, as {path: mode}."""
    found = {}
    for dirpath, _, filenames in os.walk(root):
        for p in [dirpath, *(os.path.join(dirpath, f) for f in filenames)]:
            try:
                mode = stat.S_IMODE(os.lstat(p).st_mode)
            except FileNotFoundError:  # a queue file taken meanwhile
                continue
            if mode & 0o077:
                found[os.path.relpath(p, root)] = oct(mode)
    return found


def test_gxnor_up_data_dir_is_private(tmp_path, procs):
    old = os.umask(0o022)  # as from a typical login shell; `gxnor up` must not rely on it
    try:
        port = free_port()
        data = tmp_path / "data"
        up = Proc(["up", "--port", str(port), "--data-dir", str(data)], service_env(tmp_path), tmp_path / "up.log")
        procs.append(up)
    finally:
        os.umask(old)
    base = f"http://127.0.0.1:{port}"
    wait_healthy(base, up)
    with httpx.Client(base_url=base, timeout=30, headers=AS_ADMIN) as client:
        cfg = {"name": "perm", "model": {"hidden": [16]}, "train": {"epochs": 2, "batch_size": 100}}
        run_id = client.post("/api/v1/runs", json={"config": cfg}).json()["id"]
        run = wait_for(lambda: (r := client.get(f"/api/v1/runs/{run_id}").json())["status"]
                       in ("succeeded", "failed") and r, what="the run")
        assert run["status"] == "succeeded", run["error"]
        # A second run waits in the queue: a broker message file is there to look at.
        client.post("/api/v1/runs", json={"config": {**cfg, "name": "more"}})
        names = {os.path.relpath(os.path.join(d, f), data) for d, _, fs in os.walk(data) for f in fs}
        assert "gxnor.db" in names and "gxnor.db-wal" in names, names
        assert any(n.startswith("artifacts/") and n.endswith(".pt") for n in names), names
        assert any(n.startswith("broker/") for n in names), names
        assert _loose(data) == {}
    assert up.stop(signal.SIGINT, timeout=120) == 0
    assert _loose(data) == {}
