"""Layers whose weights live in Z_N as integer states, and the activation layer."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .activations import MultiStepActivation
from .spaces import DiscreteSpace


class _DiscreteWeight(nn.Module):
    """Holds ``state``: the integer state index of every weight (a buffer, so it is checkpointed).

    ``weight_value()`` materialises -H + n·Δz for one forward pass.  In training the
    float tensor is kept as ``self.value`` until the DST step has read its gradient
    and released it, so no float copy of the weights outlives a step.
    """

    def __init__(self, shape: tuple[int, ...], space: DiscreteSpace):
        super().__init__()
        self.space = space
        self.register_buffer("state", torch.zeros(shape, dtype=space.index_dtype))
        self.value: torch.Tensor | None = None
        self.reset_parameters()

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Reference code: continuous U(-H, H) init rounded to the nearest state."""
        w = torch.empty(self.state.shape).uniform_(-self.space.H, self.space.H, generator=generator)
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

    def __init__(self, in_features: int, out_features: int, space: DiscreteSpace):
        self.in_features, self.out_features = in_features, out_features
        super().__init__((out_features, in_features), space)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight_value())

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
        return F.conv2d(x, self.weight_value(), stride=self.stride, padding=self.padding)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, k={self.kernel_size}, "
                f"padding={self.padding}, {self.space}")


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
        return layer.weight.detach()


def is_weight_layer(module: nn.Module) -> bool:
    return isinstance(module, (_DiscreteWeight, nn.Linear, nn.Conv2d))
