"""Ternary × ternary matrix products, exact in integers: the gated XNOR (docs/METHOD.md §4) on a CPU.

For operands in {-1, 0, +1}, each row is kept as two bit-planes, mask m = [v ≠ 0] and sign q = [v < 0], packed
64 to a word.  A dot product is then

    x·w = popcount(g) − 2·popcount((q_x ⊕ q_w) ∧ g),   g = m_x ∧ m_w

(g is the set of open gates; among them the products whose signs differ are −1, the others +1).  Four kernels
compute the same integers (docs/EXPORT.md, "Kernels"; as int32, or for ``onednn`` as float32, exactly):

- ``popcount``: that formula in a numba loop, LLVM's ``ctpop`` compiled for the host CPU at run time (one
  VPOPCNTQ per 8 words with AVX-512 VPOPCNTDQ, POPCNT elsewhere, a bit-twiddling sequence on a CPU with neither);
  an activation word with no open gate is skipped.
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

All three are exact, so which one runs never changes an answer — only how long it takes.  Gate events are
not counted inside a kernel: Σ_rows Σ_outputs popcount(g) = Σ_k (rows with x_k ≠ 0)·(outputs with w_k ≠ 0),
which ``gate_events`` computes from column counts in O(R·K + O·K).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, cached_property, partial

import numba
import numpy as np
import torch
from numba import types
from numba.extending import intrinsic
from numpy.lib.stride_tricks import as_strided

from ._threads import sync_threads

WORD = 64
ONEDNN_PROBE_LIMIT = 20.0  # oneDNN at most this many times fp32's time on a probe product (``onednn_int8``)
ONEDNN_PROBE_ATTEMPTS = 3  # … in one of this many attempts
OUTPUT_CHUNK = 128  # outputs per task of the popcount kernel: 128 × 16 bytes of weight planes per input word


@intrinsic
def _popcount(typingctx, x):
    """LLVM's ctpop on a 64-bit word (numba has no popcount of its own)."""
    sig = types.int64(types.uint64)

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return sig, codegen


@dataclass(frozen=True)
class Planes:
    """Rows of a {-1, 0, 1} matrix as bit-planes: ``mask`` [v ≠ 0] and ``sign`` [v < 0], (rows, words) uint64,
    bit k of a row at word k // 64, bit k % 64 (bits past the row's length are 0)."""

    mask: np.ndarray
    sign: np.ndarray
    length: int


def pack_numpy(x: np.ndarray) -> Planes:
    """Bit-planes of the rows of a 2-D int8 array with values in {-1, 0, 1}, with numpy's ``packbits`` (no JIT:
    the portable kernel's, and the weights' once per model)."""
    rows, k = x.shape
    words = max(1, -(-k // WORD))
    planes = []
    for bits in (x != 0, x < 0):
        packed = np.packbits(bits, axis=1, bitorder="little")
        full = np.zeros((rows, words * 8), dtype=np.uint8)
        full[:, :packed.shape[1]] = packed
        planes.append(full.view("<u8").astype(np.uint64, copy=False))
    return Planes(planes[0], planes[1], k)


@numba.njit(parallel=True, cache=True, nogil=True)
def _pack_kernel(x, mask, sign):  # pragma: no cover - compiled
    rows, k = x.shape
    for r in numba.prange(rows):
        for w in range(mask.shape[1]):
            m = np.uint64(0)
            s = np.uint64(0)
            base = w * 64
            for i in range(min(64, k - base)):
                v = x[r, base + i]
                m |= np.uint64(v != 0) << np.uint64(i)
                s |= np.uint64(v < 0) << np.uint64(i)
            mask[r, w] = m
            sign[r, w] = s


_LOW_BITS = np.uint64(0x0101010101010101)
_GATHER = np.uint64(0x0102040810204080)  # (v * _GATHER) >> 56 gathers bit 0 of byte i of v into bit i


@numba.njit(parallel=True, cache=True, nogil=True)
def _pack_bytes_kernel(x8, mask, sign):  # pragma: no cover - compiled
    """The same planes from the rows as 64-bit groups of eight int8 values (row length a multiple of 8): an
    int8 −1, 0, 1 is the byte 0xFF, 0x00, 0x01, so its bit 0 is [v ≠ 0] and its bit 7 is [v < 0], and one
    multiplication gathers a bit of each of the eight bytes (no carries: the partial products never overlap)."""
    rows, groups = x8.shape
    s56 = np.uint64(56)
    s7 = np.uint64(7)
    for r in numba.prange(rows):
        for w in range(mask.shape[1]):
            m = np.uint64(0)
            s = np.uint64(0)
            g0 = w * 8
            for j in range(min(8, groups - g0)):
                v = x8[r, g0 + j]
                shift = np.uint64(8 * j)
                m |= (((v & _LOW_BITS) * _GATHER) >> s56) << shift
                s |= ((((v >> s7) & _LOW_BITS) * _GATHER) >> s56) << shift
            mask[r, w] = m
            sign[r, w] = s


def pack(x: np.ndarray) -> Planes:
    """``pack_numpy``'s planes by a compiled loop (activations are packed on every call): eight values per
    multiplication where the row length is a multiple of 8 (an im2col row of C·k² with C a multiple of 8,
    most fully connected inputs), one bit at a time otherwise."""
    x = np.ascontiguousarray(x)
    words = max(1, -(-x.shape[1] // WORD))
    mask = np.empty((x.shape[0], words), dtype=np.uint64)
    sign = np.empty_like(mask)
    sync_threads()
    if x.shape[1] % 8 == 0 and x.shape[1]:
        _pack_bytes_kernel(x.view(np.uint64), mask, sign)
    else:
        _pack_kernel(x, mask, sign)
    return Planes(mask, sign, x.shape[1])


@numba.njit(nogil=True, inline="always")
def _dot_words(a, b, wm, ws):  # pragma: no cover - compiled
    """x·w over the 64 inputs of one word pair: popcount(g) − 2·popcount((q_x ⊕ q_w) ∧ g), g = m_x ∧ m_w."""
    g = a & wm
    return _popcount(g) - 2 * _popcount((b ^ ws) & g)


@numba.njit(nogil=True, cache=True)
def _rows4(xm, xs, r0, wm_t, ws_t, out, o0, o1):  # pragma: no cover - compiled
    """Rows r0 … r0+3 against outputs o0 … o1-1: each weight word loaded once serves four rows, and the loop
    over outputs (contiguous in the transposed planes) vectorizes."""
    n = o1 - o0
    acc = np.zeros((4, n), dtype=np.int64)
    for w in range(xm.shape[1]):
        a0, a1, a2, a3 = xm[r0, w], xm[r0 + 1, w], xm[r0 + 2, w], xm[r0 + 3, w]
        if (a0 | a1 | a2 | a3) == 0:  # no open gate among these 4 × 64 inputs
            continue
        b0, b1, b2, b3 = xs[r0, w], xs[r0 + 1, w], xs[r0 + 2, w], xs[r0 + 3, w]
        wm = wm_t[w, o0:o1]
        ws = ws_t[w, o0:o1]
        for o in range(n):
            m, s = wm[o], ws[o]
            acc[0, o] += _dot_words(a0, b0, m, s)
            acc[1, o] += _dot_words(a1, b1, m, s)
            acc[2, o] += _dot_words(a2, b2, m, s)
            acc[3, o] += _dot_words(a3, b3, m, s)
    for i in range(4):
        for o in range(n):
            out[r0 + i, o0 + o] = acc[i, o]


@numba.njit(nogil=True, cache=True)
def _row1(xm, xs, r, wm_t, ws_t, out, o0, o1):  # pragma: no cover - compiled
    """One row against outputs o0 … o1-1 (the rows past the last multiple of 4, and batch-1 FC layers)."""
    n = o1 - o0
    acc = np.zeros(n, dtype=np.int64)
    for w in range(xm.shape[1]):
        a = xm[r, w]
        if a == 0:
            continue
        b = xs[r, w]
        wm = wm_t[w, o0:o1]
        ws = ws_t[w, o0:o1]
        for o in range(n):
            acc[o] += _dot_words(a, b, wm[o], ws[o])
    for o in range(n):
        out[r, o0 + o] = acc[o]


@numba.njit(parallel=True, cache=True, nogil=True)
def _xnor_gemm(xm, xs, wm_t, ws_t, out, chunk):  # pragma: no cover - compiled
    """Tasks are (output chunk, row block), output chunk outermost: a thread's consecutive tasks share one
    chunk of weight planes, which stays in cache."""
    rows = xm.shape[0]
    outs = wm_t.shape[1]
    n_chunks = (outs + chunk - 1) // chunk
    blocks4 = rows // 4
    n_blocks = blocks4 + rows % 4
    for task in numba.prange(n_chunks * n_blocks):
        o0 = (task // n_blocks) * chunk
        o1 = min(outs, o0 + chunk)
        b = task % n_blocks
        if b < blocks4:
            _rows4(xm, xs, 4 * b, wm_t, ws_t, out, o0, o1)
        else:
            _row1(xm, xs, 4 * blocks4 + b - blocks4, wm_t, ws_t, out, o0, o1)


@dataclass(frozen=True)
class TernaryMatrix:
    """A layer's weights, out × in with values in {-1, 0, 1}, in every layout a kernel reads: ``int8``
    (out, in), its transpose ``int8_t`` (in, out) and the transposed bit-planes ``mask_t``/``sign_t`` (words,
    out) of ``popcount``.  Every layout but ``int8`` is computed when first read: training makes its weights'
    matrix on every step and reads only the layouts of the kernel chosen for the shape."""

    int8: torch.Tensor
    packer: Callable[[np.ndarray], Planes] = pack_numpy

    @classmethod
    def of(cls, w: np.ndarray, packer: Callable[[np.ndarray], Planes] = pack_numpy) -> TernaryMatrix:
        """``packer``: ``pack_numpy`` (no JIT; a model's weights, packed once) or ``pack`` (training, where the
        weights change every step)."""
        return cls(torch.from_numpy(np.ascontiguousarray(w, dtype=np.int8)), packer)

    @cached_property
    def _planes(self) -> Planes:
        return self.packer(self.int8.numpy())

    @cached_property
    def mask_t(self) -> np.ndarray:
        return np.ascontiguousarray(self._planes.mask.T)

    @cached_property
    def sign_t(self) -> np.ndarray:
        return np.ascontiguousarray(self._planes.sign.T)

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

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.int8.shape)


def popcount_matmul(x: np.ndarray, w: TernaryMatrix) -> np.ndarray:
    """x (rows, in) int8 times wᵀ: (rows, out) int32, by the bit-plane formula, compiled."""
    planes = pack(x)
    rows, outs = x.shape[0], w.shape[0]
    out = np.empty((rows, outs), dtype=np.int32)
    sync_threads()
    _xnor_gemm(planes.mask, planes.sign, w.mask_t, w.sign_t, out, OUTPUT_CHUNK)
    return out


def int8_matmul(x: np.ndarray, w: TernaryMatrix) -> np.ndarray:
    """x (rows, in) int8 times wᵀ with ``torch._int_mm`` (int8 × int8 → int32)."""
    return torch._int_mm(torch.from_numpy(np.ascontiguousarray(x)), w.int8_t).numpy()


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
    return _onednn_linear(torch.from_numpy(np.ascontiguousarray(x)), w.onednn_packed, w.shape[0]).numpy()


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
    wm, ws = np.ascontiguousarray(w.mask_t.T), np.ascontiguousarray(w.sign_t.T)
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
"""The exact ternary matrix products by name (module docstring); ``choose`` picks one per layer shape."""

KERNEL_ENV = "GXNOR_ENGINE_KERNEL"
INT8_MIN_ROWS = 2048
INT8_MAX_INPUTS = 2304
INT8_MIN_CONV_ROWS = 64
POPCOUNT_MIN_OUTPUTS = 32
ONEDNN_MIN_ROWS = 16
ONEDNN_MIN_WEIGHTS = 1 << 19
ONEDNN_CONV_MIN_MACS = 1 << 24


def choose(rows: int, inputs: int, outputs: int, int8: bool = True, onednn: bool = False, conv: bool = False) -> str:
    """The faster kernel for a (rows × inputs)·(inputs × outputs) product — a convolution's im2col product with
    ``conv`` — by measurement on this project's machines (``python -m bench.engine``; docs/EXPORT.md,
    "Kernels"):

    - ``onednn`` (where ``onednn_int8``: oneDNN's int8 ops, exact, on a CPU with ``fast_int8``): a convolution
      of at least 2²⁴ multiply-accumulates (run on the image, it skips the im2col: every ``cifar_vgg``
      convolution from batch 1, ``mnist_cnn``'s conv2 from batch 8), and a fully connected product of at least
      16 rows and 32 outputs whose weights hold ≥ 2¹⁹ values (reordered once, they beat ``torch._int_mm``
      there; smaller products pay oneDNN's fixed cost per call, ~0.05 ms);
    - ``int8``: the im2col of a batch — many rows and a fan-in up to 2 304 (3×3×256) — any convolution of at
      least 64 output positions (``mnist_cnn``'s conv2 at batch 1: 3–4× fp32 on the VNNI and AMX hosts, where
      ``popcount`` is 1.8×), and fewer than 32 outputs (the output layer: popcount vectorizes over outputs);
    - ``popcount`` otherwise: few rows (batch 1, fully connected layers), where it skips inactive words and
      splits the outputs between threads, and large fan-ins.

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
    ho, wo = (h - k) // stride + 1, (w - k) // stride + 1
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
    n, h, wd, _ = x.shape
    ho, wo = (h + 2 * padding - kernel) // stride + 1, (wd + 2 * padding - kernel) // stride + 1
    mask = np.asarray(x) != 0
    mask = mask.view(np.uint8) if per_sample else mask.sum(0, dtype=np.int32)[None]
    counts = _window_nonzeros(np.ascontiguousarray(mask), kernel, padding, stride, ho, wo)
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
