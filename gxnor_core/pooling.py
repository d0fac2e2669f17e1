"""2×2 max-pooling, stride 2, with PyTorch's values, indices and gradients, in one pass each way.

Both networks of a comparison — GXNOR and its full-precision twin — pool after their convolutions, and on the
CPU ``F.max_pool2d`` was a fifth of a ``mnist_cnn`` training step (its forward walks each window with a
generic loop; its backward zero-fills the input gradient, then scatters).  ``MaxPool2x2`` computes the same
thing with two numba loops over the non-overlapping windows (docs/BENCHMARKS.md, "Training step").

Identical to ``nn.MaxPool2d(2)`` bit for bit, by construction:
- forward: each window is scanned in PyTorch's order — (0, 0), (0, 1), (1, 0), (1, 1) — keeping the first
  maximum (``v > best``) unless a NaN comes (``isnan(v)``: NaN wins, the last one), starting from −∞ at the
  window's first element: the same value and the same index (row·W + column in the input plane);
- backward: windows do not overlap, so every input element receives at most one output's gradient, which
  PyTorch adds to a zero: ``0 + g`` (which also turns −0.0 into +0.0, as PyTorch's sum does).
Inputs PyTorch pools differently (not float32, not on the CPU) take ``F.max_pool2d`` itself.
"""

from __future__ import annotations

import numba
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._threads import sync_threads


@numba.njit(parallel=True, cache=True, nogil=True)
def _forward(x, out, idx):  # pragma: no cover - compiled
    planes, ho, wo = out.shape
    width = x.shape[2]
    for p in numba.prange(planes):
        for i in range(ho):
            for j in range(wo):
                best = -np.inf
                at = 2 * i * width + 2 * j
                for di in range(2):
                    for dj in range(2):
                        v = x[p, 2 * i + di, 2 * j + dj]
                        if v > best or np.isnan(v):
                            best = v
                            at = (2 * i + di) * width + 2 * j + dj
                out[p, i, j] = best
                idx[p, i, j] = at


@numba.njit(parallel=True, cache=True, nogil=True)
def _backward(grad, idx, grad_in):  # pragma: no cover - compiled
    planes, ho, wo = grad.shape
    width = grad_in.shape[2]
    for p in numba.prange(planes):
        for i in range(ho):
            for j in range(wo):
                at = idx[p, i, j]
                for di in range(2):
                    for dj in range(2):
                        grad_in[p, 2 * i + di, 2 * j + dj] = 0.0
                grad_in[p, at // width, at % width] = 0.0 + grad[p, i, j]
        # rows and columns past the last full window (odd sizes) get no gradient
        for r in range(2 * ho, grad_in.shape[1]):
            for c in range(width):
                grad_in[p, r, c] = 0.0
        for r in range(2 * ho):
            for c in range(2 * wo, width):
                grad_in[p, r, c] = 0.0


def _planes(t: torch.Tensor) -> np.ndarray:
    """A contiguous N×C×H×W tensor as an (N·C)×H×W array (a view)."""
    return t.view(-1, t.shape[-2], t.shape[-1]).numpy()


def _pool_with_indices(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    n, c, h, w = x.shape
    out = torch.empty((n, c, h // 2, w // 2), dtype=x.dtype)
    idx = torch.empty(out.shape, dtype=torch.int64)
    sync_threads()
    _forward(_planes(x), _planes(out), _planes(idx))
    return out, idx


class _MaxPool2x2(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        out, idx = _pool_with_indices(x)
        ctx.save_for_backward(idx)
        ctx.input_shape = x.shape
        ctx.mark_non_differentiable(idx)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (idx,) = ctx.saved_tensors
        grad_in = torch.empty(ctx.input_shape, dtype=grad.dtype)
        sync_threads()
        _backward(_planes(grad.contiguous()), _planes(idx), _planes(grad_in))
        return grad_in


def max_pool2x2(x: torch.Tensor) -> torch.Tensor:
    """``F.max_pool2d(x, 2)`` of an N×C×H×W tensor: the same values, indices and gradients (module docstring)."""
    if x.device.type != "cpu" or x.dtype != torch.float32 or x.dim() != 4 or x.shape[-1] < 2 or x.shape[-2] < 2:
        return F.max_pool2d(x, 2)
    x = x.contiguous()
    if torch.is_grad_enabled() and x.requires_grad:
        return _MaxPool2x2.apply(x)
    return _pool_with_indices(x)[0]


class MaxPool2x2(nn.MaxPool2d):
    """``nn.MaxPool2d(2)`` (the same module to everything that inspects a network) computed by ``max_pool2x2``."""

    def __init__(self):
        super().__init__(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return max_pool2x2(x)
