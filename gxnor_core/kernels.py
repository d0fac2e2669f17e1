"""Ternary × ternary matrix products, exact in integers: the gated XNOR (docs/METHOD.md §4) on a CPU.

For operands in {-1, 0, +1}, each row is kept as two bit-planes, mask m = [v ≠ 0] and sign q = [v < 0], packed
64 to a word.  A dot product is then

    x·w = popcount(g) − 2·popcount((q_x ⊕ q_w) ∧ g),   g = m_x ∧ m_w

(g is the set of open gates; among them the products whose signs differ are −1, the others +1).  Four kernels
compute the same integers (docs/EXPORT.md, "Kernels"; as int32, or for ``onednn`` as float32, exactly):

- ``popcount``: that formula in compiled tiles whose accumulators stay in vector registers (``_tile``: LLVM
  IR).  Where the CPU has AVX-512 VPOPCNTDQ, tiles of 4 rows × 16 outputs (1 × 32 for a single row) count
  64-bit words, one VPOPCNTQ per 8 words; elsewhere tiles of 1 row × 16 outputs count bytes (AVX2: a table
  shuffle per nibble) and widen the byte counts every 31 words (``tiles``); bit arithmetic on a CPU without
  vector shuffles.  A word with no open gate in any row of the tile is skipped.  Activations are packed 64 trits per
  vector compare (``pack``), a convolution's patches straight from the packed image (``patch_planes``), and a
  small product runs on the calling thread (``serial``).
- ``int8``: ``torch._int_mm`` on the unpacked {-1, 0, 1} int8 operands (int32 accumulation; PyTorch picks its
  own CPU code path at run time).
- ``onednn``: oneDNN's int8 inner product (``torch.ops.onednn.qlinear_pointwise``, the op PyTorch's own x86
  quantization runs) with the weights reordered once into its blocked layout (``qlinear_prepack``): AMX tiles or
  VNNI where the CPU has them.  Unit scales, the activations as uint8 trit + 1 with zero point 1, the weights'
  zero point 0, float32 output, returned as it is: the sums are integers below 2²⁴, so exact.  Where PyTorch
  lacks the op, or its answer on a probe product is not exact, or oneDNN runs it slowly (``onednn_int8``), it
  runs ``int8``'s product instead — the same integers.  A convolution can skip the
  im2col (``onednn_conv2d``).
- ``portable``: the bit-plane formula in numpy with a byte-table popcount: no JIT, no instruction-set
  assumption.  Slow; it exists so any machine can check the others (``GXNOR_ENGINE_KERNEL=portable``).

All four are exact, so which one runs never changes an answer — only how long it takes.  Gate events are
not counted inside a kernel: Σ_rows Σ_outputs popcount(g) = Σ_k (rows with x_k ≠ 0)·(outputs with w_k ≠ 0),
which ``gate_events`` computes from column counts in O(R·K + O·K).
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, cached_property, partial

import numba
import numpy as np
import torch
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic
from numpy.lib.stride_tricks import as_strided

from ._llvm import c_array, target_features
from ._llvm import splat as _splat
from ._threads import sync_threads

WORD = 64
ONEDNN_PROBE_LIMIT = 20.0  # oneDNN at most this many times fp32's time on a probe product (``onednn_int8``)
ONEDNN_PROBE_ATTEMPTS = 3  # … in one of this many attempts
OUTPUT_CHUNK = 128  # outputs per task of the popcount kernel: 128 × 16 bytes of weight planes per input word


@dataclass(frozen=True)
class Planes:
    """Rows of a {-1, 0, 1} matrix as bit-planes: ``mask`` [v ≠ 0] and ``sign`` [v < 0], (rows, words) uint64,
    bit k of a row at word k // 64, bit k % 64 (bits past the row's length are 0)."""

    mask: np.ndarray
    sign: np.ndarray
    length: int


def conv_out_size(h: int, w: int, k: int, padding: int, stride: int) -> tuple[int, int]:
    """(Ho, Wo) of a k×k convolution of an H×W image with ``padding`` and ``stride``."""
    return (h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1


def _words(length: int) -> int:
    """64-bit words per bit-plane row of ``length`` values (at least one)."""
    return max(1, -(-length // WORD))


def pack_numpy(x: np.ndarray) -> Planes:
    """Bit-planes of the rows of a 2-D int8 array with values in {-1, 0, 1}, with numpy's ``packbits`` (no JIT:
    the portable kernel's, and the weights' once per model)."""
    rows, k = x.shape
    words = _words(k)
    planes = []
    for bits in (x != 0, x < 0):
        packed = np.packbits(bits, axis=1, bitorder="little")
        full = np.zeros((rows, words * 8), dtype=np.uint8)
        full[:, :packed.shape[1]] = packed
        planes.append(full.view("<u8").astype(np.uint64, copy=False))
    return Planes(planes[0], planes[1], k)


@intrinsic
def _word_bits(typingctx, x, r, start):
    """(mask, sign) of the 64 int8 trits x[r, start : start + 64] (C-contiguous int8 x): one 64-byte vector
    load and two comparisons whose 64 one-bit results are the word — on AVX-512BW a VPTESTMB and a VPMOVB2M,
    with AVX2 byte compares and VPMOVMSKB, on any other CPU whatever LLVM lowers them to (exact everywhere)."""
    if not c_array(x, types.int8) or not all(isinstance(t, types.Integer) for t in (r, start)):
        return None
    result = types.UniTuple(types.uint64, 2)

    def codegen(context, builder, signature, args):
        array = context.make_array(signature.args[0])(context, builder, args[0])
        row, first = (context.cast(builder, args[i], signature.args[i], types.int64) for i in (1, 2))
        at = builder.add(builder.mul(row, cgutils.unpack_tuple(builder, array.shape)[1]), first)
        bytes64 = ir.VectorType(ir.IntType(8), 64)
        v = builder.load(builder.bitcast(builder.gep(array.data, [at]), bytes64.as_pointer()), align=1)
        zero = ir.Constant(bytes64, [0] * 64)
        word = ir.IntType(64)
        mask = builder.bitcast(builder.icmp_signed("!=", v, zero), word)
        sign = builder.bitcast(builder.icmp_signed("<", v, zero), word)
        return context.make_tuple(builder, result, [mask, sign])

    return result(x, r, start), codegen


@numba.njit(nogil=True, inline="always")
def _pack_row(x, r, mask, sign):  # pragma: no cover - compiled
    """Row r of x as planes: each full word of 64 trits by ``_word_bits``; a last, partial word from the 64
    trits that end the row, shifted down (rows of fewer than 64 trits, one bit at a time)."""
    k = x.shape[1]
    full = k // WORD
    for w in range(full):
        mask[r, w], sign[r, w] = _word_bits(x, r, w * WORD)
    tail = k - full * WORD
    if tail == 0:
        return
    if full:
        m, s = _word_bits(x, r, k - WORD)
        shift = np.uint64(WORD - tail)
        mask[r, full], sign[r, full] = m >> shift, s >> shift
        return
    m = np.uint64(0)
    s = np.uint64(0)
    for i in range(k):
        v = x[r, i]
        m |= np.uint64(v != 0) << np.uint64(i)
        s |= np.uint64(v < 0) << np.uint64(i)
    mask[r, 0], sign[r, 0] = m, s


@numba.njit(parallel=True, cache=True, nogil=True)
def _pack_kernel(x, mask, sign):  # pragma: no cover - compiled
    for r in numba.prange(x.shape[0]):
        _pack_row(x, r, mask, sign)


@numba.njit(cache=True, nogil=True)
def _pack_serial(x, mask, sign):  # pragma: no cover - compiled
    for r in range(x.shape[0]):
        _pack_row(x, r, mask, sign)


SERIAL_WORK = 1 << 16  # rows × words × outputs below which a product runs on the calling thread


def _work(rows: int, inputs: int, w: TernaryMatrix) -> int:
    """A product's row × word × output triples (outputs rounded up to whole tiles, as the loops run them);
    below ``SERIAL_WORK`` it is small."""
    return rows * _words(inputs) * w.tile_outputs


def serial(work: int) -> bool:
    """Whether a kernel of this much work runs on the calling thread: always with one thread, and for a small
    product, where starting numba's parallel region (a few µs) would cost more than it shares out."""
    if work < SERIAL_WORK:
        return True  # (no thread count to read: asking numba for it costs ~1.5 µs, a batch-1 layer's third)
    sync_threads()
    return numba.get_num_threads() == 1


def pack(x: np.ndarray) -> Planes:
    """``pack_numpy``'s planes by a compiled loop (activations are packed on every call: ``_pack_row``), on the
    calling thread where ``serial`` says so."""
    x = np.ascontiguousarray(x, dtype=np.int8)
    mask = np.empty((x.shape[0], _words(x.shape[1])), dtype=np.uint64)
    sign = np.empty_like(mask)
    if x.shape[1] == 0:
        mask[:], sign[:] = 0, 0
    elif serial(x.size // WORD):
        _pack_serial(x, mask, sign)
    else:
        _pack_kernel(x, mask, sign)
    return Planes(mask, sign, x.shape[1])


def patch_planes(x: np.ndarray, k: int, padding: int, stride: int) -> tuple[Planes, tuple[int, int]]:
    """``pack(im2col(x, k, padding, stride)[0])`` of channels-last trits x (N, H, W, C) without the int8 im2col:
    where C is a multiple of 8, each image is packed once as one row (a pixel's C channels are then C/8 whole
    bytes of its planes), and a patch row is k² of those byte runs side by side (``_image_patches``, compiled,
    an image per task) — bit k of the row is input k of the patch, as in ``pack`` — so the image is packed
    once instead of k² times and the patches move an eighth of the bytes.  Other C: the im2col, then
    ``pack``.  Returns the planes and (Ho, Wo)."""
    n, h, w, c = x.shape
    if c % 8:
        cols, out_size = im2col(x, k, padding, stride)
        return pack(cols), out_size
    image = pack(np.ascontiguousarray(x).reshape(n, h * w * c))
    # copied in the widest unit that divides a pixel's bytes (a 32-channel pixel is one uint32 per plane)
    unit = next(np.dtype(f"u{size}") for size in (8, 4, 2, 1) if (c // 8) % size == 0)
    ho, wo = conv_out_size(h, w, k, padding, stride)
    width = _words(k * k * c) * WORD // 8 // unit.itemsize
    mask = np.empty((n * ho * wo, width), dtype=unit)
    sign = np.empty_like(mask)
    args = (image.mask.view(unit), image.sign.view(unit), h, w, c // 8 // unit.itemsize, k, padding, stride, ho,
            wo, mask, sign)
    (_patches_serial if serial(mask.size) else _patches_kernel)(*args)
    return Planes(mask.view(np.uint64), sign.view(np.uint64), k * k * c), (ho, wo)


@numba.njit(nogil=True, inline="always")
def _image_patches(b, pm, ps, h, w, u, k, padding, stride, ho, wo, om, os_):  # pragma: no cover - compiled
    """Image b's patch rows of both planes: pm/ps (N, units) hold each image's pixels (u units each, rows of
    w pixels); om/os_ rows (b·Ho + i)·Wo + j get the k rows of k pixels of each patch side by side, zeros for
    padding and past the k·k·u units (to the rows' width).  A kernel row inside the image is one contiguous
    run of k·u units."""
    width = om.shape[1]
    run = k * u
    zero = om.dtype.type(0)
    for i in range(ho):
        for j in range(wo):
            r = (b * ho + i) * wo + j
            x0 = j * stride - padding
            for ki in range(k):
                y = i * stride + ki - padding
                col = ki * run
                if 0 <= y < h and x0 >= 0 and x0 + k <= w:
                    src = (y * w + x0) * u
                    for e in range(run):
                        om[r, col + e] = pm[b, src + e]
                        os_[r, col + e] = ps[b, src + e]
                else:
                    for kj in range(k):
                        x = x0 + kj
                        inside = 0 <= y < h and 0 <= x < w
                        for e in range(u):
                            at = col + kj * u + e
                            om[r, at] = pm[b, (y * w + x) * u + e] if inside else zero
                            os_[r, at] = ps[b, (y * w + x) * u + e] if inside else zero
            for e in range(k * run, width):
                om[r, e] = zero
                os_[r, e] = zero


@numba.njit(parallel=True, cache=True, nogil=True)
def _patches_kernel(pm, ps, h, w, u, k, padding, stride, ho, wo, om, os_):  # pragma: no cover - compiled
    for b in numba.prange(pm.shape[0]):
        _image_patches(b, pm, ps, h, w, u, k, padding, stride, ho, wo, om, os_)


@numba.njit(cache=True, nogil=True)
def _patches_serial(pm, ps, h, w, u, k, padding, stride, ho, wo, om, os_):  # pragma: no cover - compiled
    for b in range(pm.shape[0]):
        _image_patches(b, pm, ps, h, w, u, k, padding, stride, ho, wo, om, os_)


LANES = 8  # 64-bit words per LLVM vector in a word-counting tile (one AVX-512 register)
BYTE_LANES = 4  # … in a byte-counting tile (one AVX2 register: 32 bytes)
BYTE_BLOCK = 31  # words a byte-counting tile sums in bytes before widening: 31 × 8 bits ≤ 255
TILES_ENV = "GXNOR_POPCOUNT_TILES"
TILE_KINDS = ("words", "bytes")


def _tile(rows: int, vectors: int, counting: str = "words"):
    """A compiled tile: ``tile(xm, xs, r0, wm_t, ws_t, o0, out)`` writes the sums of rows r0 … r0+rows-1 against
    outputs o0 … o0 + lanes·vectors − 1 into ``out`` (int32, writable), all arrays C-contiguous (``xm``/``xs``
    (rows, words), ``wm_t``/``ws_t`` (words, outputs)); it checks no bounds: the callers keep r0 + rows ≤ rows of
    ``xm`` and o0 + lanes·vectors ≤ the padded outputs.  Written in LLVM IR because numba's loops keep their
    accumulators in memory: here they are vectors that stay in registers over the whole loop on words (two
    counts, popcount(g) and popcount(q ∧ g), combined at the end), each weight vector loaded once serves every
    row of the tile, and a word with no open gate in any of the rows is skipped.  Two ways to count
    (``tiles()`` picks one per CPU, docs/EXPORT.md "Kernels"):

    - ``words``: ``llvm.ctpop`` on vectors of eight 64-bit words, added to 64-bit lanes — one VPOPCNTQ per eight
      words with AVX-512 VPOPCNTDQ;
    - ``bytes``: ``llvm.ctpop`` on vectors of 32 bytes, added to byte lanes for up to 31 words (each adds at
      most 8), then widened to 64-bit lanes once — on a CPU without VPOPCNTQ the byte count is the primitive
      (AVX2: a table shuffle per nibble) and the widening per word that ``words`` would pay is saved.

    LLVM lowers either for the compiling CPU (bit arithmetic where it lacks vector shuffles too), so a tile is
    exact on any CPU."""
    lanes = LANES if counting == "words" else BYTE_LANES

    @intrinsic
    def tile(typingctx, xm, xs, r0, wm_t, ws_t, o0, out):
        if not (all(c_array(a, types.uint64) for a in (xm, xs, wm_t, ws_t)) and c_array(out, types.int32, 2, True)):
            return None  # refused at compile time: contiguous uint64 planes and a writable int32 output only
        if not (isinstance(r0, types.Integer) and isinstance(o0, types.Integer)):
            return None

        def codegen(context, builder, signature, args):
            i8, i32, i64 = ir.IntType(8), ir.IntType(32), ir.IntType(64)
            vec, vec32 = ir.VectorType(i64, lanes), ir.VectorType(i32, lanes)
            # what llvm.ctpop counts in: 64-bit words, or the same bits as bytes
            unit = vec if counting == "words" else ir.VectorType(i8, 8 * lanes)
            xm_a, xs_a, wm_a, ws_a, out_a = (context.make_array(signature.args[i])(context, builder, args[i])
                                             for i in (0, 1, 3, 4, 6))
            first = context.cast(builder, args[2], signature.args[2], types.int64)
            col = context.cast(builder, args[5], signature.args[5], types.int64)
            n_words = cgutils.unpack_tuple(builder, xm_a.shape)[1]
            n_outs = cgutils.unpack_tuple(builder, wm_a.shape)[1]
            out_cols = cgutils.unpack_tuple(builder, out_a.shape)[1]
            ctpop_fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(unit, [unit]),
                                                      f"llvm.ctpop.v{unit.count}i{unit.element.width}")
            const = lambda value: ir.Constant(vec, [value] * lanes)  # noqa: E731
            one, zero, zero_unit = const(1), const(0), ir.Constant(unit, [0] * unit.count)
            # allocas in the entry block: LLVM promotes them to registers
            slots = lambda init: [[cgutils.alloca_once_value(builder, init) for _ in range(vectors)]  # noqa: E731
                                  for _ in range(rows)]
            gates, differ, sums = slots(zero_unit), slots(zero_unit), slots(zero)

            def splat(value):
                return _splat(builder, value, vec)

            def add_to(slot, value):
                counts = builder.call(ctpop_fn, [builder.bitcast(value, unit)])
                builder.store(builder.add(builder.load(slot), counts), slot)

            def widened(slot):
                """The byte counts of a slot summed per 64-bit lane (in 16-, 32-, then 64-bit steps)."""
                x = builder.bitcast(builder.load(slot), vec)
                if counting == "bytes":
                    for bits, keep in ((8, 0x00FF00FF00FF00FF), (16, 0x0000FFFF0000FFFF), (32, 0xFFFFFFFF)):
                        low = builder.and_(x, const(keep))
                        x = builder.add(low, builder.and_(builder.lshr(x, const(bits)), const(keep)))
                return x

            def words(start, stop):
                with cgutils.for_range_slice(builder, start, stop, ir.Constant(i64, 1)) as (w, _):
                    at = [builder.add(builder.mul(builder.add(first, ir.Constant(i64, i)), n_words), w)
                          for i in range(rows)]
                    a = [builder.load(builder.gep(xm_a.data, [k])) for k in at]
                    any_open = a[0]
                    for value in a[1:]:
                        any_open = builder.or_(any_open, value)
                    with builder.if_then(builder.icmp_unsigned("!=", any_open, ir.Constant(i64, 0)), likely=True):
                        mask = [splat(v) for v in a]
                        sign = [splat(builder.load(builder.gep(xs_a.data, [k]))) for k in at]
                        base = builder.add(builder.mul(w, n_outs), col)
                        for v in range(vectors):
                            k = builder.add(base, ir.Constant(i64, lanes * v))
                            wm = builder.load(builder.bitcast(builder.gep(wm_a.data, [k]), vec.as_pointer()), align=8)
                            ws = builder.load(builder.bitcast(builder.gep(ws_a.data, [k]), vec.as_pointer()), align=8)
                            for i in range(rows):
                                g = builder.and_(mask[i], wm)
                                add_to(gates[i][v], g)
                                add_to(differ[i][v], builder.and_(builder.xor(sign[i], ws), g))

            def settle():
                """sums += popcount(g) − 2·popcount(q ∧ g) so far, the byte counts restarted."""
                for i in range(rows):
                    for v in range(vectors):
                        s = builder.sub(widened(gates[i][v]), builder.shl(widened(differ[i][v]), one))
                        builder.store(builder.add(builder.load(sums[i][v]), s), sums[i][v])
                        builder.store(zero_unit, gates[i][v])
                        builder.store(zero_unit, differ[i][v])

            if counting == "words":  # 64-bit lanes hold any count: one pass
                words(ir.Constant(i64, 0), n_words)
                settle()
            else:  # blocks of BYTE_BLOCK words: no byte overflows
                block = ir.Constant(i64, BYTE_BLOCK)
                n_blocks = builder.udiv(builder.add(n_words, ir.Constant(i64, BYTE_BLOCK - 1)), block)
                with cgutils.for_range(builder, n_blocks) as loop:
                    start = builder.mul(loop.index, block)
                    stop = builder.add(start, block)
                    words(start, builder.select(builder.icmp_unsigned("<", stop, n_words), stop, n_words))
                    settle()
            for i in range(rows):
                row = builder.add(builder.mul(builder.add(first, ir.Constant(i64, i)), out_cols), col)
                for v in range(vectors):
                    at = builder.gep(out_a.data, [builder.add(row, ir.Constant(i64, lanes * v))])
                    builder.store(builder.trunc(builder.load(sums[i][v]), vec32),
                                  builder.bitcast(at, vec32.as_pointer()), align=4)
            return context.get_dummy_value()

        return types.void(xm, xs, r0, wm_t, ws_t, o0, out), codegen

    return tile


TILE4_OUTPUTS = 2 * LANES  # four rows × 16 outputs: 16 vector accumulators, 4 weight vectors
TILE1_OUTPUTS = 4 * LANES  # one row × 32 outputs (batch-1 fully connected layers, a batch's last rows)
BYTE_TILE_OUTPUTS = 4 * BYTE_LANES  # one row × 16 outputs: 8 byte accumulators (the 16 registers of AVX2)
# one padding serves both kinds, and an output chunk is whole tiles (the loops check no bounds)
assert TILE1_OUTPUTS % TILE4_OUTPUTS == 0 and TILE4_OUTPUTS == BYTE_TILE_OUTPUTS
assert OUTPUT_CHUNK % TILE4_OUTPUTS == 0
_tile4 = _tile(4, TILE4_OUTPUTS // LANES)
_tile1 = _tile(1, TILE1_OUTPUTS // LANES)
_tile1_half = _tile(1, TILE4_OUTPUTS // LANES)
_tile_bytes = _tile(1, BYTE_TILE_OUTPUTS // BYTE_LANES, "bytes")


@cache
def tiles() -> str:
    """The tiles ``popcount`` runs: ``words`` where the CPU counts 64-bit words in vectors (AVX-512 VPOPCNTDQ),
    ``bytes`` elsewhere — measured on an AVX2-only CPU (Zen 2), the byte tile takes 0.87–0.94× the word tile's
    time on products of 64 rows or more, about the same on a single row (docs/BENCHMARKS.md, session 13).
    ``GXNOR_POPCOUNT_TILES`` forces one (both are exact everywhere: a test compares them); read once per
    process."""
    forced = os.environ.get(TILES_ENV) or None
    if forced is not None and forced not in TILE_KINDS:
        raise ValueError(f"{TILES_ENV}={forced!r}: one of {', '.join(TILE_KINDS)}")
    return forced or ("words" if "avx512vpopcntdq" in target_features() else "bytes")


@numba.njit(nogil=True, cache=True)
def _rows4(xm, xs, r0, wm_t, ws_t, out, o0, o1, words):  # pragma: no cover - compiled
    """Rows r0 … r0+3 against outputs o0 … o1-1 (o1 − o0 a multiple of 16: the weights' planes are padded)."""
    for o in range(o0, o1, TILE4_OUTPUTS):
        if words:
            _tile4(xm, xs, r0, wm_t, ws_t, o, out)
        else:
            for r in range(r0, r0 + 4):
                _tile_bytes(xm, xs, r, wm_t, ws_t, o, out)


@numba.njit(nogil=True, cache=True)
def _row1(xm, xs, r, wm_t, ws_t, out, o0, o1, words):  # pragma: no cover - compiled
    """One row against outputs o0 … o1-1 (the rows past the last multiple of 4, and batch-1 layers): word tiles
    of 32 outputs, then one of 16 if that is left; byte tiles of 16."""
    if not words:
        for o in range(o0, o1, BYTE_TILE_OUTPUTS):
            _tile_bytes(xm, xs, r, wm_t, ws_t, o, out)
        return
    for o in range(o0, o1 - (o1 - o0) % TILE1_OUTPUTS, TILE1_OUTPUTS):
        _tile1(xm, xs, r, wm_t, ws_t, o, out)
    if (o1 - o0) % TILE1_OUTPUTS:
        _tile1_half(xm, xs, r, wm_t, ws_t, o1 - TILE4_OUTPUTS, out)


@numba.njit(nogil=True, inline="always")
def _gemm_task(task, n_blocks, xm, xs, wm_t, ws_t, out, chunk, words):  # pragma: no cover - compiled
    rows = xm.shape[0]
    blocks4 = rows // 4
    o0 = (task // n_blocks) * chunk
    o1 = min(out.shape[1], o0 + chunk)
    b = task % n_blocks
    if b < blocks4:
        _rows4(xm, xs, 4 * b, wm_t, ws_t, out, o0, o1, words)
    else:
        _row1(xm, xs, 4 * blocks4 + b - blocks4, wm_t, ws_t, out, o0, o1, words)


@numba.njit(parallel=True, cache=True, nogil=True)
def _xnor_gemm(xm, xs, wm_t, ws_t, out, chunk, words):  # pragma: no cover - compiled
    """Tasks are (output chunk, row block), output chunk outermost: a thread's consecutive tasks share one
    chunk of weight planes, which stays in cache."""
    n_blocks = xm.shape[0] // 4 + xm.shape[0] % 4
    for task in numba.prange(((out.shape[1] + chunk - 1) // chunk) * n_blocks):
        _gemm_task(task, n_blocks, xm, xs, wm_t, ws_t, out, chunk, words)


@numba.njit(cache=True, nogil=True)
def _xnor_gemm_serial(xm, xs, wm_t, ws_t, out, chunk, words):  # pragma: no cover - compiled
    """``_xnor_gemm`` on the calling thread (a small product: starting the parallel region would cost more)."""
    n_blocks = xm.shape[0] // 4 + xm.shape[0] % 4
    for task in range(((out.shape[1] + chunk - 1) // chunk) * n_blocks):
        _gemm_task(task, n_blocks, xm, xs, wm_t, ws_t, out, chunk, words)


@numba.njit(cache=True, nogil=True)
def _pack_product_serial(x, wm_t, ws_t, out, chunk, words):  # pragma: no cover - compiled
    """``pack`` and ``_xnor_gemm_serial`` in one compiled call (a batch-1 layer: each call from Python costs
    about a microsecond, a third of the product itself)."""
    mask = np.empty((x.shape[0], wm_t.shape[0]), dtype=np.uint64)
    sign = np.empty_like(mask)
    for r in range(x.shape[0]):
        _pack_row(x, r, mask, sign)
    _xnor_gemm_serial(mask, sign, wm_t, ws_t, out, chunk, words)


@dataclass(frozen=True)
class TernaryMatrix:
    """A layer's weights, out × in with values in {-1, 0, 1}, in every layout a kernel reads: ``int8``
    (out, in), its transpose ``int8_t`` (in, out) and the transposed bit-planes ``mask_t``/``sign_t`` (words,
    out rounded up to whole tiles with zero columns, ``_padded_t``) of ``popcount``.  Every layout but
    ``int8`` is computed when first read: training makes its weights' matrix on every step and reads only the
    layouts of the kernel chosen for the shape."""

    int8: torch.Tensor
    packer: Callable[[np.ndarray], Planes] = pack_numpy

    @classmethod
    def of(cls, w: np.ndarray, packer: Callable[[np.ndarray], Planes] = pack_numpy) -> TernaryMatrix:
        """``packer``: ``pack_numpy`` (no JIT; a model's weights, packed once) or ``pack`` (training, where the
        weights change every step)."""
        return cls(torch.from_numpy(np.ascontiguousarray(w, dtype=np.int8)), packer)

    @cached_property
    def row_work(self) -> int:
        """``_work`` of one row against these weights."""
        return _work(1, self.shape[1], self)

    @cached_property
    def _planes(self) -> Planes:
        return self.packer(self.int8.numpy())

    @cached_property
    def tile_outputs(self) -> int:
        """The outputs the tiles compute: rounded up to a multiple of 16 (the extra ones zero, dropped)."""
        return -(-self.shape[0] // TILE4_OUTPUTS) * TILE4_OUTPUTS

    def _padded_t(self, plane: np.ndarray) -> np.ndarray:
        """(words, ``tile_outputs``, plus 16 more where that is a multiple of 32): the tiles' layout, the extra
        outputs all zero.  A row of 16·(2k+1) words keeps one tile's successive input words in different
        cache sets: at 512 outputs, rows 4 KiB apart all fell in one set of a 32 KiB L1, and a tile re-read its
        weights from L2 on every row (the byte tile, one row at a time, four times as often as the word tile;
        docs/BENCHMARKS.md, session 13)."""
        width = self.tile_outputs + (TILE4_OUTPUTS if self.tile_outputs % (2 * TILE4_OUTPUTS) == 0 else 0)
        out = np.zeros((plane.shape[1], width), dtype=np.uint64)
        out[:, :plane.shape[0]] = plane.T
        return out

    @cached_property
    def mask_t(self) -> np.ndarray:
        return self._padded_t(self._planes.mask)

    @cached_property
    def sign_t(self) -> np.ndarray:
        return self._padded_t(self._planes.sign)

    @cached_property
    def int8_t(self) -> torch.Tensor:
        return self.int8.t().contiguous()

    @cached_property
    def onednn_packed(self) -> torch.Tensor:
        """The weights in oneDNN's blocked int8 layout (``qlinear_prepack``), for ``onednn``."""
        return torch.ops.onednn.qlinear_prepack(self.int8, None)

    @cached_property
    def nonzero_per_input(self) -> np.ndarray:
        """Outputs with w ≠ 0, per input (int64): the weights' side of ``gate_events``."""
        return (self.int8.numpy() != 0).sum(0, dtype=np.int64)

    @cached_property
    def shape(self) -> tuple[int, int]:
        return tuple(self.int8.shape)


def planes_product(planes: Planes, w: TernaryMatrix) -> np.ndarray:
    """The rows of ``planes`` times wᵀ: (rows, out) int32, by the bit-plane formula, compiled."""
    _same_inputs(planes.length, w)
    rows, outs = planes.mask.shape[0], w.tile_outputs
    out = np.empty((rows, outs), dtype=np.int32)
    gemm = _xnor_gemm_serial if serial(_work(rows, planes.length, w)) else _xnor_gemm
    gemm(planes.mask, planes.sign, w.mask_t, w.sign_t, out, OUTPUT_CHUNK, tiles() == "words")
    return _unpadded(out, w)


def _same_inputs(inputs: int, w: TernaryMatrix) -> None:
    """The compiled loops do not check bounds: a product of mismatched shapes is refused before them."""
    if inputs != w.shape[1]:
        raise ValueError(f"the product of {inputs} inputs per row with weights of {w.shape[1]} inputs")


def _unpadded(out: np.ndarray, w: TernaryMatrix) -> np.ndarray:
    """The product without the padded outputs' columns: a view, rows strided, where the weights were padded."""
    return out if out.shape[1] == w.shape[0] else out[:, :w.shape[0]]


def popcount_matmul(x: np.ndarray, w: TernaryMatrix) -> np.ndarray:
    """x (rows, in) int8 times wᵀ: (rows, out) int32, by the bit-plane formula, compiled."""
    x = np.ascontiguousarray(x, dtype=np.int8)
    _same_inputs(x.shape[1], w)
    if x.shape[1] and x.shape[0] * w.row_work < SERIAL_WORK:  # small: packing and product in one call
        # (most of a batch-1 layer's time outside the compiled call is here: this reads only cached attributes)
        out = np.empty((x.shape[0], w.tile_outputs), dtype=np.int32)
        _pack_product_serial(x, w.mask_t, w.sign_t, out, OUTPUT_CHUNK, tiles() == "words")
        return _unpadded(out, w)
    return planes_product(pack(x), w)


def popcount_conv(x: np.ndarray, w: TernaryMatrix, k: int, padding: int, stride: int) -> np.ndarray:
    """The convolution of channels-last trits x (N, H, W, C) with w (rows ordered as ``im2col``'s patches):
    (N·Ho·Wo, out) int32, ``popcount_matmul`` of the im2col — with the patches packed straight from the image
    (``patch_planes``) unless the product is small (one compiled call then costs less)."""
    n, h, wd, c = x.shape
    rows = n * math.prod(conv_out_size(h, wd, k, padding, stride))
    if c % 8 == 0 and _work(rows, w.shape[1], w) >= SERIAL_WORK:
        return planes_product(patch_planes(x, k, padding, stride)[0], w)
    return popcount_matmul(im2col(x, k, padding, stride)[0], w)


def conv_product(x: np.ndarray, w: TernaryMatrix, k: int, padding: int, stride: int, name: str) -> np.ndarray:
    """The convolution of channels-last trits x (N, H, W, C) as the product of its patches with w on kernel
    ``name`` (any but a convolution's own ``onednn`` path, which starts from the image): (N·Ho·Wo, out), int32
    (float32 for ``onednn``'s inner product) — ``popcount`` packing the patches from the image, the others
    multiplying the im2col."""
    if name == "popcount":
        return popcount_conv(x, w, k, padding, stride)
    return KERNELS[name](im2col(x, k, padding, stride)[0], w)


def time_candidates(names: list[str], run: Callable[[str], object], rounds: int = 3,
                    budget_s: float = math.inf) -> dict[str, float]:
    """Each kernel's best time of ``run(name)``, after one untimed call each (which compiles, reorders weights,
    creates oneDNN's primitive): rounds that time every kernel in turn (so a slower spell of the machine hits
    them alike) — two, or ``rounds`` while they take under ``budget_s`` in all."""
    for name in names:
        run(name)
    best, spent = dict.fromkeys(names, math.inf), 0.0
    for round_ in range(rounds):
        if round_ >= 2 and spent >= budget_s:
            break
        for name in names:
            t0 = time.perf_counter()
            run(name)
            took = time.perf_counter() - t0
            best[name], spent = min(best[name], took), spent + took
    return best


class MeasuredChoices:
    """Kernel choices measured once per key (a layer and a size) and kept: ``timings[key]`` the best seconds of
    each candidate, ``chosen[key]`` the fastest.  Thread-safe: one thread measures a key, others that meet it
    at the same time wait for its choice rather than time kernels beside it."""

    def __init__(self) -> None:
        self.chosen: dict[tuple, str] = {}
        self.timings: dict[tuple, dict[str, float]] = {}
        self._lock = threading.Lock()

    def choose(self, key: tuple, measure: Callable[[], dict[str, float]]) -> tuple[str, float]:
        """The kernel for ``key`` — on its first call, the fastest of ``measure()``'s timings (a candidate's
        best seconds, ``time_candidates``) — and the seconds this call spent measuring (0 once it is known)."""
        name = self.chosen.get(key)
        if name is not None:
            return name, 0.0
        with self._lock:
            name = self.chosen.get(key)
            if name is not None:
                return name, 0.0
            t0 = time.perf_counter()
            timings = measure()
            self.timings[key], self.chosen[key] = timings, min(timings, key=timings.get)
            return self.chosen[key], time.perf_counter() - t0


def _tensor(x: np.ndarray) -> torch.Tensor:
    """x as a contiguous tensor sharing its memory — copied where x is read-only (an im2col that needed no copy
    is a read-only view of its input), which PyTorch does not take without a warning."""
    return torch.from_numpy(np.require(x, requirements=("C", "W")))


def int8_matmul(x: np.ndarray, w: TernaryMatrix) -> np.ndarray:
    """x (rows, in) int8 times wᵀ with ``torch._int_mm`` (int8 × int8 → int32)."""
    return torch._int_mm(_tensor(x), w.int8_t).numpy()


_ONES: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}


def _unit_scales(outputs: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-output weight scales 1.0 and zero points 0, as oneDNN's quantized ops take them."""
    if outputs not in _ONES:
        _ONES[outputs] = (torch.ones(outputs), torch.zeros(outputs, dtype=torch.int64))
    return _ONES[outputs]


def _onednn_linear(x: torch.Tensor, packed: torch.Tensor, outputs: int) -> torch.Tensor:
    """float32 x·wᵀ of int8 trits x against prepacked int8 weights: exact integers.  x goes in as uint8 trit + 1
    with zero point 1, as the convolution does: oneDNN's int8 kernels take unsigned inputs, and for signed
    ones it has no fast inner product on a CPU without AMX (its reference code, ~1000× slower, on an AMD EPYC
    with AVX-512 VNNI; docs/EXPORT.md, "Kernels")."""
    scales, zeros = _unit_scales(outputs)
    shifted = (x + 1).view(torch.uint8)  # −1, 0, 1 → 0, 1, 2
    return torch.ops.onednn.qlinear_pointwise(shifted, 1.0, 1, packed, scales, zeros, None, 1.0, 0, torch.float32,
                                              "none", [], "")


def _fast_enough(ours: Callable[[], object], fp32: Callable[[], object], limit: float = ONEDNN_PROBE_LIMIT) -> bool:
    """Whether ``ours`` takes at most ``limit`` times as long as ``fp32`` (best of three; ours stops at its first
    timing within the limit; up to three such attempts, since the answer is kept for the process and a busy
    moment of a shared machine can slow one): oneDNN answers even where it has no kernel for the CPU, from
    reference code hundreds of times slower than a float product, which fails every attempt."""
    def seconds(fn) -> float:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    fp32(), ours()  # the first call of each creates its primitive
    for _ in range(ONEDNN_PROBE_ATTEMPTS):
        budget = limit * min(seconds(fp32) for _ in range(3))
        if any(seconds(ours) <= budget for _ in range(3)):
            return True
    return False


@cache
def onednn_int8() -> bool:
    """Whether oneDNN's int8 inner product and convolution are here, exact and fast: PyTorch built with oneDNN
    and its quantized ops, probe products equal to the integer ones — an inner product and a padded
    convolution of {-1, 0, 1} operands, and a strided convolution of 8-bit pixels (zero point 0) — and each of
    the three at most ``ONEDNN_PROBE_LIMIT`` times as slow as fp32 PyTorch on a small product (``_onednn_fast``:
    oneDNN's reference code, which it runs where it has no kernel for the CPU, is hundreds of times slower).
    Anything else — a missing op, an ISA oneDNN refuses or runs slowly — and ``onednn`` falls back to ``int8``,
    the 8-bit first layer to a float convolution of integers."""
    try:
        g = torch.Generator().manual_seed(0)
        x = torch.randint(-1, 2, (37, 70), generator=g, dtype=torch.int8)
        w = torch.randint(-1, 2, (33, 70), generator=g, dtype=torch.int8)
        want = x.long() @ w.long().t()
        got = _onednn_linear(x, torch.ops.onednn.qlinear_prepack(w, None), 33)
        image = torch.randint(-1, 2, (2, 5, 6, 7), generator=g, dtype=torch.int8)
        filters = torch.randint(-1, 2, (9, 5, 3, 3), generator=g, dtype=torch.int8)
        conv = onednn_conv2d(image.permute(0, 2, 3, 1).contiguous().numpy(), filters, 1, 1)
        conv_want = torch.nn.functional.conv2d(image.double(), filters.double(), padding=1).permute(0, 2, 3, 1)
        # and 8-bit pixels with zero point 0 (the engine's 8-bit first layer), stride 2
        pixels = torch.randint(0, 256, (2, 3, 9, 9), generator=g).to(torch.uint8)
        kernel = torch.randint(-1, 2, (4, 3, 3, 3), generator=g, dtype=torch.int8)
        sums = onednn_conv2d_tensor(pixels, kernel, 1, 2, zero_point=0)
        sums_want = torch.nn.functional.conv2d(pixels.double(), kernel.double(), stride=2, padding=1)
        exact = (torch.equal(got.long(), want) and np.array_equal(conv, conv_want.long().numpy())
                 and torch.equal(sums.double(), sums_want))
        return exact and _onednn_fast()
    except Exception:  # noqa: BLE001 - no oneDNN, no quantized ops, an ISA it refuses: the int8 product instead
        return False


def _onednn_fast() -> bool:
    """The speed half of ``onednn_int8``: the three oneDNN products the engine runs, each against fp32 PyTorch of
    the same shape (4–5 million multiply-accumulates: tens of microseconds when oneDNN has a kernel for this CPU,
    its fixed cost per call included; about 0.1 s when it has not, once per process)."""
    g = torch.Generator().manual_seed(1)
    x = torch.randint(-1, 2, (128, 512), generator=g, dtype=torch.int8)
    w = torch.randint(-1, 2, (64, 512), generator=g, dtype=torch.int8)
    packed, xf, wf = torch.ops.onednn.qlinear_prepack(w, None), x.float(), w.float()
    image = torch.randint(-1, 2, (8, 32, 8, 8), generator=g, dtype=torch.int8).contiguous(
        memory_format=torch.channels_last)
    filters = torch.randint(-1, 2, (32, 32, 3, 3), generator=g, dtype=torch.int8)
    conv_packed, imagef, filtersf = onednn_conv_packed(filters, 1, 1), image.float(), filters.float()
    pixels = torch.randint(0, 256, (8, 32, 8, 8), generator=g).to(torch.uint8).contiguous(
        memory_format=torch.channels_last)
    pixel_packed = onednn_conv_packed(filters, 1, 1, zero_point=0)
    conv = partial(torch.nn.functional.conv2d, imagef, filtersf, padding=1)
    with torch.no_grad():
        return (_fast_enough(lambda: _onednn_linear(x, packed, 64), lambda: torch.nn.functional.linear(xf, wf))
                and _fast_enough(lambda: onednn_conv2d_tensor(image, filters, 1, 1, conv_packed), conv)
                and _fast_enough(lambda: onednn_conv2d_tensor(pixels, filters, 1, 1, pixel_packed, zero_point=0),
                                 conv))


def onednn_matmul(x: np.ndarray, w: TernaryMatrix) -> np.ndarray:
    """x (rows, in) int8 times wᵀ by oneDNN's int8 inner product on the prepacked weights, as **float32**
    holding the integer sums exactly (fan-ins below 2²⁴; converting them to int32 would cost about a third of
    the product) — ``int8_matmul``'s sums, as float32, where oneDNN's ops are not available."""
    if not onednn_int8() or x.shape[1] >= 1 << 24:
        return int8_matmul(x, w).astype(np.float32)
    return _onednn_linear(_tensor(x), w.onednn_packed, w.shape[0]).numpy()


def onednn_conv_packed(w: torch.Tensor, padding: int, stride: int, zero_point: int = 1) -> torch.Tensor:
    """Conv weights (out, C, k, k) int8 in oneDNN's blocked layout, for uint8 inputs with ``zero_point``
    (oneDNN's int8 convolution takes unsigned inputs; it pads with the zero point): 1 for trits stored as
    trit + 1 (padding a trit 0), 0 for 8-bit pixels (the engine's 8-bit first layer)."""
    scales, _ = _unit_scales(w.shape[0])
    return torch.ops.onednn.qconv_prepack(w, scales, 1.0, zero_point, [stride] * 2, [padding] * 2, [1, 1], 1,
                                          None)


def onednn_conv2d_tensor(x: torch.Tensor, w: torch.Tensor, padding: int, stride: int,
                         packed: torch.Tensor | None = None, zero_point: int = 1) -> torch.Tensor:
    """The convolution of trits x (N, C, H, W; any float or int dtype, values in {-1, 0, 1}, any memory
    format; or uint8 holding trit + 1 already) with int8 weights w (out, C, k, k) by oneDNN's int8 convolution,
    straight from the image (no im2col): exact integer sums as float32 (N, out, Ho, Wo), channels-last in
    memory.  ``zero_point=0``: x is uint8 8-bit pixels, convolved as they are (``packed`` made for that zero
    point, ``onednn_conv_packed``)."""
    if packed is None:
        packed = onednn_conv_packed(w, padding, stride, zero_point)
    scales, zeros = _unit_scales(w.shape[0])
    # −1, 0, 1 → 0, 1, 2 with zero point 1 (oneDNN's int8 convolution takes unsigned inputs)
    shifted = (x if x.dtype == torch.uint8 else x + 1).to(torch.uint8, memory_format=torch.channels_last)
    return torch.ops.onednn.qconv2d_pointwise(shifted, 1.0, zero_point, packed, scales, zeros, None, [stride] * 2,
                                              [padding] * 2, [1, 1], 1, 1.0, 0, torch.float32, "none", [], "")


def shifted_channels_last(x: np.ndarray) -> torch.Tensor:
    """Channels-last trits (N, H, W, C) int8 as the N×C×H×W channels-last uint8 tensor of trit + 1 that
    ``onednn_conv2d_tensor`` takes: one pass (−1 is the byte 255, and 255 + 1 wraps to 0)."""
    return torch.from_numpy(np.add(np.ascontiguousarray(x).view(np.uint8), np.uint8(1))).permute(0, 3, 1, 2)


def onednn_conv2d(x: np.ndarray, w: torch.Tensor, padding: int, stride: int,
                  packed: torch.Tensor | None = None) -> np.ndarray:
    """``onednn_conv2d_tensor`` of channels-last trits x (N, H, W, C), int8: int32 sums (N, Ho, Wo, out), the
    same as ``im2col`` and a matrix product."""
    y = onednn_conv2d_tensor(shifted_channels_last(x), w, padding, stride, packed)
    return y.permute(0, 2, 3, 1).to(torch.int32).numpy()  # channels-last out: this view is (N, Ho, Wo, out)


_BYTE_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.int32)


def portable_matmul(x: np.ndarray, w: TernaryMatrix, block: int = 64) -> np.ndarray:
    """The bit-plane formula in numpy (a byte table for popcount): no JIT and no instruction-set assumption."""
    planes = pack_numpy(x)
    wm, ws = w._planes.mask, w._planes.sign
    out = np.empty((x.shape[0], w.shape[0]), dtype=np.int32)
    for r0 in range(0, x.shape[0], block):
        xm = planes.mask[r0:r0 + block, None, :]
        xs = planes.sign[r0:r0 + block, None, :]
        g = xm & wm[None]
        differ = (xs ^ ws[None]) & g
        count = lambda v: _BYTE_POPCOUNT[v.view(np.uint8)].reshape(*v.shape[:2], -1).sum(2)
        out[r0:r0 + block] = count(g) - 2 * count(differ)
    return out


Matmul = Callable[[np.ndarray, TernaryMatrix], np.ndarray]
KERNELS: dict[str, Matmul] = {"popcount": popcount_matmul, "int8": int8_matmul, "onednn": onednn_matmul,
                              "portable": portable_matmul}
"""The exact ternary matrix products by name (module docstring).  The engine and the training forward measure
which is fastest per layer shape (``MeasuredChoices``); ``choose`` is the fixed rule of ``Engine(tune=False)``."""

KERNEL_ENV = "GXNOR_ENGINE_KERNEL"
INT8_MIN_ROWS = 2048
INT8_MAX_INPUTS = 2304
INT8_MIN_CONV_ROWS = 64
POPCOUNT_MIN_OUTPUTS = 32
ONEDNN_MIN_ROWS = 16
ONEDNN_MIN_WEIGHTS = 1 << 19
ONEDNN_CONV_MIN_MACS = 1 << 24


def choose(rows: int, inputs: int, outputs: int, int8: bool = True, onednn: bool = False, conv: bool = False) -> str:
    """The fixed rule of ``Engine(tune=False)``: a kernel for a (rows × inputs)·(inputs × outputs) product — a
    convolution's im2col product with ``conv`` — as measured on session 10's AMX host *before* ``popcount`` had
    its register tiles (docs/EXPORT.md, "Kernels"); on the znver4 host ``popcount`` now wins every hidden and
    output layer, and the engine and the training forward measure instead (``MeasuredChoices``).  The rule:

    - ``onednn`` (where ``onednn_int8``: oneDNN's int8 ops, exact, on a CPU with ``fast_int8``): a convolution
      of at least 2²⁴ multiply-accumulates (run on the image, it skips the im2col: every ``cifar_vgg``
      convolution from batch 1, ``mnist_cnn``'s conv2 from batch 8), and a fully connected product of at least
      16 rows and 32 outputs whose weights hold ≥ 2¹⁹ values (reordered once, they beat ``torch._int_mm``
      there; smaller products pay oneDNN's fixed cost per call, ~0.05 ms);
    - ``int8``: the im2col of a batch — many rows and a fan-in up to 2 304 (3×3×256) — any convolution of at
      least 64 output positions (``mnist_cnn``'s conv2 at batch 1: 3–4× fp32 on the VNNI and AMX hosts, where
      the old ``popcount`` loop was 1.8×), and fewer than 32 outputs (the output layer);
    - ``popcount`` otherwise: few rows (batch 1, fully connected layers) and large fan-ins.

    ``int8=False`` (a CPU without a fast int8 product, ``fast_int8``): always ``popcount``."""
    if onednn and int8 and inputs < 1 << 24:  # float32 sums: exact below 2²⁴
        if conv and rows * inputs * outputs >= ONEDNN_CONV_MIN_MACS:
            return "onednn"
        if (not conv and rows >= ONEDNN_MIN_ROWS and outputs >= POPCOUNT_MIN_OUTPUTS
                and inputs * outputs >= ONEDNN_MIN_WEIGHTS):
            return "onednn"
    if int8 and (outputs < POPCOUNT_MIN_OUTPUTS or (rows >= INT8_MIN_ROWS and inputs <= INT8_MAX_INPUTS)
                 or (conv and rows >= INT8_MIN_CONV_ROWS)):
        return "int8"
    return "popcount"


def candidates(inputs: int) -> list[str]:
    """The kernels worth timing for a product of fan-in ``inputs`` on this CPU (the engine measures among them,
    ``Engine(tune=True)``): ``popcount``; ``int8`` where the CPU has an int8 dot-product instruction
    (``fast_int8``; elsewhere PyTorch's int8 product is tens of times slower); ``onednn`` where its ops are
    here, exact and fast (``onednn_int8``) and its float32 sums stay exact (fan-in below 2²⁴)."""
    names = ["popcount"]
    if fast_int8():
        names.append("int8")
        if onednn_int8() and inputs < 1 << 24:
            names.append("onednn")
    return names


INT8_FEATURES = ("avx512vnni", "avxvnni", "amx-int8")


@cache
def fast_int8() -> bool:
    """Whether this CPU has an int8 dot-product instruction (AVX-512 VNNI, AVX-VNNI or AMX) for
    ``torch._int_mm``.  Without one PyTorch's int8 product is a slow path: 25–60× slower than ``popcount`` on
    an AVX2-only AMD EPYC (znver3) at the training shapes of ``mnist_cnn`` (docs/METHOD.md, "The training
    forward")."""
    features = cpu_features()
    return any(features[name] for name in INT8_FEATURES)


def im2col(x: np.ndarray, k: int, padding: int, stride: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Channels-last trits (N, H, W, C) → patches (N·Ho·Wo, k·k·C), ordered (kernel row, kernel column,
    channel); padding is zeros (no gate opens on it).  Returns the patches and (Ho, Wo)."""
    if padding:
        x = np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    n, h, w, c = x.shape
    ho, wo = conv_out_size(h, w, k, 0, stride)
    sn, sh, sw, sc = x.strides
    view = as_strided(x, (n, ho, wo, k, k, c), (sn, sh * stride, sw * stride, sh, sw, sc), writeable=False)
    return np.ascontiguousarray(view).reshape(n * ho * wo, k * k * c), (ho, wo)


@numba.njit(cache=True, nogil=True)
def _column_nonzeros(x):  # pragma: no cover - compiled
    counts = np.zeros(x.shape[1], dtype=np.int64)
    for r in range(x.shape[0]):
        for k in range(x.shape[1]):
            counts[k] += x[r, k] != 0
    return counts


def gate_events(x: np.ndarray, w: TernaryMatrix) -> int:
    """Open gates of x (rows, in) against w: Σ_k (rows with x_k ≠ 0)·(outputs with w_k ≠ 0) — the same count
    as Σ_rows Σ_outputs popcount(m_x ∧ m_w)."""
    return int(_column_nonzeros(np.ascontiguousarray(x)) @ w.nonzero_per_input)


@numba.njit(cache=True, nogil=True)
def _batch_nonzeros(x):  # pragma: no cover - compiled
    """Per input (column) of x (N, F), how many of the N rows are non-zero (int32)."""
    counts = np.zeros(x.shape[1], dtype=np.int32)
    for r in range(x.shape[0]):
        for k in range(x.shape[1]):
            counts[k] += np.int32(x[r, k] != 0)
    return counts


@numba.njit(cache=True, nogil=True)
def _window_nonzeros(x, k, padding, stride, ho, wo):  # pragma: no cover - compiled
    """counts[n, i, j, c]: Σ x over the inputs of channel c that kernel tap (i, j) meets at image n's output
    positions — with x the non-zero mask of a batch, the column sums of image n's im2col rows.  Stride 1: a
    summed-area table per image (each tap a rectangle of input rows and columns); otherwise position by
    position."""
    n, h, w, c = x.shape
    counts = np.zeros((n, k, k, c), dtype=np.int64)
    table = np.zeros((h + 1, w + 1, c), dtype=np.int64)
    for s in range(n):
        if stride == 1:
            for r in range(h):
                for q in range(w):
                    for ch in range(c):
                        table[r + 1, q + 1, ch] = (table[r, q + 1, ch] + table[r + 1, q, ch] - table[r, q, ch]
                                                   + x[s, r, q, ch])
        for i in range(k):
            for j in range(k):
                if stride == 1:
                    r0, r1 = max(i - padding, 0), min(i - padding + ho, h)
                    q0, q1 = max(j - padding, 0), min(j - padding + wo, w)
                    if r0 >= r1 or q0 >= q1:
                        continue
                    for ch in range(c):
                        counts[s, i, j, ch] = (table[r1, q1, ch] - table[r0, q1, ch] - table[r1, q0, ch]
                                               + table[r0, q0, ch])
                else:
                    for oh in range(ho):
                        r = oh * stride + i - padding
                        if r < 0 or r >= h:
                            continue
                        for ow in range(wo):
                            q = ow * stride + j - padding
                            if q < 0 or q >= w:
                                continue
                            for ch in range(c):
                                counts[s, i, j, ch] += x[s, r, q, ch]
    return counts


def conv_gate_events(x: np.ndarray, w: TernaryMatrix, kernel: int, padding: int, stride: int,
                     per_sample: bool = True) -> np.ndarray:
    """Open gates per sample (int64, N; or the batch's total, shape (1,), with ``per_sample=False``) of the
    convolution of channels-last trits x (N, H, W, C) with w (rows ordered kernel row, kernel column, channel,
    as ``im2col``'s patches): ``gate_events`` of each sample's im2col rows, Σ_k (rows with x_k ≠ 0)·(outputs
    with w_k ≠ 0), without building the im2col.  For the total, the masks are summed over the batch first
    (one image of counts)."""
    n, h, wd, c = x.shape
    ho, wo = conv_out_size(h, wd, kernel, padding, stride)
    x = np.ascontiguousarray(x)
    # the batch's mask summed by one compiled pass (numpy's (x != 0).sum(0): 0.065 against 0.026 ms, mnist_cnn b64)
    mask = (x != 0).view(np.uint8) if per_sample else _batch_nonzeros(x.reshape(n, h * wd * c)).reshape(1, h, wd, c)
    counts = _window_nonzeros(mask, kernel, padding, stride, ho, wo)
    return counts.reshape(counts.shape[0], -1) @ w.nonzero_per_input


@cache
def cpu_features() -> dict[str, bool | str]:
    """What this CPU offers the kernels, detected at run time: the features numba compiles for, and the code
    path PyTorch dispatched to."""
    import llvmlite.binding as llvm

    host = llvm.get_host_cpu_features()
    return {
        "cpu": llvm.get_host_cpu_name(),
        **{name: bool(host.get(name, False)) for name in ("popcnt", "avx2", "avx512f", "avx512vpopcntdq",
                                                          *INT8_FEATURES)},
        "torch_capability": torch.backends.cpu.get_cpu_capability(),
    }


def forced_kernel() -> str | None:
    """The kernel ``GXNOR_ENGINE_KERNEL`` forces for every layer (None: choose per shape)."""
    name = os.environ.get(KERNEL_ENV) or None
    if name is not None and name not in KERNELS:
        raise ValueError(f"{KERNEL_ENV}={name!r}: one of {', '.join(KERNELS)}")
    return name
