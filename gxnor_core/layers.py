"""Layers whose weights live in Z_N as integer states, latent-weight layers, and the activation layer."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .activations import MultiStepActivation
from .integer_forward import integer_conv2d, integer_linear
from .latent import quantize
from .spaces import DiscreteSpace


class _DiscreteWeight(nn.Module):
    """Holds ``state``: the integer state index of every weight (a buffer, so it is checkpointed).

    ``weight_value()`` materialises -H + n·Δz for one forward pass.  In training the
    float tensor is kept as ``self.value`` until the DST step has read its gradient
    and released it, so no float copy of the weights outlives a step.

    ``integer_forward`` (set by ``GXNORNet.set_integer_forward`` on XNOR layers only): on the CPU the forward
    computes the same values from integer sums (gxnor_core.integer_forward); the backward is unchanged.
    """

    integer_forward = False

    def __init__(self, shape: tuple[int, ...], space: DiscreteSpace, init_range: float = 1.0):
        super().__init__()
        self.space = space
        self.init_range = float(init_range)
        self.register_buffer("state", torch.zeros(shape, dtype=space.index_dtype))
        self.value: torch.Tensor | None = None
        self.reset_parameters()

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Reference code: continuous U(-c·H, c·H) init rounded to the nearest state, c = ``init_range``
        (1; its CIFAR-10 run's fully connected layers 1.5, so values beyond ±H round to ±H: for ternary
        weights each state then starts with probability 1/3 instead of 1/4, 1/2, 1/4)."""
        bound = self.init_range * self.space.H
        w = torch.empty(self.state.shape).uniform_(-bound, bound, generator=generator)
        self.state.copy_(self.space.index(w))

    def weight_value(self) -> torch.Tensor:
        w = self.space.value(self.state)
        if torch.is_grad_enabled() and self.training:
            w.requires_grad_(True)
            self.value = w
        return w

    def release(self) -> None:
        self.value = None

    @property
    def num_weights(self) -> int:
        return self.state.numel()


class DiscreteLinear(_DiscreteWeight):
    """Fully connected layer y = x Wᵀ with W ∈ Z_N (no bias: the following BN absorbs it)."""

    def __init__(self, in_features: int, out_features: int, space: DiscreteSpace, init_range: float = 1.0):
        self.in_features, self.out_features = in_features, out_features
        super().__init__((out_features, in_features), space, init_range)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight_value()
        if self.integer_forward and x.device.type == "cpu":
            return integer_linear(x, w, self)
        return F.linear(x, w)

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, {self.space}"


class DiscreteConv2d(_DiscreteWeight):
    """2-D convolution with W ∈ Z_N (no bias)."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, space: DiscreteSpace,
        padding: int = 0, stride: int = 1,
    ):
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.padding, self.stride = kernel_size, padding, stride
        super().__init__((out_channels, in_channels, kernel_size, kernel_size), space)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight_value()
        if self.integer_forward and x.device.type == "cpu":
            return integer_conv2d(x, w, self)
        return F.conv2d(x, w, stride=self.stride, padding=self.padding)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, k={self.kernel_size}, "
                f"padding={self.padding}, {self.space}")


class _LatentWeight:
    """Float shadow weights (``weight``, an nn.Parameter the float optimizer trains) whose forward pass uses their
    quantization α·z/H, z ∈ Z_N, with a straight-through backward (docs/METHOD.md §7, ``gxnor_core.latent``).

    ``state`` is the state index of every quantized weight, computed from the shadows on each call (for the
    probes and transition counts; nothing is stored): latent layers report states like DST layers.
    """

    space: DiscreteSpace
    init_range: float
    weight: nn.Parameter

    def reset_parameters(self) -> None:
        """The DST init before its rounding, U(-c·H, c·H) with c = ``init_range``, clipped to [-H, H] (where the
        clip after every step keeps the shadows)."""
        bound = self.init_range * self.space.H
        with torch.no_grad():
            self.weight.uniform_(-bound, bound).clamp_(-self.space.H, self.space.H)

    def quantized_weight(self) -> torch.Tensor:
        w = self.weight
        q = quantize(w, self.space)[0]
        if torch.is_grad_enabled() and w.requires_grad:
            return w + (q - w).detach()  # forward Q(w), backward the identity
        return q

    @property
    def state(self) -> torch.Tensor:
        return quantize(self.weight, self.space)[1]

    @property
    def num_weights(self) -> int:
        return self.weight.numel()


class LatentLinear(_LatentWeight, nn.Linear):
    """Fully connected layer y = x Q(W)ᵀ over float shadow weights W (no bias: the following BN absorbs it)."""

    def __init__(self, in_features: int, out_features: int, space: DiscreteSpace, init_range: float = 1.0):
        self.space, self.init_range = space, float(init_range)
        super().__init__(in_features, out_features, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.quantized_weight())


class LatentConv2d(_LatentWeight, nn.Conv2d):
    """2-D convolution with Q(W) over float shadow weights W (no bias)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, space: DiscreteSpace,
                 padding: int = 0, stride: int = 1):
        self.space, self.init_range = space, 1.0
        super().__init__(in_channels, out_channels, kernel_size, padding=padding, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.quantized_weight(), None)


class StepActivation(nn.Module):
    """φ as a layer: the multi-step discretization, or ReLU for the full-precision baseline."""

    def __init__(self, act: MultiStepActivation | None):
        super().__init__()
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x) if self.act is None else self.act(x)

    def extra_repr(self) -> str:
        return "relu" if self.act is None else repr(self.act)


def layer_weight(layer: nn.Module) -> torch.Tensor:
    """The real-valued weight of a conv/linear layer, discrete or not (no grad)."""
    with torch.no_grad():
        if isinstance(layer, _DiscreteWeight):
            return layer.space.value(layer.state)
        if isinstance(layer, _LatentWeight):
            return layer.quantized_weight()
        return layer.weight.detach()


def has_states(layer: nn.Module) -> bool:
    """Its weights take the values of a discrete space: integer DST states, or quantized latent weights."""
    return isinstance(layer, _DiscreteWeight | _LatentWeight)


def is_weight_layer(module: nn.Module) -> bool:
    return isinstance(module, (_DiscreteWeight, nn.Linear, nn.Conv2d))
