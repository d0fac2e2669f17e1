"""Latent-weight training (docs/METHOD.md §7): float shadow weights, quantized forward, straight-through backward.

The comparison point of DST (docs/METHOD.md §3) that BinaryConnect, BWN, TWN, BNN — and Larq or
Brevitas — train with: every discrete weight keeps a float shadow ``w``; the forward pass uses its
quantization ``Q(w) = α·z/H`` with z ∈ Z_N and a per-layer scale α; the backward pass treats Q as the
identity (straight-through estimator, ∂L/∂w := ∂L/∂Q(w)); the float optimizer (``dst.optimizer``)
updates ``w``, which is then clipped to [-H, H] (BinaryConnect's and BNN's clip; it keeps a weight within
reach of the threshold it has to cross to change state).

Shadow weights exist only in this mode (``weights.training: latent``): DST runs hold integer states only.
Persistent memory per weight is the 4-byte shadow plus the optimizer's state for it (Adam: 12 bytes).

The quantizer depends on the weight space (``QUANTIZERS``, chosen by N):

- N = 0, ``bwn`` (Rastegari et al., XNOR-Net 2016): α = mean|w|, Q(w) = α·sign(w) (sign(0) = +1);
- N = 1, ``twn`` (Li & Liu, Ternary Weight Networks 2016): Δ = 0.7·mean|w|, Q(w) = α·sign(w)·1[|w| > Δ],
  α = mean of |w| over the weights with |w| > Δ;
- N ≥ 2, ``nearest`` (*ours*; no paper defines a scale there): Q(w) = the nearest state of Z_N, α = H.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .dst import LayerOptimizer, make_base_optimizer, optimizer_state_bytes
from .spaces import DiscreteSpace

TWN_THRESHOLD = 0.7  # Δ = 0.7·mean|w|: TWN's approximation of the optimal threshold for uniform/normal weights


@dataclass(frozen=True)
class LatentQuantizer:
    """A weight quantizer for latent-weight training: ``fn(w, space)`` returns (state index of every weight in
    ``space``, the layer's scale α); the quantized weight is α·z/H where z is the state's value."""

    name: str
    fn: Callable[[torch.Tensor, DiscreteSpace], tuple[torch.Tensor, torch.Tensor]]
    applies: Callable[[int], bool]
    help: str


QUANTIZERS: dict[str, LatentQuantizer] = {}
"""Registered latent-weight quantizers by name; ``quantizer_for(N)`` picks the one for a weight space."""


def register_quantizer(applies: Callable[[int], bool]):
    def deco(fn):
        QUANTIZERS[fn.__name__] = LatentQuantizer(fn.__name__, fn, applies, " ".join((fn.__doc__ or "").split()))
        return fn

    return deco


@register_quantizer(applies=lambda N: N == 0)
def bwn(w: torch.Tensor, space: DiscreteSpace) -> tuple[torch.Tensor, torch.Tensor]:
    """BWN (Rastegari et al. 2016): α = mean|w|; Q(w) = α·sign(w), sign(0) = +1."""
    return (w >= 0).to(space.index_dtype), w.abs().mean()


@register_quantizer(applies=lambda N: N == 1)
def twn(w: torch.Tensor, space: DiscreteSpace) -> tuple[torch.Tensor, torch.Tensor]:
    """TWN (Li & Liu 2016): Δ = 0.7·mean|w|; Q(w) = α·sign(w)·1[|w| > Δ]; α = mean of |w| over |w| > Δ."""
    a = w.abs()
    keep = a > TWN_THRESHOLD * a.mean()
    alpha = (a * keep).sum() / keep.sum().clamp(min=1)
    return (torch.sign(w) * keep).to(space.index_dtype) + 1, alpha


@register_quantizer(applies=lambda N: N >= 2)
def nearest(w: torch.Tensor, space: DiscreteSpace) -> tuple[torch.Tensor, torch.Tensor]:
    """*Ours*, for N ≥ 2: Q(w) = the nearest state of Z_N (α = H: no rescaling)."""
    return space.index(w), torch.tensor(space.H, dtype=w.dtype, device=w.device)


def quantizer_for(N: int) -> LatentQuantizer:
    return next(q for q in QUANTIZERS.values() if q.applies(N))


def quantize(w: torch.Tensor, space: DiscreteSpace) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(Q(w), state indices, α) of shadow weights w, without gradient."""
    with torch.no_grad():
        idx, alpha = quantizer_for(space.N).fn(w, space)
        return space.value(idx, w.dtype).mul_(alpha / space.H), idx, alpha


class LatentOptimizer(LayerOptimizer):
    """The float optimizer over shadow weights and every other parameter, with the clip to [-H, H] after each
    step; the same interface as ``DSTOptimizer`` (``moves`` counts the state changes of the quantized weights,
    every step counted)."""

    def __init__(self, model: torch.nn.Module, base: str, lr: float):
        self.layers = model.latent_layers()
        shadows = [layer.weight for layer in self.layers]
        others = [p for p in model.parameters() if all(p is not w for w in shadows)]
        groups = [{"params": ps} for ps in (shadows, others) if ps]
        self.base = make_base_optimizer(base, groups, lr)
        self.moves = [0] * len(self.layers)

    def step(self) -> None:
        before = [layer.state for layer in self.layers]
        self.base.step()
        for i, (layer, old) in enumerate(zip(self.layers, before)):
            with torch.no_grad():
                layer.weight.clamp_(-layer.space.H, layer.space.H)
            self.moves[i] += int((layer.state.to(torch.int64) - old.to(torch.int64)).abs().sum())

    def persistent_bytes(self) -> int:
        """Bytes kept between steps for the latent layers' weights: the float shadows and the optimizer's state
        for them."""
        weights = [layer.weight for layer in self.layers]
        return sum(w.numel() * w.element_size() for w in weights) + optimizer_state_bytes(self.base, weights)
