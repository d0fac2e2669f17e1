"""2×2 max-pooling, stride 2, with PyTorch's values, indices and gradients: the forward in one numba pass.

Both networks of a comparison — GXNOR and its full-precision twin — pool after their convolutions, and on the
CPU the forward of ``F.max_pool2d`` was a quarter of a ``mnist_cnn`` training step (≈ 10 ms of ≈ 40 on one
thread for the first layer's 100×32×24×24 output: a generic loop per window).  ``MaxPool2x2`` computes the
same values and indices in one numba loop over the non-overlapping windows (≈ 0.9 ms; docs/BENCHMARKS.md);
the backward is PyTorch's own op for max_pool2d, given those indices.

Identical to ``nn.MaxPool2d(2)`` bit for bit: each window is scanned in PyTorch's order — (0, 0), (0, 1),
(1, 0), (1, 1) — keeping the first maximum (``v > best``) unless a NaN comes (``isnan(v)``: NaN wins, the last
one), starting from −∞ at the window's first element: the same value and the same index (row·W + column in
the input plane), hence the same gradients.  Inputs PyTorch pools otherwise (not float32, not on the CPU)
take ``F.max_pool2d`` itself.
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
    """The forward above; the backward PyTorch's own op for max_pool2d, given the same indices."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        out, idx = _pool_with_indices(x)
        ctx.save_for_backward(x, idx)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        x, idx = ctx.saved_tensors
        return torch.ops.aten.max_pool2d_with_indices_backward(grad, x, [2, 2], [2, 2], [0, 0], [1, 1], False, idx)


def max_pool2x2(x: torch.Tensor) -> torch.Tensor:
    """``F.max_pool2d(x, 2)`` of an N×C×H×W tensor: the same values, indices and gradients (module docstring)."""
    if (x.device.type != "cpu" or x.dtype != torch.float32 or x.dim() != 4 or x.shape[-1] < 2 or x.shape[-2] < 2
            or x.numel() == 0):
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
