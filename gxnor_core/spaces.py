"""Discrete weight spaces Z_N (docs/METHOD.md §1)."""

from __future__ import annotations

import numba
import numpy as np
import torch

COMPILED_VALUES = 1 << 12  # states from which ``value`` runs its compiled loop on the CPU


@numba.njit(cache=True, nogil=True)
def _values(idx, step, H, out):  # pragma: no cover - compiled
    """out = float32(n)·step − H, rounded after each operation as the torch ops round (no fused multiply-add)."""
    for i in range(idx.shape[0]):
        out[i] = np.float32(idx[i]) * step - H


class DiscreteSpace:
    """Z_N = { -H + n·Δz : n = 0 … 2^N },  Δz = 2H / 2^N,  |Z_N| = 2^N + 1.

    N=0 is binary {-H, H}, N=1 ternary {-H, 0, H}, N≥2 multi-level.  A weight is
    stored as its integer state index n (int8 up to N=6, int16 above) and turned
    into ``-H + n·Δz`` only to compute.
    """

    def __init__(self, N: int = 1, H: float = 1.0):
        if not 0 <= int(N) <= 8:
            raise ValueError(f"N must be in 0..8, got {N}")
        if H <= 0:
            raise ValueError(f"H must be > 0, got {H}")
        self.N = int(N)
        self.H = float(H)
        self.num_states = 2**self.N + 1
        self.max_index = 2**self.N
        self.step = 2.0 * self.H / 2**self.N
        self.index_dtype = torch.int8 if self.N <= 6 else torch.int16

    @property
    def states(self) -> torch.Tensor:
        """The 2^N+1 state values, ascending (index 0 = -H)."""
        return self.value(torch.arange(self.num_states))

    def value(self, idx: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """State values -H + n·Δz of integer indices n (a new float tensor): float32 n·Δz − H, each operation
        rounded to float32 — by torch ops, or, for a large contiguous CPU tensor of states, by one compiled
        loop (a quarter of their time for ``mnist_cnn``'s fc1; the same values to the bit, tested)."""
        if (dtype == torch.float32 and torch.get_default_dtype() == torch.float32  # (else torch's product is
                and idx.device.type == "cpu" and idx.dtype in (torch.int8, torch.int16)  # a double, rounded once)
                and idx.numel() >= COMPILED_VALUES and idx.is_contiguous()):
            out = torch.empty(idx.shape, dtype=torch.float32)
            _values(idx.view(-1).numpy(), np.float32(self.step), np.float32(self.H), out.view(-1).numpy())
            return out
        return torch.mul(idx, self.step).to(dtype).sub_(self.H)

    def index(self, x: torch.Tensor) -> torch.Tensor:
        """Nearest state index of real values x (clipped to [-H, H]); ties round half to even."""
        n = torch.round((x.to(torch.float64) + self.H) / self.step)
        return n.clamp_(0, self.max_index).to(self.index_dtype)

    def __repr__(self) -> str:
        return f"DiscreteSpace(N={self.N}, H={self.H})"
