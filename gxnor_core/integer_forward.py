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
            y = onednn_conv2d_tensor(x, trits, p, stride).contiguous()  # the float op's layout (and BN's sums)
            return y if layer.space.H == 1.0 else y.mul_(layer.space.H)
        w = TernaryMatrix.of(trits.permute(0, 2, 3, 1).reshape(trits.shape[0], -1).numpy(), pack)
        t = x.to(torch.int8).permute(0, 2, 3, 1).contiguous().numpy()
        s = torch.from_numpy(conv_product(t, w, k, p, stride, name))
        return _scaled(s.view(n, ho, wo, trits.shape[0]).permute(0, 3, 1, 2), layer.space.H)

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
