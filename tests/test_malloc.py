"""gxnor_core._malloc: a training process keeps freed heap memory, so blocks freed and taken again every step
are not re-faulted page by page.  Each case runs in a process of its own (the setting is process-wide)."""

import importlib
import json
import subprocess
import sys

import pytest

from gxnor_core import _malloc

# A 64 MiB block, freed and taken again ten times: glibc serves a block over 32 MiB (its adaptive threshold's
# ceiling) by an mmap of its own, unmapped when freed, so every round faults it in afresh — its 16 384 pages, or
# its 32 huge pages where the kernel backs it by 2 MiB ones (transparent huge pages).
ROUNDS = """
import json, resource, sys
import numpy as np
from gxnor_core._malloc import keep_freed_memory
kept = keep_freed_memory()
faults = []
for _ in range(10):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    a = np.ones(64 << 20, dtype=np.uint8)
    del a
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({"kept": kept, "faults": faults}))
"""

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux")


def _rounds(env_value: str | None, monkeypatch) -> dict:
    if env_value is None:
        monkeypatch.delenv(_malloc.ENV, raising=False)
    else:
        monkeypatch.setenv(_malloc.ENV, env_value)
    out = subprocess.run([sys.executable, "-c", ROUNDS], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


HUGE_PAGES = (64 << 20) // (2 << 20)  # the fewest faults a round that maps the block anew can take


def test_kept_memory_is_not_faulted_in_again(monkeypatch):
    kept = _rounds(None, monkeypatch)
    assert kept["kept"] is True
    assert kept["faults"][0] >= HUGE_PAGES  # the first round takes the memory from the system
    assert max(kept["faults"][1:]) < HUGE_PAGES // 4  # later rounds reuse it


def test_turned_off_the_defaults_fault_every_round(monkeypatch):
    off = _rounds("0", monkeypatch)
    assert off["kept"] is False
    assert min(off["faults"]) >= HUGE_PAGES  # every round maps and faults the block anew


def test_train_keeps_freed_memory(monkeypatch):
    calls = []
    training = importlib.import_module("gxnor_core.train")  # the module (the package's ``train`` is its function)
    monkeypatch.setattr(training, "keep_freed_memory", lambda: calls.append(1))
    training.train({"dataset": {"name": "digits"}, "model": {"arch": "mlp", "hidden": [16]},
           "train": {"epochs": 1, "batch_size": 100, "device": "cpu"}})
    assert calls == [1]
