"""gxnor_core._malloc: while a run trains, the process keeps the heap memory it frees, so blocks freed and taken
again are not re-faulted page by page, and it hands the memory back when the run ends.  Each case runs in a
process of its own (the thresholds are process-wide), with no allocator settings inherited from the environment."""

import importlib
import json
import os
import subprocess
import sys

import pytest

from gxnor_core import _malloc

BLOCK = 64 << 20
# A 64 MiB block, freed and taken again: glibc serves a block over 32 MiB (its adaptive threshold's ceiling) by an
# mmap of its own, unmapped when freed, so each round faults it in afresh — page by page, or by huge pages where
# the kernel backs it with them (numpy asks for them on large arrays).  ``release`` rounds call
# release_freed_memory after freeing the block.
ROUNDS = """
import json, resource, sys
import numpy as np
from gxnor_core._malloc import keep_freed_memory, release_freed_memory
kept = keep_freed_memory()
faults = []
block, releases = json.loads(sys.argv[1])
for release in releases:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    a = np.ones(block, dtype=np.uint8)
    del a
    if release:
        release_freed_memory()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({"kept": kept, "faults": faults}))
"""

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not os.confstr("CS_GNU_LIBC_VERSION"), reason="glibc's mallopt")


def _huge_page() -> int:
    try:
        with open("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 2 << 20


FEWEST = BLOCK // max(_huge_page(), 4096)  # the fewest faults a round that maps the block anew can take


def _rounds(keep: str, releases: list[bool]) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MALLOC_") and k not in ("GLIBC_TUNABLES", "LD_PRELOAD")}
    env[_malloc.ENV] = keep
    out = subprocess.run([sys.executable, "-c", ROUNDS, json.dumps([BLOCK, releases])], capture_output=True, text=True,
                         check=True, env=env)
    return json.loads(out.stdout)


def test_kept_memory_is_not_faulted_in_again_until_it_is_handed_back():
    kept = _rounds("1", [False] * 5 + [True, False])
    if not kept["kept"]:
        pytest.skip("this glibc refused the mmap threshold")
    if kept["kept"] < BLOCK + (1 << 20):
        pytest.skip(f"this glibc caps the mmap threshold at {kept['kept']} bytes: a {BLOCK}-byte block is mapped")
    faults = kept["faults"]
    assert faults[0] >= FEWEST  # the first round takes the memory from the system
    assert max(faults[1:6]) < FEWEST // 4  # later rounds reuse it (the sixth hands it back at its end)
    assert faults[6] >= FEWEST  # handed back, it is faulted in again


def test_turned_off_the_defaults_fault_every_round():
    off = _rounds("0", [False] * 5)
    assert off["kept"] == 0
    assert min(off["faults"]) >= FEWEST  # every round maps and faults the block anew


def test_train_keeps_freed_memory_while_it_trains_and_hands_it_back(monkeypatch):
    calls = []
    training = importlib.import_module("gxnor_core.train")  # the module (the package's ``train`` is its function)
    monkeypatch.setattr(training, "keep_freed_memory", lambda: calls.append("keep"))
    real = training._train
    monkeypatch.setattr(training, "_train", lambda *a: (calls.append("train"), real(*a))[1])
    monkeypatch.setattr(training, "release_freed_memory", lambda: calls.append("release"))
    result = training.train({"dataset": {"name": "digits"}, "model": {"arch": "mlp", "hidden": [16]},
                             "train": {"epochs": 1, "batch_size": 100, "device": "cpu"}})
    assert result["status"] == "succeeded"
    assert calls == ["keep", "train", "release"]

    def failing(*a):
        raise RuntimeError("boom")

    calls.clear()
    monkeypatch.setattr(training, "_train", failing)
    with pytest.raises(RuntimeError):
        training.train({"dataset": {"name": "digits"}, "model": {"arch": "mlp", "hidden": [16]}})
    assert calls == ["keep", "release"]  # handed back when a run fails too
