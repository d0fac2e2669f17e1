"""The paper's networks (docs/METHOD.md §5), discrete or full-precision from one definition."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from .activations import MultiStepActivation
from .data import DATASETS
from .errors import ConfigError
from .integer_forward import integer_forward_applies
from .layers import (
    DiscreteConv2d,
    DiscreteLinear,
    LatentConv2d,
    LatentLinear,
    StepActivation,
    has_states,
    is_weight_layer,
)
from .pooling import MaxPool2x2
from .spaces import DiscreteSpace

if TYPE_CHECKING:
    from .config import ExperimentConfig, ModelConfig

BN_EPS = 1e-4
BN_MOMENTUM = 0.1

Layer = tuple[str, int, bool]
"""(kind: "conv" or "fc", output channels or units, max-pool after) — the hidden layers of a network."""


@dataclass(frozen=True)
class Architecture:
    """A network family (``model.arch``): ``hidden(model)`` lists its hidden layers for a ModelConfig (the
    output layer, one unit per class of the dataset, is added to every family); its convolutions have
    ``kernel``×``kernel`` kernels and ``padding`` (0: valid, 1 with kernel 3: same); ``help`` is its docstring."""

    name: str
    hidden: Callable[[ModelConfig], list[Layer]]
    kernel: int
    padding: int
    help: str


ARCHITECTURES: dict[str, Architecture] = {}
"""Registered architectures by name, in the order the config's ``model.arch`` lists them."""


def register_architecture(kernel: int = 0, padding: int = 0):
    def deco(fn):
        ARCHITECTURES[fn.__name__] = Architecture(fn.__name__, fn, kernel, padding,
                                                  " ".join((fn.__doc__ or "").split()))
        return fn

    return deco


def _scaled(layers: list[Layer], width: float) -> list[Layer]:
    return [(kind, max(1, round(n * width)), pool) for kind, n, pool in layers]


@register_architecture()
def mlp(model: ModelConfig) -> list[Layer]:
    """Fully connected: hidden widths from model.hidden, each FC-BN-φ, then 10FC-BN."""
    return [("fc", width, False) for width in model.hidden]


@register_architecture(kernel=5, padding=0)
def mnist_cnn(model: ModelConfig) -> list[Layer]:
    """Paper: 32C5-MP2-64C5-MP2-512FC-10 (valid convs, BN after each layer)."""
    return _scaled([("conv", 32, True), ("conv", 64, True), ("fc", 512, False)], model.width)


@register_architecture(kernel=3, padding=1)
def cifar_vgg(model: ModelConfig) -> list[Layer]:
    """Paper: 2×128C3-MP2-2×256C3-MP2-2×512C3-MP2-1024FC-10 (same-padded convs)."""
    return _scaled([("conv", 128, False), ("conv", 128, True), ("conv", 256, False), ("conv", 256, True),
                    ("conv", 512, False), ("conv", 512, True), ("fc", 1024, False)], model.width)


class GXNORNet(nn.Module):
    """A stack of blocks: weight layer (conv or fc) [→ max-pool] → BN [→ φ].

    ``blocks`` is ordered and keyed by stable layer names (conv1, …, fc1, …);
    the last block has no activation: its BN output is the network's output.
    """

    def __init__(self, blocks: OrderedDict[str, nn.Sequential]):
        super().__init__()
        self.blocks = nn.ModuleDict(blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks.values():
            if isinstance(block[0], (nn.Linear, DiscreteLinear)) and x.dim() > 2:
                x = x.flatten(1)
            x = block(x)
        return x

    def input_activations(self) -> dict[str, StepActivation | None]:
        """For each weight layer, by name, the activation layer that produced its input (None: the real input)."""
        out: dict[str, StepActivation | None] = {}
        prev: StepActivation | None = None
        for name, block in self.blocks.items():
            out[name] = prev
            prev = next((m for m in block if isinstance(m, StepActivation)), None)
        return out

    def xnor_layers(self) -> OrderedDict[str, nn.Module]:
        """The layers whose forward can run on the integer kernels (``integer_forward_applies``): DST weights
        with N ≤ 1 and H a power of two, fed by a binary or ternary activation."""
        sources = self.input_activations()
        return OrderedDict(
            (name, layer) for name, layer in self.weight_layers().items()
            if isinstance(layer, DiscreteLinear | DiscreteConv2d) and integer_forward_applies(
                layer.space, None if sources[name] is None or sources[name].act is None else sources[name].act.N))

    def set_integer_forward(self, on: bool) -> list[str]:
        """Run the XNOR layers' forward on the integer kernels (on the CPU) or in float; returns their names.
        The values are the same either way (gxnor_core.integer_forward), only the time differs."""
        layers = self.xnor_layers()
        for layer in layers.values():
            layer.integer_forward = on
        return list(layers)

    def weight_layers(self) -> OrderedDict[str, nn.Module]:
        """Conv/linear layer of every block, by layer name."""
        return OrderedDict((name, block[0]) for name, block in self.blocks.items())

    def discrete_layers(self) -> list[nn.Module]:
        """Layers whose weights are integer DST states (no float weights)."""
        return [m for m in self.weight_layers().values() if isinstance(m, DiscreteLinear | DiscreteConv2d)]

    def latent_layers(self) -> list[nn.Module]:
        """Layers with float shadow weights and a quantized forward (``weights.training: latent``)."""
        return [m for m in self.weight_layers().values() if isinstance(m, LatentLinear | LatentConv2d)]

    def quantized_layers(self) -> list[nn.Module]:
        """Layers whose forward weights take the values of a discrete space: the discrete and the latent ones."""
        return [m for m in self.weight_layers().values() if has_states(m)]


def _block(layer: nn.Module, channels: int, conv: bool, pool: bool, act: StepActivation | None):
    mods: list[nn.Module] = [layer]
    if pool:
        mods.append(MaxPool2x2())
    bn = nn.BatchNorm2d if conv else nn.BatchNorm1d
    mods.append(bn(channels, eps=BN_EPS, momentum=BN_MOMENTUM))
    if act is not None:
        mods.append(act)
    return nn.Sequential(*mods)


def _plan(config: ExperimentConfig, input_shape: tuple[int, int, int]) -> list[tuple]:
    """(name, kind, in, out, kernel, padding, pool, dense MACs per sample) per block;
    ConfigError if the input is too small."""
    c, h, w = input_shape
    arch = config.model.arch
    family = ARCHITECTURES[arch]
    layers = [*family.hidden(config.model), ("fc", DATASETS[config.dataset.name].num_classes, False)]
    kernel, pad = family.kernel, family.padding
    plan, counts, features = [], {"conv": 0, "fc": 0}, c * h * w
    for kind, out, pool in layers:
        counts[kind] += 1
        if kind == "conv":
            h, w = h + 2 * pad - kernel + 1, w + 2 * pad - kernel + 1
            macs = out * h * w * c * kernel * kernel
            if pool:
                h, w = h // 2, w // 2
            if h < 1 or w < 1:
                raise ConfigError("model.arch", f"{arch} needs larger inputs than "
                                  f"{config.dataset.name}'s {input_shape[1]}x{input_shape[2]} images")
            plan.append((f"conv{counts[kind]}", kind, c, out, kernel, pad, pool, macs))
            c, features = out, out * h * w
        else:
            plan.append((f"fc{counts[kind]}", kind, features, out, 0, 0, False, features * out))
            features = out
    return plan


def model_size(config: ExperimentConfig) -> tuple[int, int]:
    """(weights, dense MACs per sample) of config's network, computed without building it;
    ConfigError if config.model cannot take config.dataset's inputs."""
    plan = _plan(config, DATASETS[config.dataset.name].input_shape)
    weights = sum(fan_in * out * max(kernel, 1) ** 2 for _, _, fan_in, out, kernel, _, _, _ in plan)
    return weights, sum(layer[-1] for layer in plan)


def build_model(config: ExperimentConfig, input_shape: tuple[int, int, int] | None = None) -> GXNORNet:
    """The network of config.model for config.dataset's input shape, on the CPU."""
    plan = _plan(config, input_shape or DATASETS[config.dataset.name].input_shape)
    wc, ac = config.weights, config.activations
    space = DiscreteSpace(wc.N, wc.H) if wc.discrete else None
    latent = wc.training == "latent"  # float shadow weights (docs/METHOD.md §7) instead of DST's integer states
    conv, linear = (LatentConv2d, LatentLinear) if latent else (DiscreteConv2d, DiscreteLinear)
    phi = MultiStepActivation(ac.N, ac.r, ac.a, ac.window, ac.overlap) if ac.discrete else None
    blocks: OrderedDict[str, nn.Sequential] = OrderedDict()
    for i, (name, kind, fan_in, out, kernel, pad, pool, _macs) in enumerate(plan):
        act = StepActivation(phi) if i < len(plan) - 1 else None
        if kind == "conv":
            layer = (conv(fan_in, out, kernel, space, padding=pad) if space is not None
                     else nn.Conv2d(fan_in, out, kernel, padding=pad, bias=False))
        else:
            layer = (linear(fan_in, out, space, init_range=wc.fc_init) if space is not None
                     else nn.Linear(fan_in, out, bias=False))
        blocks[name] = _block(layer, out, kind == "conv", pool, act)
    return GXNORNet(blocks)


def count_weights(model: GXNORNet) -> int:
    return sum(
        (m.num_weights if hasattr(m, "num_weights") else m.weight.numel())
        for m in model.weight_layers().values()
        if is_weight_layer(m)
    )
