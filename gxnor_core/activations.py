"""Multi-step activation discretization and its derivative windows (docs/METHOD.md §2).

Forward, N_a ≥ 1 (K = 2^(N_a-1) positive levels of height Δa = 1/K, steps at
|x| = s_k = r + (k-1)·Δa):

    φ(x) = sign(x) · Δa · clamp(ceil((|x| - r) / Δa), 0, K)

which for the ternary case (N_a = 1) is φ_r(x) = sign(x) if |x| > r else 0.
N_a = 0 is binary: φ(x) = +1 if x ≥ 0 else -1 (*ours*: 0 maps to +1 as in BNNs).

Backward: φ' = 0 almost everywhere, so every step of height h at location s_k
gets a window g whose area is h.  Two ways to combine them (``overlap``):

    paper:  φ'(x) = Σ_k h·g(|x| - s_k)                      (the paper's formula, the default)
    sum:    φ'(x) = Σ_k h·(g(|x| - s_k) + g(|x| + s_k))     (windows at the signed steps ±s_k, summed)

They differ only where the window of the step at -s_k reaches x ≥ 0, i.e. r < a for ``rect`` and
``tri`` (always for ``gauss`` and ``exp``): there ``sum`` adds the mirror term, doubling the
derivative on |x| < a - r for ``rect``, while ``paper`` keeps h/(2a) on r - a ≤ |x| ≤ r + a.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache

import numba
import numpy as np
import torch

from ._threads import sync_threads


@dataclass(frozen=True)
class Window:
    """A derivative window g(u) for a step of unit height (area 1).

    ``tensor`` evaluates it on torch tensors (any device); ``scalar`` is the same
    formula on one float, compiled into the CPU derivative kernel when ``fused``;
    the tests hold the two equal to each other and to the closed form of docs/METHOD.md §2.
    ``support`` is the half-width of g's support in units of a (inf when unbounded).
    Windows that need exp() are not fused: numba cannot vectorize exp here, and
    torch's vectorized exp is faster than a scalar loop.
    """

    name: str
    tensor: Callable[[torch.Tensor, float], torch.Tensor]
    scalar: Callable[[float, float], float]
    support: float
    fused: bool


WINDOWS: dict[str, Window] = {}
"""Registered derivative windows by name."""


def register_window(support: float, scalar: Callable[[float, float], float], fused: bool):
    def deco(fn):
        WINDOWS[fn.__name__] = Window(fn.__name__, fn, scalar, support, fused)
        return fn

    return deco


_SQRT_2PI = math.sqrt(2.0 * math.pi)


@numba.njit(cache=True, inline="always")
def _rect(u, a):  # pragma: no cover - compiled
    return np.float32(0.5) / a if abs(u) <= a else np.float32(0.0)


@numba.njit(cache=True, inline="always")
def _tri(u, a):  # pragma: no cover - compiled
    return max(np.float32(0.0), a - abs(u)) / (a * a)


@numba.njit(cache=True, inline="always")
def _gauss(u, a):  # pragma: no cover - compiled
    return np.float32(math.exp(-u * u / (np.float32(2.0) * a * a)) / (_SQRT_2PI * a))


@numba.njit(cache=True, inline="always")
def _exp(u, a):  # pragma: no cover - compiled
    return np.float32(math.exp(-abs(u) / a) * (np.float32(0.5) / a))


@register_window(support=1.0, scalar=_rect, fused=True)
def rect(u: torch.Tensor, a: float) -> torch.Tensor:
    """Rectangle: g(u) = h/(2a) on |u| ≤ a, else 0.  The paper's and the reference code's."""
    return (u.abs() <= a).to(u.dtype).mul_(0.5 / a)


@register_window(support=1.0, scalar=_tri, fused=True)
def tri(u: torch.Tensor, a: float) -> torch.Tensor:
    """Triangle: g(u) = h/a² · max(0, a - |u|).  *Ours*."""
    return (a - u.abs()).clamp_(min=0.0).mul_(1.0 / (a * a))


@register_window(support=math.inf, scalar=_gauss, fused=False)
def gauss(u: torch.Tensor, a: float) -> torch.Tensor:
    """Gaussian: g(u) = h/(√(2π)·a) · exp(-u²/(2a²)).  *Ours*."""
    return torch.exp(u * u * (-1.0 / (2.0 * a * a))).mul_(1.0 / (_SQRT_2PI * a))


@register_window(support=math.inf, scalar=_exp, fused=False)
def exp(u: torch.Tensor, a: float) -> torch.Tensor:
    """Laplace: g(u) = h/(2a) · exp(-|u|/a).  *Ours*."""
    return torch.exp(u.abs() * (-1.0 / a)).mul_(0.5 / a)


@numba.njit(parallel=True, cache=True, nogil=True)
def _forward_kernel(x, y, binary, r, inv_delta, delta, K):  # pragma: no cover - compiled
    zero = np.float32(0.0)
    for i in numba.prange(x.shape[0]):
        xi = x[i]
        if binary:
            y[i] = np.float32(1.0) if xi >= zero else np.float32(-1.0)
        else:
            level = min(max(np.ceil((abs(xi) - r) * inv_delta), zero), K)
            y[i] = level * delta * (np.float32(xi > zero) - np.float32(xi < zero))


@cache
def _derivative_kernel(window: str):
    """φ' as one numba loop per step with the window's scalar form inlined (so it vectorizes)."""
    g = WINDOWS[window].scalar

    @numba.njit(parallel=True, nogil=True)
    def kernel(x, d, a, steps, mirrored, h):  # pragma: no cover - compiled
        zero = np.float32(0.0)
        for k in range(steps.shape[0]):
            s = steps[k]
            mirror = mirrored[k]
            first = k == 0
            for i in numba.prange(x.shape[0]):
                u = abs(x[i])
                v = g(u - s, a)
                if mirror:
                    v += g(u + s, a)
                d[i] = (zero if first else d[i]) + h * v

    return kernel


OVERLAPS = ("paper", "sum")
"""How the derivative combines the windows of the steps at ±s_k (``activations.overlap``; module docstring)."""

ACTIVATION_PRESETS: dict[str, dict] = {
    # The reference code's activation works out to r = 1 with a rect window of a = 0.5
    # (gradient 1 on 0.5 ≤ |x| ≤ 1.5); see reference_code_activation.
    "reference": {"N": 1, "r": 1.0, "a": 0.5, "window": "rect"},
}


class MultiStepActivation:
    """φ with its window derivative, for one (N, r, a, window, overlap) setting.

    On the CPU, forward and derivative are numba loops (``_forward_kernel``, then
    ``_derivative_kernel``), the derivative saved for backward; elsewhere they are torch ops.
    (One loop writing both took 1.2 ms instead of 0.33 for a 100×32×12×12 input in five processes
    of six: docs/BENCHMARKS.md, session 14.)
    """

    def __init__(self, N: int = 1, r: float = 0.5, a: float = 0.5, window: str = "rect", overlap: str = "paper"):
        if window not in WINDOWS:
            raise ValueError(f"unknown window {window!r}; registered: {sorted(WINDOWS)}")
        if overlap not in OVERLAPS:
            raise ValueError(f"unknown overlap {overlap!r}; one of {OVERLAPS}")
        if not 0 <= N <= 8:
            raise ValueError(f"activation N must be in 0..8, got {N}")
        if a <= 0:
            raise ValueError(f"a must be > 0, got {a}")
        self.N, self.r, self.a, self.window, self.overlap = int(N), float(r), float(a), window, overlap
        self.g = WINDOWS[window]
        if self.N == 0:
            # One step at 0 of height 2 (-1 → +1); g is even, so g(x) = g(|x|).
            self.K, self.delta, self.height = 1, 2.0, 2.0
            locations, mirrored = [0.0], [False]
        else:
            self.K = 2 ** (self.N - 1)
            self.delta = self.height = 1.0 / self.K
            locations = [self.r + k * self.delta for k in range(self.K)]
            # overlap "sum" adds the window of the mirror step at -s, which reaches x ≥ 0 only if s lies
            # within the window's support; the paper's form never does.
            mirrored = [overlap == "sum" and s <= self.g.support * self.a for s in locations]
        self.steps = np.array(locations, dtype=np.float32)
        self.mirrored = np.array(mirrored, dtype=np.bool_)

    @property
    def levels(self) -> torch.Tensor:
        """Output levels, ascending: 2 for binary, 2K+1 otherwise."""
        if self.N == 0:
            return torch.tensor([-1.0, 1.0])
        return torch.arange(-self.K, self.K + 1, dtype=torch.float32) * self.delta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """φ(x), as torch ops."""
        if self.N == 0:
            return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)
        level = torch.ceil((x.abs() - self.r) * (1.0 / self.delta)).clamp_(0, self.K)
        return level.mul_(torch.sign(x)).mul_(self.delta)

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        """φ'(x) = Σ_k h·g(|x| - s_k), plus the mirror terms h·g(|x| + s_k) with overlap "sum", as torch
        ops; mirror terms that are identically 0 for the window's support are skipped."""
        u = x.abs()
        d = torch.zeros_like(x)
        for s, mirror in zip(self.steps.tolist(), self.mirrored.tolist()):
            d.add_(self.g.tensor(u - s, self.a))
            if mirror:
                d.add_(self.g.tensor(u + s, self.a))
        return d.mul_(self.height)

    def forward_and_derivative(self, x: torch.Tensor, want_d: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """φ(x) and, if asked, φ'(x): fused numba kernels on the CPU, torch ops elsewhere."""
        if x.device.type != "cpu" or x.dtype != torch.float32:
            return self.forward(x), (self.derivative(x) if want_d else None)
        sync_threads()
        xc = x.contiguous().view(-1).numpy()
        y = torch.empty_like(x, memory_format=torch.contiguous_format)
        f32 = np.float32
        _forward_kernel(xc, y.view(-1).numpy(), self.N == 0, f32(self.r), f32(1.0 / self.delta),
                        f32(self.delta), f32(self.K))
        if not want_d:
            return y, None
        if not self.g.fused:
            return y, self.derivative(x)
        d = torch.empty_like(y)
        _derivative_kernel(self.window)(xc, d.view(-1).numpy(), f32(self.a), self.steps,
                                        self.mirrored, f32(self.height))
        return y, d

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and x.requires_grad:
            return _StepFunction.apply(x, self)
        return self.forward_and_derivative(x.detach(), want_d=False)[0]

    def __repr__(self) -> str:
        return (f"MultiStepActivation(N={self.N}, r={self.r}, a={self.a}, window={self.window!r}, "
                f"overlap={self.overlap!r})")


class _StepFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, act: MultiStepActivation) -> torch.Tensor:
        y, d = act.forward_and_derivative(x, want_d=True)
        ctx.save_for_backward(d)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (d,) = ctx.saved_tensors
        return grad * d, None


@lru_cache(maxsize=64)
def _activation(N: int, r: float, a: float, window: str, overlap: str) -> MultiStepActivation:
    return MultiStepActivation(N, r, a, window, overlap)


def quantize_activation(
    x: torch.Tensor, N: int = 1, r: float = 0.5, a: float = 0.5, window: str = "rect", overlap: str = "paper"
) -> torch.Tensor:
    """Discretize x to the multi-step activation φ (autograd-aware; backward from the window)."""
    return _activation(int(N), float(r), float(a), window, overlap)(x)


def reference_code_activation(x: torch.Tensor) -> torch.Tensor:
    """The reference code's ``discrete_neuron_3states``, transcribed.

        round(hard_sigmoid(2(x-1)) + hard_sigmoid(2(x+1)) - 1),  hard_sigmoid(z) = clip((z+1)/2, 0, 1)

    with round passing the gradient straight through (C ``round``: halves away from 0).
    It equals ``quantize_activation(x, **ACTIVATION_PRESETS["reference"])`` forward and
    backward everywhere except the measure-zero set |x| = 1, where C rounds 0.5 up.
    """
    v = (x - 0.5).clamp(0.0, 1.0) + (x + 1.5).clamp(0.0, 1.0) - 1.0
    rounded = torch.sign(v) * torch.floor(v.abs() + 0.5)
    return v + (rounded - v).detach()
