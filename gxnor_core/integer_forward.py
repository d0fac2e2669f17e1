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
import threading
import time
from collections.abc import Callable

import numpy as np
import torch

from .kernels import (
    KERNELS,
    TernaryMatrix,
    candidates,
    forced_kernel,
    im2col,
    onednn_conv2d_tensor,
    onednn_int8,
    pack,
    popcount_conv,
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


TUNE_ROUNDS = 3  # rounds timing every candidate kernel the first time a layer's shape comes
_chosen: dict[tuple, str] = {}  # (kind, input shape, weight shape, …) → kernel
measured: dict[tuple, dict[str, float]] = {}
"""The choice written down: per product shape met in this process, the best seconds of each candidate kernel's
whole forward (weights' layout included: they change every step); the fastest is the one that runs."""
_lock = threading.Lock()


def _kernel(key: tuple, inputs: int, forward: Callable[[str], torch.Tensor]) -> str:
    """The forced kernel (``GXNOR_ENGINE_KERNEL``), else the fastest of ``kernels.candidates`` for this shape,
    measured on this machine the first time the shape comes: ``forward(name)`` — the layer's whole forward on
    kernel ``name``, its weights' layout included, since in training the weights change every step — once each
    untimed (compiling, creating oneDNN's primitives), then ``TUNE_ROUNDS`` rounds timing each in turn, best
    time kept.  Every kernel gives the same values, so the choice changes only the time (docs/METHOD.md, "The
    training forward")."""
    name = forced_kernel() or _chosen.get(key)
    if name is not None:
        return name
    with _lock:
        if key in _chosen:
            return _chosen[key]
        names = candidates(inputs)
        for name in names:
            forward(name)
        best = dict.fromkeys(names, math.inf)
        for _ in range(TUNE_ROUNDS):
            for name in names:
                t0 = time.perf_counter()
                forward(name)
                best[name] = min(best[name], time.perf_counter() - t0)
        measured[key], _chosen[key] = best, min(best, key=best.get)
        return _chosen[key]


def _sums(x: np.ndarray, w: TernaryMatrix, name: str) -> torch.Tensor:
    """x (rows, in) int8 times wᵀ by kernel ``name``: int32 (float32 for ``onednn``, the same integers)."""
    return torch.from_numpy(KERNELS[name](x, w))


def _scaled(s: torch.Tensor, H: float) -> torch.Tensor:
    """float32 H·s, contiguous in the order of s (exact: H is a power of two)."""
    y = torch.empty(s.shape, dtype=torch.float32)
    y.copy_(s)
    return y if H == 1.0 else y.mul_(H)


def linear_forward(x: torch.Tensor, layer) -> torch.Tensor:
    """``F.linear(x, W)`` of an XNOR layer, from the integer sums."""
    trits, t = ternary_weights(layer).numpy(), x.to(torch.int8).numpy()

    def forward(name: str) -> torch.Tensor:
        return _scaled(_sums(t, TernaryMatrix.of(trits, pack), name), layer.space.H)

    return forward(_kernel(("linear", tuple(x.shape), trits.shape), trits.shape[1], forward))


def conv2d_forward(x: torch.Tensor, layer) -> torch.Tensor:
    """``F.conv2d(x, W, stride, padding)`` of an XNOR layer, from the integer sums of an im2col over
    channels-last trits (rows ordered kernel row, kernel column, channel; the weight rows permuted to match), or
    of oneDNN's int8 convolution on the image."""
    trits = ternary_weights(layer)
    n, _, h, wd = x.shape
    k, p, stride = layer.kernel_size, layer.padding, layer.stride
    ho, wo = (h + 2 * p - k) // stride + 1, (wd + 2 * p - k) // stride + 1
    t = None

    def forward(name: str) -> torch.Tensor:
        nonlocal t
        if name == "onednn" and onednn_int8():  # oneDNN's int8 convolution on the image: no im2col
            y = onednn_conv2d_tensor(x, trits, p, stride).contiguous()  # the float op's layout (and BN's sums)
            return y if layer.space.H == 1.0 else y.mul_(layer.space.H)
        w = TernaryMatrix.of(trits.permute(0, 2, 3, 1).reshape(trits.shape[0], -1).numpy(), pack)
        if t is None:
            t = x.to(torch.int8).permute(0, 2, 3, 1).contiguous().numpy()
        if name == "popcount":  # the patches packed straight from the trits
            s = torch.from_numpy(popcount_conv(t, w, k, p, stride))
        else:
            s = _sums(im2col(t, k, p, stride)[0], w, name)
        return _scaled(s.view(n, ho, wo, -1).permute(0, 3, 1, 2), layer.space.H)

    return forward(_kernel(("conv", tuple(x.shape), tuple(trits.shape), p, stride), trits[0].numel(), forward))


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
