"""Small helpers for the kernels written in LLVM IR through numba's ``intrinsic`` (``kernels._tile``,
``dst._block``): what numba compiles for, which array types the IR may index, and a vector of one
value."""

from __future__ import annotations

from functools import cache

from llvmlite import ir
from numba import types


@cache
def target_features() -> frozenset[str]:
    """The CPU features numba compiles for, numba's own rule: ``NUMBA_CPU_FEATURES`` where set (it is empty for
    ``NUMBA_CPU_NAME=generic``), else the host's — as names that are on (``avx2``, ``avx512f``, …)."""
    import llvmlite.binding as llvm
    from numba.core import config

    features = config.CPU_FEATURES
    if features is None:
        features = llvm.get_host_cpu_features().flatten()
    return frozenset(f[1:] for f in features.split(",") if f.startswith("+"))


def c_array(t, dtype, ndim: int = 2, writable: bool = False) -> bool:
    """Whether numba type t is a C-contiguous array of ``dtype`` and ``ndim`` dimensions (read-only allowed
    unless ``writable``: an im2col that needed no copy is a read-only view) — what an intrinsic's IR may index
    without strides."""
    return (isinstance(t, types.Array) and t.dtype == dtype and t.ndim == ndim and t.layout == "C"
            and (t.mutable or not writable))


def splat(builder: ir.IRBuilder, value: ir.Value, vector: ir.VectorType) -> ir.Value:
    """``value`` in every lane of a vector of type ``vector``."""
    lane0 = ir.Constant(ir.IntType(32), 0)
    v = builder.insert_element(ir.Constant(vector, ir.Undefined), value, lane0)
    return builder.shuffle_vector(v, ir.Constant(vector, ir.Undefined),
                                  ir.Constant(ir.VectorType(ir.IntType(32), vector.count), [0] * vector.count))
