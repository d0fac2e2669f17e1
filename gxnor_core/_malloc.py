"""Keep freed heap memory in a training process (glibc's ``mallopt``), so an epoch does not re-fault its pages.

glibc returns memory to the system as soon as enough of the heap's top is free (``M_TRIM_THRESHOLD``) and serves
blocks above a threshold (``M_MMAP_THRESHOLD``, 128 KiB rising to at most 32 MiB as it meets them) by ``mmap``s
of their own, unmapped when freed.  An epoch allocates and frees the same blocks over and over — the training
steps, then the evaluation's and probes' larger batches — and every page glibc gave back is faulted in again,
zeroed, at 3–4 µs a fault on a 2-core Zen 3 VM: ``mnist_cnn`` on mnist5k took 56 000–72 000 minor faults an epoch
(its float twin 36 000), ≈ 0.15 s of a 2.3 s epoch, and in a process that had not yet evaluated (glibc's
thresholds still low) 350–650 a training step.  With both limits set high the heap keeps its pages: 1–1 200 faults
an epoch, the whole epoch 2.12–2.27 s against 2.30–2.41 (docs/BENCHMARKS.md, session 16).  The price: the process
keeps the memory of its largest batch until it exits — what a training worker uses again every epoch anyway.

Process-wide, so it is done once, by ``train`` (and the training bench), not at import: a program that imports
``gxnor_core`` for the engine or the service keeps glibc's defaults.  Elsewhere than glibc (no ``mallopt``) it does
nothing; ``GXNOR_KEEP_FREED_MEMORY=0`` turns it off.
"""

from __future__ import annotations

import ctypes
import os
import sys
from functools import cache

M_TRIM_THRESHOLD = -1  # glibc's <malloc.h>
M_MMAP_THRESHOLD = -3
TRIM_THRESHOLD = 1 << 30
"""Free memory at the top of the heap glibc keeps before returning any (1 GiB)."""
MMAP_THRESHOLD = 1 << 28
"""Blocks up to this size (256 MiB) come from the heap, not from an ``mmap`` of their own; setting it also stops
glibc's adjusting both thresholds, which is why both are set (the trim threshold alone: 18 000 faults a step)."""
ENV = "GXNOR_KEEP_FREED_MEMORY"


@cache
def keep_freed_memory() -> bool:
    """Set glibc's two thresholds (module docstring) once per process; whether they are set."""
    if os.environ.get(ENV, "1").strip().lower() in ("0", "off", "false", "no") or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
