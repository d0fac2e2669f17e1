"""The XNOR layers' forward pass in training on the integer kernels (docs/METHOD.md, "The training forward").

An XNOR layer — ternary or binary weights (N ≤ 1) whose input is a ternary or binary activation — computes
sums of products of {−1, 0, 1} operands.  Today's float forward materialises the weights ±H, 0 and runs
``F.linear``/``F.conv2d``; here the same sums are computed exactly in integers by ``gxnor_core.kernels`` (the
engine's kernels, the fastest measured once per shape on this machine: ``_kernel``; a convolution's patches
are taken from channels-last trits), then scaled by H into float32.

Why the result is the float forward's, bit for bit: every product is 0 or ±H, every partial sum an integer
multiple of H of magnitude ≤ fan_in·H, and with H a power of two (the default 1) such sums are exact in float32
for fan-ins below 2²⁴ — in any summation order.  So the float forward returns exactly H·s, and so does
``s.float() * H``.  For another H the float sums round, order-dependently, and the float path stays
(``integer_forward_applies``).

The backward pass is the float op's own: the gradient of ``F.conv2d`` is ``aten.convolution_backward``
with the same arguments, that of ``F.linear`` (2-D, no bias: ``mm``) is grad·W and gradᵀ·x in the layouts
autograd's ``mm`` backward uses — so gradients, DST steps and every metric are unchanged.  Only the forward's
time changes.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numba
import numpy as np
import torch

from .kernels import (
    KERNELS,
    MeasuredChoices,
    TernaryMatrix,
    candidates,
    conv_out_size,
    conv_product,
    forced_kernel,
    onednn_conv2d_tensor,
    onednn_int8,
    pack,
    serial,
    time_candidates,
)

INTEGER_FORWARD_CHOICES = ("auto", "on", "off")
"""The values of ``train.integer_forward`` (docs/CONFIG.md)."""


def integer_forward_on(setting: str, device: torch.device | str) -> bool:
    """``train.integer_forward`` for a run on ``device``: ``auto`` is on for the CPU and off elsewhere (the
    kernels are CPU code; on a GPU the float path stays), ``on`` requires the CPU, ``off`` is the float path."""
    cpu = torch.device(device).type == "cpu"
    if setting == "on" and not cpu:
        raise RuntimeError(f"train.integer_forward is 'on' but the run trains on {device}: the integer "
                           "kernels run on the CPU only (use 'auto')")
    return cpu and setting != "off"


def integer_forward_applies(space, input_levels: int | None) -> bool:
    """Whether a layer with weights in ``space`` and an input activation of ``N = input_levels`` (None: a real
    input) is an XNOR layer whose integer forward equals the float one: weights and input in {−1, 0, 1}·scale
    (N ≤ 1 both) and H a power of two (module docstring)."""
    return (input_levels is not None and input_levels <= 1 and space.N <= 1
            and math.frexp(space.H)[0] == 0.5)


def ternary_weights(layer) -> torch.Tensor:
    """The layer's weights as trits t ∈ {−1, 0, 1} (int8), value = H·t: state n has value −H + n·Δz, and
    Δz/H = 2 >> N (1 ternary, 2 binary), so t = n·(2 >> N) − 1."""
    return layer.state.to(torch.int8) * (2 >> layer.space.N) - 1


_choices = MeasuredChoices()  # (kind, input shape, weight shape, …, threads) → kernel, measured once per process
measured = _choices.timings
"""The choice written down: per product shape met in this process, the best seconds of each candidate kernel's
forward (weights' layout included: they change every step); the fastest is the one that runs."""


def _kernel(key: tuple, inputs: int, forward: Callable[[str], torch.Tensor]) -> str:
    """The forced kernel (``GXNOR_ENGINE_KERNEL``), else the fastest of ``kernels.candidates`` for this shape,
    measured on this machine the first time the shape comes (``kernels.time_candidates``): ``forward(name)`` —
    the layer's forward on kernel ``name`` from its float input, weights' layout included, since in training
    the weights change every step.  Every kernel gives the same values, so the choice changes only the time
    (docs/METHOD.md, "The training forward")."""
    return forced_kernel() or _choices.choose(key, lambda: time_candidates(candidates(inputs), forward))[0]


def _scaled(s: torch.Tensor, H: float) -> torch.Tensor:
    """float32 H·s, contiguous in the order of s (exact: H is a power of two)."""
    y = torch.empty(s.shape, dtype=torch.float32)
    y.copy_(s)
    return y if H == 1.0 else y.mul_(H)


@numba.njit(nogil=True, inline="always")
def _image_to_channels_last(b, x, offset, out):  # pragma: no cover - compiled
    """Image b of x (N, C, P) — float trits — as out[b] (P, C), int8 or uint8, each value plus ``offset``."""
    for ch in range(x.shape[1]):
        for p in range(x.shape[2]):
            out[b, p, ch] = x[b, ch, p] + offset


@numba.njit(parallel=True, cache=True, nogil=True)
def _channels_last_kernel(x, offset, out):  # pragma: no cover - compiled
    for b in numba.prange(x.shape[0]):
        _image_to_channels_last(b, x, offset, out)


@numba.njit(cache=True, nogil=True)
def _channels_last_serial(x, offset, out):  # pragma: no cover - compiled
    for b in range(x.shape[0]):
        _image_to_channels_last(b, x, offset, out)


def channels_last_trits(x: torch.Tensor, dtype=np.int8, offset: int = 0) -> np.ndarray:
    """The trits of a float activation x (N, C, H, W; values −1, 0, 1) channels-last, (N, H, W, C), plus
    ``offset`` (1 with uint8: oneDNN's shifted input), in one compiled pass — ``x.to(int8)`` and a permuted
    copy are two passes, the second a slow one (0.40 against 0.17 ms for conv2 of ``mnist_cnn`` at batch
    100)."""
    n, c, h, w = x.shape
    src = x.detach().to(torch.float32).contiguous().numpy().reshape(n, c, h * w)  # exact: trits
    out = np.empty((n, h * w, c), dtype=dtype)
    (_channels_last_serial if serial(x.numel()) else _channels_last_kernel)(src, np.float32(offset), out)
    return out.reshape(n, h, w, c)


@numba.njit(nogil=True, inline="always")
def _image_to_nchw(b, s, scale, out):  # pragma: no cover - compiled
    """Rows b·P … b·P + P − 1 of s (N·P, C), any number type, as out[b] (C, P) float32 times ``scale``."""
    pixels = out.shape[2]
    for p in range(pixels):
        for ch in range(out.shape[1]):
            out[b, ch, p] = np.float32(s[b * pixels + p, ch]) * scale


@numba.njit(parallel=True, cache=True, nogil=True)
def _nchw_kernel(s, scale, out):  # pragma: no cover - compiled
    for b in numba.prange(out.shape[0]):
        _image_to_nchw(b, s, scale, out)


@numba.njit(cache=True, nogil=True)
def _nchw_serial(s, scale, out):  # pragma: no cover - compiled
    for b in range(out.shape[0]):
        _image_to_nchw(b, s, scale, out)


def nchw_scaled(s: np.ndarray, n: int, ho: int, wo: int, H: float) -> torch.Tensor:
    """A convolution's sums s (N·Ho·Wo, C) — int32, or float32 holding integers; rows may be strided — as the
    float op's output: float32 H·s, (N, C, Ho, Wo) contiguous, in one compiled pass (exact: |s| < 2²⁴ and H
    a power of two; ``_scaled`` of a permuted view took 0.35 against 0.1 ms for conv2 at batch 100)."""
    out = np.empty((n, s.shape[1], ho * wo), dtype=np.float32)
    (_nchw_serial if serial(out.size) else _nchw_kernel)(s, np.float32(H), out)
    return torch.from_numpy(out).view(n, s.shape[1], ho, wo)


def linear_forward(x: torch.Tensor, layer) -> torch.Tensor:
    """``F.linear(x, W)`` of an XNOR layer, from the integer sums."""
    trits = ternary_weights(layer).numpy()

    def forward(name: str) -> torch.Tensor:
        sums = KERNELS[name](x.to(torch.int8).numpy(), TernaryMatrix.of(trits, pack))
        return _scaled(torch.from_numpy(sums), layer.space.H)

    return forward(_kernel(("linear", tuple(x.shape), trits.shape, torch.get_num_threads()), trits.shape[1], forward))


def conv2d_forward(x: torch.Tensor, layer) -> torch.Tensor:
    """``F.conv2d(x, W, stride, padding)`` of an XNOR layer, from the integer sums of its patches over
    channels-last trits (``kernels.conv_product``: rows ordered kernel row, kernel column, channel, the weight
    rows permuted to match), or of oneDNN's int8 convolution on the image."""
    trits = ternary_weights(layer)
    n, _, h, wd = x.shape
    k, p, stride = layer.kernel_size, layer.padding, layer.stride
    ho, wo = conv_out_size(h, wd, k, p, stride)

    def forward(name: str) -> torch.Tensor:
        if name == "onednn" and onednn_int8():  # oneDNN's int8 convolution on the image: no im2col
            shifted = torch.from_numpy(channels_last_trits(x, np.uint8, 1)).permute(0, 3, 1, 2)
            y = onednn_conv2d_tensor(shifted, trits, p, stride)  # channels-last in memory
            s = y.permute(0, 2, 3, 1).numpy().reshape(n * ho * wo, trits.shape[0])
        else:
            w = TernaryMatrix.of(trits.permute(0, 2, 3, 1).reshape(trits.shape[0], -1).numpy(), pack)
            s = conv_product(channels_last_trits(x), w, k, p, stride, name)
        return nchw_scaled(s, n, ho, wo, layer.space.H)

    key = ("conv", tuple(x.shape), tuple(trits.shape), p, stride, torch.get_num_threads())
    return forward(_kernel(key, trits[0].numel(), forward))


class _IntegerLinear(torch.autograd.Function):
    """Forward from the integer sums; backward exactly autograd's for ``F.linear(x, w)`` (``mm``: grad·W for
    the input, gradᵀ·x for the weight — the layout its backward picks for the transposed weight)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor, layer) -> torch.Tensor:
        ctx.save_for_backward(x, w)
        return linear_forward(x, layer)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, w = ctx.saved_tensors
        grad_x = grad.mm(w) if ctx.needs_input_grad[0] else None
        grad_w = grad.t().mm(x) if ctx.needs_input_grad[1] else None
        return grad_x, grad_w, None


class _IntegerConv2d(torch.autograd.Function):
    """Forward from the integer sums; backward ``aten.convolution_backward`` with ``F.conv2d``'s arguments,
    the op autograd runs for it."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor, layer) -> torch.Tensor:
        ctx.save_for_backward(x, w)
        ctx.stride, ctx.padding = layer.stride, layer.padding
        return conv2d_forward(x, layer)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, w = ctx.saved_tensors
        grad_x, grad_w, _ = torch.ops.aten.convolution_backward(
            grad, x, w, None, [ctx.stride] * 2, [ctx.padding] * 2, [1, 1], False, [0, 0], 1,
            [ctx.needs_input_grad[0], ctx.needs_input_grad[1], False])
        return grad_x, grad_w, None


def integer_linear(x: torch.Tensor, w: torch.Tensor, layer) -> torch.Tensor:
    """``F.linear(x, w)`` for an XNOR layer whose float weights ``w`` (the layer's materialised value, which
    receives the gradient) equal H times its trits; x holds values in {−1, 0, 1}."""
    if torch.is_grad_enabled() and (x.requires_grad or w.requires_grad):
        return _IntegerLinear.apply(x, w, layer)
    return linear_forward(x, layer)


def integer_conv2d(x: torch.Tensor, w: torch.Tensor, layer) -> torch.Tensor:
    """``F.conv2d(x, w, stride=layer.stride, padding=layer.padding)`` for an XNOR layer (``integer_linear``)."""
    if torch.is_grad_enabled() and (x.requires_grad or w.requires_grad):
        return _IntegerConv2d.apply(x, w, layer)
    return conv2d_forward(x, layer)
