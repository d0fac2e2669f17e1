"""Keep freed heap memory while a run trains (glibc's ``mallopt``), so an epoch does not re-fault its pages.

glibc returns memory to the system as soon as enough of the heap's top is free (``M_TRIM_THRESHOLD``) and serves
blocks above a threshold (``M_MMAP_THRESHOLD``, 128 KiB rising to at most 32 MiB as it meets them) by ``mmap``s
of their own, unmapped when freed.  An epoch allocates and frees the same blocks over and over — the training
steps, then the evaluation's and probes' larger batches — and every page glibc gave back is faulted in again,
zeroed: ``mnist_cnn`` on mnist5k took 56 000–72 000 minor faults an epoch (its float twin 36 000) on a 2-core
Zen 3 VM, where a fault costs 3–4 µs, and 340–650 a training step in a process that had not evaluated yet
(glibc's thresholds still low).  With both thresholds set high the heap keeps its pages: 1–1 200 faults an
epoch, and GXNOR's whole epoch measured 2.12–2.27 s against 2.30–2.41 — on a host whose speed wanders, so the
faults' drop is the firm figure and the ≈ 0.15 s a tentative one (docs/BENCHMARKS.md, session 16).

``train`` sets the thresholds when it starts (``keep_freed_memory``) and hands the free memory back when it ends
(``release_freed_memory``: ``malloc_trim``), so a worker that trains run after run does not hold the footprint
of its largest past run while idle.  The thresholds stay set for the process (glibc has no "restore"), which
matters only to a process that also does other work: the API and ``gxnor infer`` never call ``train`` and keep
glibc's defaults.  ``GXNOR_KEEP_FREED_MEMORY=0``, set before the first ``train`` of a process, turns it off;
without glibc (no ``mallopt``) it does nothing.
"""

from __future__ import annotations

import ctypes
import os
import sys
from functools import cache

M_TRIM_THRESHOLD = -1  # glibc's <malloc.h>
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLDS = (1 << 28, 1 << 25)
"""Blocks up to this size come from the heap, not from an ``mmap`` of their own: 256 MiB, or 32 MiB where glibc
refuses more (before 2.35 or so it capped the value at half its heap size).  Set first, and only if it is
accepted is the trim threshold set: setting either stops glibc's adapting both, and the trim threshold alone
leaves the mmap threshold at 128 KiB (18 000 faults a step, session 16)."""
TRIM_THRESHOLD = 1 << 30
"""Free memory at the top of the heap glibc keeps before returning any (1 GiB), until ``release_freed_memory``."""
ENV = "GXNOR_KEEP_FREED_MEMORY"


@cache
def _libc():
    """The process's C library if it is glibc (it has ``mallopt`` and ``malloc_trim``), else None."""
    if not sys.platform.startswith("linux") or not os.confstr("CS_GNU_LIBC_VERSION"):
        return None
    try:
        libc = ctypes.CDLL(None)
        mallopt, trim = libc.mallopt, libc.malloc_trim
    except (OSError, AttributeError, ValueError):
        return None
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return libc


@cache
def keep_freed_memory() -> int:
    """Set glibc's two thresholds (module docstring) once per process; the mmap threshold set, 0 where none is
    (turned off, not glibc, or refused)."""
    if os.environ.get(ENV, "1").strip().lower() in ("0", "off", "false", "no"):
        return 0
    libc = _libc()
    if libc is None:
        return 0
    for threshold in MMAP_THRESHOLDS:
        if libc.mallopt(M_MMAP_THRESHOLD, threshold):
            return threshold if libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) else 0
    return 0


def release_freed_memory() -> None:
    """Give the heap's free memory back to the system (``malloc_trim(0)``), where ``keep_freed_memory`` kept it."""
    if keep_freed_memory():
        _libc().malloc_trim(0)
