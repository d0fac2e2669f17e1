"""Discrete State Transition (docs/METHOD.md §3): weights move between states of Z_N, no hidden weights.

For a proposed update Δw from a base rule (SGD, momentum or Adam):

    κ = fix(Δw / Δz)                whole steps, rounded toward zero
    ν = Δw - κ·Δz                   remainder, |ν| < Δz, same sign as Δw
    τ = tanh(m · |ν| / Δz)          transition probability
    n' = clip(n + κ + sign(ν)·Bernoulli(τ), 0, 2^N)

sign(0) = 0, so a zero proposal never moves a weight.

Randomness (*ours*): each call draws one 32-bit seed from the caller's torch
generator; weight i's uniform number is a counter-based hash of (seed, i)
(``lowbias32``), so the result depends only on the generator state, is the same
on every thread count, and costs no random-number buffer.  τ is read from a
table of tanh(m·x) on 16 384 intervals with linear interpolation (|error| <
2e-6 for m ≤ 50), which keeps the CPU kernel free of transcendental calls.

The CPU path is one fused numba loop: a plain loop LLVM vectorizes as it can, or
the same arithmetic on vectors of eight or sixteen written in LLVM IR (reading
the table by loads or by a gather), whichever is measured fastest on the machine
(``_kernel``); other devices use the same arithmetic as torch ops
(``dst_update_torch``), which the tests hold bit-identical to every kernel.
The kernels read the table only where a weight's u could fall under τ — below a
cap that bounds τ without reading it (``_CAP_MARGIN``) — which in training is
1–3 % of sixteen-weight blocks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache, partial

import numba
import numpy as np
import torch
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ._llvm import c_array
from ._llvm import splat as _splat
from ._threads import sync_threads
from .spaces import DiscreteSpace

LUT_INTERVALS = 16384
_GOLDEN = 0x9E3779B9
_M1 = 0x7FEB352D
_M2 = 0x846CA68B
_MASK32 = 0xFFFFFFFF


@lru_cache(maxsize=32)
def tau_table(m: float) -> np.ndarray:
    """tanh(m·x) at x = j / LUT_INTERVALS, j = 0 … LUT_INTERVALS (float32)."""
    x = np.linspace(0.0, 1.0, LUT_INTERVALS + 1, dtype=np.float64)
    return np.tanh(m * x).astype(np.float32)


@lru_cache(maxsize=32)
def _interval_table(m: float) -> np.ndarray:
    """The CPU kernel's form of ``tau_table``: per interval j, its start τ_j and the rise τ_{j+1} − τ_j side
    by side (float32, 2·LUT_INTERVALS values; the rise is the float32 difference the interpolation computes,
    so the results are the table's to the bit) — one 8-byte load per weight instead of two 4-byte ones."""
    lut = tau_table(m)
    return np.ascontiguousarray(np.stack([lut[:-1], lut[1:] - lut[:-1]], axis=1).reshape(-1))


_CAP_MARGIN = 1.0 + 2.0**-16
"""The kernels read the table only where u ≤ (j + 1)·τ₁·_CAP_MARGIN (τ₁ = tanh(m/L), the table's second
entry), which every u < p satisfies, so the states are the same — and in training almost no weight needs it.
Why it holds: τ(y) = tanh(m·y) is concave with τ(0) = 0, so τ((j+1)/L) ≤ (j+1)·τ₁; the float32 table entries
are within 2⁻²⁴ of it (relative, for a normal τ₁), and p, interpolated inside interval j with non-negative
terms, rounds to at most τ_{j+1}: p ≤ (j+1)·τ₁·(1 + 2⁻²³), below the cap even after its own two roundings.
The compare is ≤, not <, for the m whose τ₁ is subnormal or rounds to 0 (m below ≈ 10⁻³⁴; config allows any
m > 0): there the relative bound fails, but only u = 0 lies under such a p, and u = 0 ≤ the cap ≥ 0; any u ≥
2⁻²⁴ under p needs τ₁ ≥ 2⁻³⁸, a normal float.  For m ≤ 0 p ≤ 0 ≤ u: no u moves either way.  A NaN
proposal's j is the table's last interval, as before.  With Adam at lr 10⁻³, ``mnist_cnn``'s proposals are a
few 10⁻⁴ of a step: 1–3 % of 16-weight blocks have a weight under the cap (docs/BENCHMARKS.md, session 15)."""


@numba.njit(nogil=True, inline="always")
def _dst_one(idx, dw, i, inv_step, table, s32, max_index):  # pragma: no cover - compiled
    """Weight i's DST step (``table``: ``_interval_table``); returns its moves."""
    L = table.shape[0] // 2
    t = dw[i] * inv_step
    kf = np.float32(np.trunc(t))
    nu = t - kf
    x = abs(nu) * np.float32(L)
    j = int(x) if x < np.float32(L - 1) else L - 1  # min(int(x), L − 1), and L − 1 for a NaN
    h = np.uint32(np.uint32(i) * np.uint32(_GOLDEN) + s32)
    h = h ^ (h >> np.uint32(16))
    h = np.uint32(h * np.uint32(_M1))
    h = h ^ (h >> np.uint32(15))
    h = np.uint32(h * np.uint32(_M2))
    h = h ^ (h >> np.uint32(16))
    u = np.float32(h >> np.uint32(8)) * np.float32(1.0 / 16777216.0)
    bound = np.float32(max_index + 1)  # a move this long reaches an end anyway; int() of ±inf, NaN is undefined
    step = int(kf) if abs(kf) < bound else (int(bound) if kf > 0 else -int(bound))
    # u < p only if u ≤ the cap (``_CAP_MARGIN``); most proposals are far below a step and skip the table
    if u <= np.float32(j + 1) * (table[1] * np.float32(_CAP_MARGIN)):
        p = table[2 * j] + (x - np.float32(j)) * table[2 * j + 1]
        if u < p:
            if nu > 0:
                step += 1
            elif nu < 0:
                step -= 1
    old = int(idx[i])
    new = min(max(old + step, 0), max_index)
    idx[i] = new
    return abs(new - old)


def _block(n: int, gather: bool = False):
    """An intrinsic ``block(idx, dw, start, inv_step, table, s32, max_index)``: ``_dst_one`` for weights
    start … start+n−1 at once, in LLVM IR on vectors of n lanes: the same float32 operations in the same order
    (no fused multiply-add), the hash in 32-bit lanes, each lane's interval of the table (start and rise) read
    as one 8-byte value — by n scalar loads, or with ``gather`` by one vector gather.  numba types the hash's
    32-bit products as 64-bit ones, and LLVM then leaves ``_dst_kernel``'s loop scalar on AVX2 (no 64-bit
    vector multiply) and vectorizes it elsewhere as it sees fit (on the Emerald Rapids: 256-bit vectors, two
    4-byte gathers per weight; docs/BENCHMARKS.md, sessions 13 and 14).  Returns the block's moves (int64).  No
    bounds are checked: start + n ≤ len(idx) = len(dw).  Where a float → int conversion is undefined (a proposal
    that is not finite, or κ beyond the int range) both clamp first, alike: κ to ±(max_index + 1) (−, for a
    NaN), which changes no other result (a move of that size reaches an end of the space anyway), and a NaN's
    table index to the table's end — an answer inside the space, never a read outside the table."""

    @intrinsic
    def block(typingctx, idx, dw, start, inv_step, table, s32, max_index):
        ok = (any(c_array(idx, d, 1, writable=True) for d in (types.int8, types.int16))
              and c_array(dw, types.float32, 1) and c_array(table, types.float32, 1) and inv_step == types.float32
              and all(isinstance(a, types.Integer) for a in (start, s32, max_index)))
        if not ok:
            return None
        return types.int64(idx, dw, start, inv_step, table, s32, max_index), partial(_block_ir, n, gather, idx)

    return block


def _block_ir(n, gather, idx, context, builder, signature, args):
    """The IR of ``_block(n, gather)`` (its docstring)."""
    i8w = idx.dtype.bitwidth
    f32, i32, i64 = ir.FloatType(), ir.IntType(32), ir.IntType(64)
    vf, vi = ir.VectorType(f32, n), ir.VectorType(i32, n)
    vx = ir.VectorType(ir.IntType(i8w), n)
    idx_a, dw_a, table_a = (context.make_array(signature.args[k])(context, builder, args[k]) for k in (0, 1, 4))
    first = context.cast(builder, args[2], signature.args[2], types.int64)
    seed = builder.trunc(context.cast(builder, args[5], signature.args[5], types.int64), i32)
    top = builder.trunc(context.cast(builder, args[6], signature.args[6], types.int64), i32)
    lanes = lambda c: ir.Constant(vi, [c] * n)  # noqa: E731
    fl = lambda c: ir.Constant(vf, [c] * n)  # noqa: E731

    def splat(value, vt):
        return _splat(builder, value, vt)

    def call(name, vt, *values):
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vt, [v.type for v in values]), name)
        return builder.call(fn, list(values))

    L = builder.trunc(builder.lshr(cgutils.unpack_tuple(builder, table_a.shape)[0], ir.Constant(i64, 1)), i32)
    Lf = splat(builder.sitofp(L, f32), vf)
    last = builder.sub(L, ir.Constant(i32, 1))
    t = builder.load(builder.bitcast(builder.gep(dw_a.data, [first]), vf.as_pointer()), align=4)
    t = builder.fmul(t, splat(args[3], vf))
    kf = call(f"llvm.trunc.v{n}f32", vf, t)
    nu = builder.fsub(t, kf)
    x = builder.fmul(call(f"llvm.fabs.v{n}f32", vf, nu), Lf)
    lastf = splat(builder.sitofp(last, f32), vf)
    j = builder.fptosi(builder.select(builder.fcmp_ordered("<", x, lastf), x, lastf), vi)  # min(int(x), L−1)
    # the hash of (seed, i), i = start + lane, in 32-bit lanes
    i0 = splat(builder.trunc(first, i32), vi)
    h = builder.add(builder.mul(builder.add(i0, ir.Constant(vi, list(range(n)))), lanes(_GOLDEN)),
                    splat(seed, vi))
    h = builder.xor(h, builder.lshr(h, lanes(16)))
    h = builder.mul(h, lanes(_M1))
    h = builder.xor(h, builder.lshr(h, lanes(15)))
    h = builder.mul(h, lanes(_M2))
    h = builder.xor(h, builder.lshr(h, lanes(16)))
    u = builder.fmul(builder.uitofp(builder.lshr(h, lanes(8)), vf), fl(1.0 / 16777216.0))
    # the table is read only if some lane's u is under its cap (``_CAP_MARGIN``)
    tau1 = builder.load(builder.gep(table_a.data, [ir.Constant(i64, 1)]))
    cap = builder.fmul(builder.sitofp(builder.add(j, lanes(1)), vf),
                       splat(builder.fmul(tau1, ir.Constant(f32, _CAP_MARGIN)), vf))
    under = builder.fcmp_ordered("<=", u, cap)
    vbool = ir.VectorType(ir.IntType(1), n)
    some = call(f"llvm.vector.reduce.or.v{n}i1", ir.IntType(1), under)
    with builder.if_else(some, likely=False) as (read, skip):
        with read:
            below_read = builder.fcmp_ordered("<", u, _interpolated(n, gather, builder, table_a, j, x, call))
            read_end = builder.block
        with skip:
            skip_end = builder.block
    below = builder.phi(vbool)
    below.add_incoming(below_read, read_end)
    below.add_incoming(ir.Constant(vbool, [0] * n), skip_end)
    bound = builder.sitofp(builder.add(top, ir.Constant(i32, 1)), f32)
    kc = call(f"llvm.minnum.v{n}f32", vf, call(f"llvm.maxnum.v{n}f32", vf, kf, splat(builder.fsub(
        ir.Constant(f32, 0.0), bound), vf)), splat(bound, vf))
    sign = builder.sub(builder.zext(builder.fcmp_ordered(">", nu, fl(0.0)), vi),
                       builder.zext(builder.fcmp_ordered("<", nu, fl(0.0)), vi))
    step = builder.add(builder.fptosi(kc, vi), builder.select(below, sign, lanes(0)))
    at = builder.bitcast(builder.gep(idx_a.data, [first]), vx.as_pointer())
    old = builder.sext(builder.load(at, align=1), vi)
    new = builder.add(old, step)
    new = builder.select(builder.icmp_signed("<", new, lanes(0)), lanes(0), new)
    top_v = splat(top, vi)
    new = builder.select(builder.icmp_signed(">", new, top_v), top_v, new)
    builder.store(builder.trunc(new, vx), at, align=1)
    diff = builder.sub(new, old)
    moved = builder.select(builder.icmp_signed("<", diff, lanes(0)), builder.neg(diff), diff)
    total = call(f"llvm.vector.reduce.add.v{n}i32", i32, moved)
    return builder.sext(total, i64)


def _interpolated(n, gather, builder, table_a, j, x, call):
    """p = τ_j + (x − j)·(τ_{j+1} − τ_j) per lane, interval j's two values read as one 8-byte entry."""
    f32, i32, i64 = ir.FloatType(), ir.IntType(32), ir.IntType(64)
    vf, vi = ir.VectorType(f32, n), ir.VectorType(i32, n)
    v64 = ir.VectorType(i64, n)
    if gather:  # entry j and the difference to entry j+1 as one 8-byte value per lane, one vector gather
        at = builder.add(_splat(builder, builder.ptrtoint(table_a.data, i64), v64),
                         builder.shl(builder.zext(j, v64), ir.Constant(v64, [3] * n)))
        pointers = builder.inttoptr(at, ir.VectorType(i64.as_pointer(), n))
        every = ir.Constant(ir.VectorType(ir.IntType(1), n), [1] * n)
        both = call(f"llvm.masked.gather.v{n}i64.v{n}p0i64", v64, pointers, ir.Constant(i32, 4), every,
                    ir.Constant(v64, ir.Undefined))
    else:  # … one 8-byte load per lane
        both = ir.Constant(v64, ir.Undefined)
        for lane in range(n):
            k = builder.zext(builder.extract_element(j, ir.Constant(i32, lane)), i64)
            at = builder.gep(table_a.data, [builder.shl(k, ir.Constant(i64, 1))])
            both = builder.insert_element(both, builder.load(builder.bitcast(at, i64.as_pointer()), align=4),
                                          ir.Constant(i32, lane))
    both = builder.bitcast(both, ir.VectorType(f32, 2 * n))
    lo = builder.shuffle_vector(both, both, ir.Constant(vi, list(range(0, 2 * n, 2))))
    step_ = builder.shuffle_vector(both, both, ir.Constant(vi, list(range(1, 2 * n, 2))))
    return builder.fadd(lo, builder.fmul(builder.fsub(x, builder.sitofp(j, vf)), step_))


@numba.njit(parallel=True, cache=True, nogil=True)
def _dst_kernel(idx, dw, inv_step, table, seed, max_index):  # pragma: no cover - compiled
    """One DST step on idx in place, one weight per iteration (``_dst_one``); returns the moves.  Where the CPU
    has AVX-512, LLVM vectorizes this loop itself (its table reads as gathers)."""
    s32 = np.uint32(seed)
    moves = 0
    for i in numba.prange(idx.shape[0]):
        moves += _dst_one(idx, dw, i, inv_step, table, s32, max_index)
    return moves


_block8, _block16, _gather8, _gather16 = _block(8), _block(16), _block(8, True), _block(16, True)
BLOCK_KINDS = ("blocks8", "blocks16", "gathers8", "gathers16")
"""``_dst_kernel_blocks``'s ``kind``: 8 or 16 lanes (an AVX2 or an AVX-512 register of float32), by loads or a
gather."""


@numba.njit(parallel=True, cache=True, nogil=True)
def _dst_kernel_blocks(idx, dw, inv_step, table, seed, max_index, kind):  # pragma: no cover - compiled
    """``_dst_kernel`` in blocks of ``_block``'s (``BLOCK_KINDS[kind]``: its width and how it reads the table),
    then the last n mod width weights one at a time."""
    width = 16 if kind % 2 else 8
    n = idx.shape[0]
    blocks = n // width
    s32 = np.uint32(seed)
    moves = 0
    for b in numba.prange(blocks):
        if kind == 0:
            moves += _block8(idx, dw, b * 8, inv_step, table, s32, max_index)
        elif kind == 1:
            moves += _block16(idx, dw, b * 16, inv_step, table, s32, max_index)
        elif kind == 2:
            moves += _gather8(idx, dw, b * 8, inv_step, table, s32, max_index)
        elif kind == 3:
            moves += _gather16(idx, dw, b * 16, inv_step, table, s32, max_index)
    for i in range(blocks * width, n):
        moves += _dst_one(idx, dw, i, inv_step, table, s32, max_index)
    return moves


KERNELS = {"loop": _dst_kernel, **{name: partial(_dst_kernel_blocks, kind=k) for k, name in enumerate(BLOCK_KINDS)}}
"""The CPU kernels of one DST step, all bit-identical to ``dst_update_torch`` (tested); ``_kernel`` picks one.
Only ``BLOCK_KINDS``' four kinds are built: another would run no block (the kernel checks no bounds)."""
SAMPLE_WEIGHTS = 1 << 16  # the proposals ``_kernel`` times each kernel on


@cache
def _kernel():
    """The fastest of ``KERNELS`` on this machine, measured once per process (``kernels.time_candidates`` on
    ``SAMPLE_WEIGHTS`` ternary weights, half of them with proposals of about a thousandth of a step — Adam's
    scale at lr 10⁻³, where the blocks skip the table almost always (``_CAP_MARGIN``) — and half with a tenth,
    where every block reads it (a larger learning rate's) — numba's threads as set now).
    Which wins follows the CPU in ways no feature flag tells: on an AVX2-only Zen 2 LLVM leaves the loop
    scalar, and blocks of eight by loads won (a gather was slower there); for fc1's 524 288 weights on one
    thread, with proposals of 10⁻³ of a step and before the blocks skipped the table, a Zen 4 took 0.87–1.17 ms
    by the loop (LLVM vectorizes it with gathers there), 0.64–0.76 and 0.57–0.68 by blocks of eight and sixteen
    by loads, 0.73–0.90 and 0.58–0.74 by a gather; an Intel Emerald Rapids (580 000 weights, proposals of 10⁻¹)
    1.46 ms by the loop, 1.08 and 0.77 by loads, 0.88 and 0.54 by a gather.  With the skip, on the Zen 4: the
    loop 1.0–1.3 ms, every block kind 0.34–0.37 (docs/BENCHMARKS.md, sessions 13–15).  The choice changes the
    time only."""
    from .kernels import time_candidates

    g = np.random.default_rng(0)
    scale = np.where(np.arange(SAMPLE_WEIGHTS) < SAMPLE_WEIGHTS // 2, 1e-3, 1e-1)  # blocks that skip, that read
    dw = (g.standard_normal(SAMPLE_WEIGHTS) * scale).astype(np.float32)
    idx = g.integers(0, 3, SAMPLE_WEIGHTS).astype(np.int8)
    table = _interval_table(3.0)
    best = time_candidates(list(KERNELS), lambda name: KERNELS[name](idx, dw, np.float32(1.0), table, 1, 2))
    return KERNELS[min(best, key=best.get)]


@lru_cache(maxsize=32)
def _device_table(m: float, device: torch.device) -> torch.Tensor:
    """tau_table on a device, copied there once (not on every step)."""
    return torch.from_numpy(tau_table(m)).to(device)


def _hash_uniform(n: int, seed: int, device: torch.device) -> torch.Tensor:
    """The kernel's per-weight uniform numbers u ∈ [0, 1), as torch ops (int64, masked to 32 bits)."""
    h = (torch.arange(n, device=device, dtype=torch.int64) * _GOLDEN + seed) & _MASK32
    h = h ^ (h >> 16)
    h = (h * _M1) & _MASK32
    h = h ^ (h >> 15)
    h = (h * _M2) & _MASK32
    h = h ^ (h >> 16)
    return (h >> 8).to(torch.float32) * (1.0 / 16777216.0)


def dst_update_torch(
    idx: torch.Tensor, delta_w: torch.Tensor, space: DiscreteSpace, m: float, seed: int
) -> tuple[torch.Tensor, int]:
    """DST in torch ops, for any device; returns (new indices written into idx, moves)."""
    flat = idx.view(-1)
    t = delta_w.reshape(-1).to(torch.float32) * np.float32(1.0 / space.step)
    kf = torch.trunc(t)
    nu = t - kf
    lut = _device_table(float(m), t.device)
    x = nu.abs() * np.float32(LUT_INTERVALS)
    last = np.float32(LUT_INTERVALS - 1)
    j = torch.where(x < last, x, last).to(torch.int64)  # min(int(x), L − 1), and L − 1 for a NaN (as the kernels)
    lo = lut[j]
    p = lo + (x - j.to(torch.float32)) * (lut[j + 1] - lo)
    u = _hash_uniform(flat.numel(), seed, t.device)
    bound = np.float32(space.max_index + 1)  # κ clamped as the kernels clamp it (NaN → −bound)
    kc = torch.where(kf.abs() < bound, kf, torch.where(kf > 0, bound, -bound))
    sign = (nu > 0).to(torch.int64) - (nu < 0).to(torch.int64)
    step = kc.to(torch.int64) + sign * (u < p)
    old = flat.to(torch.int64)
    new = (old + step).clamp_(0, space.max_index)
    flat.copy_(new)
    return idx, int((new - old).abs().sum())


def draw_seed(generator: torch.Generator | None) -> int:
    """One 32-bit seed from the generator (the only randomness a DST step consumes)."""
    return int(torch.randint(0, 2**32, (1,), generator=generator, dtype=torch.int64))


def dst_apply(
    idx: torch.Tensor,
    delta_w: torch.Tensor,
    space: DiscreteSpace,
    m: float,
    generator: torch.Generator | None = None,
) -> int:
    """One DST step on idx in place; returns the number of state moves (every step counted)."""
    if idx.dtype != space.index_dtype:
        raise TypeError(f"state indices must be {space.index_dtype}, got {idx.dtype}")
    if delta_w.shape != idx.shape:
        raise ValueError(f"delta_w shape {tuple(delta_w.shape)} != idx shape {tuple(idx.shape)}")
    seed = draw_seed(generator)
    if idx.device.type == "cpu" and idx.is_contiguous():
        sync_threads()
        dw = delta_w.detach().to(torch.float32).contiguous()
        return int(
            _kernel()(
                idx.view(-1).numpy(),
                dw.view(-1).numpy(),
                np.float32(1.0 / space.step),
                _interval_table(float(m)),
                seed,
                space.max_index,
            )
        )
    return dst_update_torch(idx, delta_w.detach(), space, m, seed)[1]


def dst_update(
    idx: torch.Tensor,
    delta_w: torch.Tensor,
    space: DiscreteSpace,
    m: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One DST step (docs/METHOD.md §3) on the integer state tensor idx, in place; returns idx.

    Deterministic for a given generator state.
    """
    dst_apply(idx, delta_w, space, m, generator)
    return idx


@dataclass(frozen=True)
class BaseRule:
    """A base rule that proposes Δw (``dst.optimizer``): ``make(groups, lr)`` builds the stock torch
    optimizer; ``floats_per_weight`` is the state it keeps per discrete weight; ``help`` its docstring."""

    name: str
    make: Callable[[list[dict], float], torch.optim.Optimizer]
    floats_per_weight: int
    help: str


OPTIMIZERS: dict[str, BaseRule] = {}
"""Registered base rules by name, in the order the config's ``dst.optimizer`` lists them."""


def register_optimizer(floats_per_weight: int):
    def deco(fn):
        OPTIMIZERS[fn.__name__] = BaseRule(fn.__name__, fn, floats_per_weight, " ".join((fn.__doc__ or "").split()))
        return fn

    return deco


@register_optimizer(floats_per_weight=0)
def sgd(groups: list[dict], lr: float) -> torch.optim.Optimizer:
    """Plain SGD: Δw = -lr·g."""
    return torch.optim.SGD(groups, lr=lr)


@register_optimizer(floats_per_weight=1)
def momentum(groups: list[dict], lr: float) -> torch.optim.Optimizer:
    """SGD with momentum 0.9."""
    return torch.optim.SGD(groups, lr=lr, momentum=0.9)


@register_optimizer(floats_per_weight=2)
def adam(groups: list[dict], lr: float) -> torch.optim.Optimizer:
    """Adam with torch's defaults (fused kernel)."""
    return torch.optim.Adam(groups, lr=lr, fused=True)


class LayerRMSStep(torch.optim.Optimizer):
    """Δw = −lr · g / RMS(g), the RMS taken over each parameter tensor (one layer's weights, one BN vector).

    Stateless (*ours*, docs/METHOD.md §3): the normaliser is a statistic of the current gradient of the whole
    layer, computed and dropped within the step, so nothing is kept per weight between steps.  Like Adam, the
    step size is set by lr whatever the gradient's scale (the mean |Δw| is about lr), which is what plain SGD
    lacks: its proposals are far below one state step and DST rarely moves.  Unlike Adam, the weights of a
    layer keep their relative gradient sizes.
    """

    def __init__(self, params, lr: float, eps: float = 1e-12):
        super().__init__(params, {"lr": lr, "eps": eps})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                rms = p.grad.square().mean().sqrt().clamp_(min=group["eps"])
                p.sub_(p.grad * (group["lr"] / rms))


@register_optimizer(floats_per_weight=0)
def layer_rms(groups: list[dict], lr: float) -> torch.optim.Optimizer:
    """Layer-normalised gradient step: Δw = −lr·g / RMS of g over the layer (no per-weight state)."""
    return LayerRMSStep(groups, lr=lr)


def optimizer_state_bytes(opt: torch.optim.Optimizer, params: list[torch.Tensor]) -> int:
    """Bytes of the per-element state ``opt`` keeps for ``params`` (moments, momentum buffers; scalar step
    counters are not per element and are left out)."""
    return sum(v.numel() * v.element_size() for p in params for v in opt.state.get(p, {}).values()
               if torch.is_tensor(v) and v.numel() > 1)


def make_base_optimizer(name: str, groups: list[dict], lr: float) -> torch.optim.Optimizer:
    """The registered base rule ``name`` over ``groups``."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown base rule {name!r}; registered: {sorted(OPTIMIZERS)}")
    return OPTIMIZERS[name].make(groups, lr)


class LayerOptimizer:
    """What ``DSTOptimizer`` and ``gxnor_core.latent.LatentOptimizer`` share: a stock base optimizer (``base``)
    whose first group holds the weight layers' parameters when there are weight layers (``layers``), the other
    the float parameters; per-layer state-move counts (``moves``); the optimizer's state for checkpoints."""

    layers: list
    base: torch.optim.Optimizer
    moves: list[int]

    def set_lr(self, lr: float, lr_float: float | None = None) -> None:
        """``lr`` for the weight layers' group (the first, when there are any), ``lr_float`` (None: ``lr``) for
        the float parameters (the other group)."""
        for i, group in enumerate(self.base.param_groups):
            weights = i == 0 and bool(self.layers)
            group["lr"] = lr if weights or lr_float is None else lr_float

    def zero_grad(self) -> None:
        self.base.zero_grad(set_to_none=True)

    def take_moves(self) -> list[int]:
        """State moves per weight layer since the last call."""
        out, self.moves = self.moves, [0] * len(self.layers)
        return out

    def state_dict(self) -> dict:
        return self.base.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.base.load_state_dict(state)


class DSTOptimizer(LayerOptimizer):
    """Base rule proposes, DST assigns (docs/METHOD.md §3); other parameters train normally.

    The base rule is a stock torch optimizer.  For each discrete layer it owns a
    *proposal* parameter that is all zeros when a step starts, so after the base
    step it holds exactly the rule's Δw (momentum/Adam state included); DST turns
    that into state moves and the scratch is released.  Persistent state per
    discrete weight is therefore the int state plus whatever the base rule keeps
    (SGD: nothing, momentum: one float, Adam: two).  BatchNorm γ/β and any float
    weights sit in the same optimizer, in a group of their own (so they can have their own learning
    rate, ``train.lr_float``), and take the rule's assignment.
    """

    def __init__(self, model: torch.nn.Module, base: str, lr: float, m: float,
                 generator: torch.Generator | None = None):
        self.layers = model.discrete_layers()
        self.space = self.layers[0].space if self.layers else None
        self.m = float(m)
        self.generator = generator
        device = next(model.buffers()).device
        self._empty = torch.empty(0, device=device)
        self.proposals = [torch.nn.Parameter(self._empty) for _ in self.layers]
        groups = [{"params": self.proposals}] if self.proposals else []
        params = list(model.parameters())
        if params:
            groups.append({"params": params})
        self.base = make_base_optimizer(base, groups, lr)
        self.moves = [0] * len(self.layers)

    def step(self) -> None:
        for layer, p in zip(self.layers, self.proposals):
            grad = layer.value.grad
            p.data = torch.zeros_like(grad)
            p.grad = grad
        self.base.step()
        for i, (layer, p) in enumerate(zip(self.layers, self.proposals)):
            self.moves[i] += dst_apply(layer.state, p.data, self.space, self.m, self.generator)
            p.data, p.grad = self._empty, None
            layer.release()

    def persistent_bytes(self) -> int:
        """Bytes kept between steps for the discrete weights: states + base-rule state."""
        states = sum(layer.state.numel() * layer.state.element_size() for layer in self.layers)
        return states + optimizer_state_bytes(self.base, self.proposals)
