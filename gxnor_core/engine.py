"""Running an exported model (``.gxn``, gxnor_core.export) on the CPU with integer kernels (docs/EXPORT.md).

Per layer:

- the first layer sees real-valued inputs (pixels), so it is not an XNOR layer: it runs the model's own float
  conv/linear with the weights −H, 0, +H, then max-pool, BatchNorm and φ in one compiled pass with float32
  thresholds read off the model's own BatchNorm and φ (``_float_steps``; PyTorch's ops where they cannot be),
  and hands on trits (or, with ``first_layer="int8"``, runs on 8-bit pixels in integers: judged by test error,
  docs/EXPORT.md);
- every other layer is a ternary × ternary product computed exactly in integers, s = Σ x·w, by one of
  gxnor_core.kernels (by default the one measured fastest for the layer and batch size on this machine, else
  the fixed rule ``kernels.choose``): a convolution as the product of its patches over channels-last trits
  (``kernels.conv_product``: ``popcount`` packs them from the image, ``int8`` multiplies the im2col), or with
  ``onednn`` as oneDNN's int8 convolution on the trits themselves; then an
  integer max-pool, and the folded thresholds: with u = flip·s, φ(BN(H·s)) = [u ≥ hi] − [u ≤ lo];
- the output layer's sums s are the logits before the last scale; logits = BN(H·s), the model's own
  BatchNorm in float32.

Because every sum is an exact integer and the thresholds were read off the model's own BatchNorm and φ,
every layer's output equals the PyTorch model's in eval mode (exactly when H is a power of two, the default
1, where the float model's sums of ±H are exact too).  The engine counts the gate events it executes — pairs
of non-zero input and non-zero weight, padding excluded — per XNOR layer, as the probes do
(gxnor_core.probes).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numba
import numpy as np
import torch
import torch.nn.functional as F

from .activations import MultiStepActivation
from .export import ExportedModel, read_model
from .kernels import (
    KERNELS,
    MeasuredChoices,
    TernaryMatrix,
    candidates,
    choose,
    conv_gate_events,
    conv_out_size,
    conv_product,
    fast_int8,
    forced_kernel,
    gate_events,
    onednn_conv2d_tensor,
    onednn_conv_packed,
    onednn_int8,
    shifted_channels_last,
    time_candidates,
)
from .spaces import DiscreteSpace

TUNE_REPEATS = 3  # rounds timing every candidate kernel when the engine measures which is fastest (``tune=True``)
TUNE_BUDGET_S = 0.05  # … two once the rounds have taken this long
TUNE_MAX_SAMPLES = 64  # a larger batch is measured on its first 64 samples and shares their choice
FIRST_LAYERS = ("float", "int8")
"""How the engine runs the real-input first layer: ``float``, the model's own float ops (exact); ``int8``, on
8-bit pixels in integers (judged by test error: docs/EXPORT.md, "The 8-bit first layer")."""


@dataclass
class EngineResult:
    """One batch through the engine: ``logits`` (float32, N × classes), ``sums`` (the output layer's integer
    sums s, int32 — the logits before the last scale), ``events`` (gate events executed per XNOR layer, whole
    batch), ``kernels`` (the kernel each XNOR layer ran), with ``trace`` the trits each hidden layer
    produced (int8, in the model's layout: N×C×H×W or N×F), and with ``per_sample`` the gate events each sample
    executed per XNOR layer (int64, N; they add up to ``events``); ``tuning_seconds``, the part of the run spent
    timing kernels (``Engine(tune=True)``, the first batch of a size), which a latency should leave out."""

    logits: torch.Tensor
    sums: np.ndarray
    events: dict[str, int]
    kernels: dict[str, str]
    trits: dict[str, np.ndarray] = field(default_factory=dict)
    sample_events: dict[str, np.ndarray] = field(default_factory=dict)
    tuning_seconds: float = 0.0  # of this run's time, spent measuring kernels (a batch size's first run)


@dataclass(frozen=True)
class _Layer:
    name: str
    kind: str
    role: str
    pool: bool
    weights: TernaryMatrix | torch.Tensor  # float32 weights for the real-input layer
    kernel: int = 0
    padding: int = 0
    stride: int = 1
    thresholds: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    float_thresholds: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # for float32 sums (``onednn``)
    bn: tuple[torch.Tensor, ...] | None = None
    bn_eps: float = 0.0
    out_shape: tuple[int, ...] = ()
    filters: torch.Tensor | None = None  # a conv's int8 weights (out, C, k, k), for ``onednn_conv2d``
    steps: tuple[np.ndarray, ...] | None = None  # the real-input layer's BN and φ as thresholds (``_float_steps``)


def _max_pool2(x, h_axis: int):
    """2×2 max-pooling, stride 2, floor (``F.max_pool2d(x, 2)``) of a tensor or array whose image rows and
    columns are axes h_axis and h_axis + 1: first the maximum of each pair of rows (whole rows, contiguous),
    then of each pair of columns of that (max is exact, so any order gives the same values; on this project's
    machines it is several times faster than PyTorch's max_pool2d, docs/BENCHMARKS.md, "Engine")."""
    h2, w2 = x.shape[h_axis] // 2, x.shape[h_axis + 1] // 2
    lead = (slice(None),) * h_axis
    maximum = torch.maximum if isinstance(x, torch.Tensor) else np.maximum
    rows = maximum(x[(*lead, slice(0, 2 * h2, 2))], x[(*lead, slice(1, 2 * h2, 2))])
    return maximum(rows[(*lead, slice(None), slice(0, 2 * w2, 2))], rows[(*lead, slice(None), slice(1, 2 * w2, 2))])


@numba.njit(nogil=True, inline="always")
def _nan_max(a, b):  # pragma: no cover - compiled
    """``torch.maximum`` of two floats: NaN if either is (``|``, not ``or``: a select, no branch)."""
    return a if (a > b) | (a != a) else b


@numba.njit(cache=True, nogil=True)
def _pool_kernel(x, out):  # pragma: no cover - compiled
    n, c, h2, w2 = out.shape
    for b in range(n):
        for ch in range(c):
            for i in range(h2):
                for j in range(w2):
                    out[b, ch, i, j] = _nan_max(_nan_max(x[b, ch, 2 * i, 2 * j], x[b, ch, 2 * i, 2 * j + 1]),
                                                _nan_max(x[b, ch, 2 * i + 1, 2 * j], x[b, ch, 2 * i + 1, 2 * j + 1]))


@numba.njit(cache=True, nogil=True)
def _pool_thresholds(s, pool, flip, lo, hi, t):  # pragma: no cover - compiled
    """An XNOR layer's output trits t (N, H', W', C) from its sums s (N, H, W, C; int32, or float32 holding
    integers): the 2×2 max-pool of s where ``pool`` (H' = H // 2), then with u = flip·s, [u ≥ hi] − [u ≤ lo]
    per channel — one pass, the channels innermost."""
    n, h, w, c = t.shape
    for b in range(n):
        for i in range(h):
            for j in range(w):
                for ch in range(c):
                    if pool:
                        v = max(max(s[b, 2 * i, 2 * j, ch], s[b, 2 * i, 2 * j + 1, ch]),
                                max(s[b, 2 * i + 1, 2 * j, ch], s[b, 2 * i + 1, 2 * j + 1, ch]))
                    else:
                        v = s[b, i, j, ch]
                    u = v * flip[ch]
                    t[b, i, j, ch] = np.int8(u >= hi[ch]) - np.int8(u <= lo[ch])


@numba.njit(cache=True, nogil=True)
def _affine_pool_thresholds(s, b, pool, flip, lo, hi, t):  # pragma: no cover - compiled
    """``_pool_thresholds`` of U = 2·s − b (b per position and channel, (H, W, C)): the 8-bit first layer's
    integers, formed, pooled and thresholded in one pass."""
    n, h, w, c = t.shape
    two = s.dtype.type(2)
    for n_ in range(n):
        for i in range(h):
            for j in range(w):
                for ch in range(c):
                    if pool:
                        v = max(max(two * s[n_, 2 * i, 2 * j, ch] - b[2 * i, 2 * j, ch],
                                    two * s[n_, 2 * i, 2 * j + 1, ch] - b[2 * i, 2 * j + 1, ch]),
                                max(two * s[n_, 2 * i + 1, 2 * j, ch] - b[2 * i + 1, 2 * j, ch],
                                    two * s[n_, 2 * i + 1, 2 * j + 1, ch] - b[2 * i + 1, 2 * j + 1, ch]))
                    else:
                        v = two * s[n_, i, j, ch] - b[i, j, ch]
                    u = v * flip[ch]
                    t[n_, i, j, ch] = np.int8(u >= hi[ch]) - np.int8(u <= lo[ch])


@numba.njit(nogil=True, inline="always")
def _float_trit(v, f, low, high, nan, minus_inf, plus_inf):  # pragma: no cover - compiled
    """The trit of one pooled first-layer value v (``_float_pool_steps``), without branches: the thresholds'
    answer where v is finite, else the channel's trit for NaN, −∞ or +∞."""
    u = v * f
    t = np.int8(u >= high) - np.int8(u <= low)
    t = plus_inf if v == np.inf else t
    t = minus_inf if v == -np.inf else t
    return nan if v != v else t


@numba.njit(cache=True, nogil=True)
def _float_pool_steps(y, pool, flip, lo, hi, special, t):  # pragma: no cover - compiled
    """The first layer's trits t (N, H', W', C) from its float32 pre-activation y (N, C, H, W): the 2×2
    max-pool where ``pool`` (NaN winning, as ``torch.maximum``), then φ(BN(·)) as float thresholds found on the
    model's own BatchNorm and φ (``_float_steps``): with u = flip·v, [u ≥ hi] − [u ≤ lo] for finite v (a NaN
    threshold is never met), and ``special`` (NaN, −∞, +∞ rows) where v is not finite — one pass over y instead
    of pool, BatchNorm, φ and a transpose to channels-last.  Per image and channel: the maxima of row pairs,
    then of column pairs with the trits, into a buffer, in loops over the whole map where they can be (a loop
    per output row of 12 values vectorized poorly: 0.42–0.46 against 0.51–0.55 ms for ``mnist_cnn`` at batch
    64, one thread), then written out strided, channels-last."""
    n, h, w, c = t.shape
    rows, cols = y.shape[2], y.shape[3]
    out = t.reshape(n, h * w, c)
    pairs = np.empty(h * cols if pool else 0, dtype=y.dtype)  # the row pairs' maxima (pooling only)
    trits = np.empty(h * w, dtype=np.int8)
    for b in range(n):
        for ch in range(c):
            f, low, high = flip[ch], lo[ch], hi[ch]
            nan, minus_inf, plus_inf = special[0, ch], special[1, ch], special[2, ch]  # read once, not per value
            plane = y[b, ch].reshape(rows * cols)
            if pool:
                for i in range(h):
                    for j in range(cols):
                        pairs[i * cols + j] = _nan_max(plane[2 * i * cols + j], plane[(2 * i + 1) * cols + j])
                if cols % 2 == 0:  # the pairs' rows are whole column pairs: one loop over the map
                    for k in range(h * w):
                        v = _nan_max(pairs[2 * k], pairs[2 * k + 1])
                        trits[k] = _float_trit(v, f, low, high, nan, minus_inf, plus_inf)
                else:
                    for i in range(h):
                        for j in range(w):
                            v = _nan_max(pairs[i * cols + 2 * j], pairs[i * cols + 2 * j + 1])
                            trits[i * w + j] = _float_trit(v, f, low, high, nan, minus_inf, plus_inf)
            else:
                for k in range(h * w):
                    trits[k] = _float_trit(plane[k], f, low, high, nan, minus_inf, plus_inf)
            for k in range(h * w):
                out[b, k, ch] = trits[k]


def _smallest_key(g, low: int, high: int, level: float, channels: int) -> np.ndarray:
    """Per channel, the smallest integer key in [low, high] with g(key) ≥ level, for g non-decreasing in the
    key (one call of g per bisection step, all channels at once); high + 1 where there is none."""
    lo, hi = np.full(channels, low, dtype=np.int64), np.full(channels, high + 1, dtype=np.int64)
    while (lo < hi).any():
        mid = (lo + hi) // 2
        up = g(np.minimum(mid, high)) >= level
        hi, lo = np.where((lo < hi) & up, mid, hi), np.where((lo < hi) & ~up, mid + 1, lo)
    return lo


def _ordered(key: np.ndarray) -> np.ndarray:
    """float32 bit patterns (as int64) ↔ integers in the floats' order (its own inverse): negative floats have
    their magnitude bits reversed, so −max … −0, +0 … +max become consecutive increasing integers."""
    return np.where(key < 0, key ^ 0x7FFFFFFF, key)


def _float_of(key: np.ndarray) -> np.ndarray:
    return _ordered(key.astype(np.int64)).astype(np.int32).view(np.float32)


def _float_steps(f, channels: int, map_shape: tuple[int, ...]) -> tuple[np.ndarray, ...] | None:
    """(flip, lo, hi, special) such that for every float32 v per channel, f(v) — the model's BatchNorm then φ,
    values −1, 0, 1 — is ``_float_pool_steps``'s [u ≥ hi] − [u ≤ lo] with u = flip·v where v is finite, and
    ``special`` (rows: f(NaN), f(−∞), f(+∞); a NaN, which is no trit, as 0 — what the unfused path's cast to
    int8 gives) where it is not (the engine refuses non-finite inputs; a finite one can still overflow).  By
    bisection over the finite float32 values in their order (about 2 × 32 evaluations of f, all channels at
    once), which is exact because f is monotone on them: each of BatchNorm's roundings is, and φ is a step
    function (the caller refuses a BatchNorm state that is not finite).  Each evaluation fills a channel's whole
    map (``map_shape``, the model's H×W there) with the candidate, as the model's tensors are laid out; None —
    take the unfused path — where a map's positions disagree."""
    shape = (1, channels, *map_shape)

    def h(values: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            v = torch.from_numpy(values.astype(np.float32)).reshape(1, channels, *([1] * len(map_shape)))
            out = f(v.expand(shape).contiguous()).reshape(channels, -1).nan_to_num(0.0)  # NaN: no trit, 0
        if not bool((out == out[:, :1]).all()):
            raise ArithmeticError("a map's positions disagree")
        return out[:, 0].round().numpy().astype(np.int8)

    top = int(np.float32(np.finfo(np.float32).max).view(np.int32))  # the key of the largest finite float
    bottom = -top - 1  # …and of the most negative one
    try:
        ends = h(np.full(channels, -np.finfo(np.float32).max)), h(np.full(channels, np.finfo(np.float32).max))
        flip = np.where(ends[0] <= ends[1], 1.0, -1.0).astype(np.float32)
        g = lambda key: h(flip * _float_of(key))  # f at v = flip·(the float of key): non-decreasing in key
        zero, one = (_smallest_key(g, bottom, top, level, channels) for level in (0, 1))
        special = np.stack([h(np.full(channels, v)) for v in (np.nan, -np.inf, np.inf)])
    except ArithmeticError:
        return None
    nan = np.float32(np.nan)
    hi = np.where(one > top, nan, _float_of(np.minimum(one, top)))  # never 1 where no finite value reaches it
    lo = np.where(zero <= bottom, nan, _float_of(np.maximum(zero - 1, bottom)))  # never −1 where none is below 0
    return flip, lo.astype(np.float32), hi.astype(np.float32), special


def _step_thresholds(f, scale: float, umax: int, channels: int, conv: bool) -> tuple[np.ndarray, ...]:
    """(flip, lo, hi) as float32 such that, for every integer U ∈ [−umax, umax], f(U·scale) per channel is
    [u ≥ hi] − [u ≤ lo] with u = flip·U — for a per-channel f (BatchNorm then φ) monotone in its input, by
    bisection on the integers (about 2·log₂(umax) evaluations of f, all channels at once)."""
    shape = (1, channels, 1, 1) if conv else (1, channels)

    def h(u: np.ndarray) -> np.ndarray:  # f at U = flip·u, per channel: non-decreasing in u
        with torch.no_grad():
            v = torch.from_numpy((flip * u).astype(np.float32)).reshape(shape) * np.float32(scale)
            return f(v).reshape(channels).round().numpy()

    flip = np.ones(channels, dtype=np.int64)
    ends = h(np.full(channels, -umax)), h(np.full(channels, umax))
    flip = np.where(ends[0] <= ends[1], 1, -1)
    zero, one = (_smallest_key(h, -umax, umax, level, channels) for level in (0.0, 1.0))
    return tuple(a.astype(np.float32) for a in (flip, zero - 1, one))


def _pool_float(y: torch.Tensor) -> torch.Tensor:
    """``_max_pool2`` of a float32 N×C×H×W tensor in one compiled pass (the first layer's output, the largest
    pooled tensor: twice as fast as the strided maxima here); NaN wins, as in ``torch.maximum``."""
    x = y.contiguous().numpy()
    out = np.empty((x.shape[0], x.shape[1], x.shape[2] // 2, x.shape[3] // 2), dtype=np.float32)
    _pool_kernel(x, out)
    return torch.from_numpy(out)


class Engine:
    """An exported model, ready to run: ``engine(x)`` → logits, ``engine.run(x)`` → EngineResult.

    ``kernel`` forces one kernel of gxnor_core.kernels for every XNOR layer (also ``GXNOR_ENGINE_KERNEL``).
    By default (``tune``) each layer's kernel is chosen by measurement on this machine: the first batch whose
    size rounds up to a new power of two times every candidate kernel (``kernels.candidates``) on that layer's
    actual input and keeps the fastest for that size (``measured`` holds the timings; every kernel gives the
    same integers, so the choice changes only the time).  ``tune=False`` takes the fixed rule
    ``kernels.choose`` instead.  Inputs are what the model takes: float N×C×H×W (or N×F), preprocessed as
    docs/METHOD.md §5 says.
    """

    def __init__(self, model: ExportedModel | str | Path | bytes, kernel: str | None = None,
                 first_layer: str = "float", tune: bool = True):
        self.model = model if isinstance(model, ExportedModel) else read_model(model)
        if kernel is not None and kernel not in KERNELS:
            raise ValueError(f"unknown kernel {kernel!r}; one of {', '.join(KERNELS)}")
        if first_layer not in FIRST_LAYERS:
            raise ValueError(f"unknown first layer {first_layer!r}; one of {', '.join(FIRST_LAYERS)}")
        self.first_layer = first_layer
        self.kernel = kernel or forced_kernel()
        self.tune = tune
        # (layer, rows rounded up to a power of two) → kernel; thread-safe (the API's scoring threads share engines)
        self._choices = MeasuredChoices()
        self.measured = self._choices.timings  # the seconds each candidate took there
        meta = self.model.meta
        self.input_shape = tuple(meta["input_shape"])
        self.H = float(meta["weights"]["H"])
        self.space = DiscreteSpace(int(meta["weights"]["N"]), self.H)
        act = meta["activations"]
        self.phi = MultiStepActivation(int(act["N"]), float(act["r"]))
        self.layers: list[_Layer] = []
        self._onednn: dict[str, torch.Tensor] = {}  # conv weights in oneDNN's layout, by layer
        previous: dict | None = None
        for entry in meta["layers"]:
            self.layers.append(self._layer(entry, previous))
            previous = entry
        self._eight_bit = self._eight_bit_layer(self.layers[0]) if first_layer == "int8" else None

    def _layer(self, entry: dict, previous: dict | None) -> _Layer:
        arrays = self.model.layer_arrays(entry["name"])
        trits = arrays["weights"].reshape(entry["weight_shape"])
        conv = entry["kind"] == "conv"
        common = {"name": entry["name"], "kind": entry["kind"], "role": entry["role"], "pool": entry["pool"],
                  "out_shape": tuple(entry["out_shape"]), "bn_eps": float(entry["bn_eps"])}
        if conv:
            common.update(kernel=trits.shape[-1], padding=int(entry["padding"]), stride=int(entry["stride"]))
        bn = None
        if entry["role"] != "xnor":
            bn = tuple(torch.from_numpy(arrays[k].copy()) for k in ("bn_mean", "bn_var", "bn_weight", "bn_bias"))
        if entry["role"] == "real_input":
            # The model's own weight values: state n ↦ −H + n·Δz, as DiscreteSpace.value computes them.
            state = torch.from_numpy((trits.astype(np.int64) + 1) // (2 if self.space.N == 0 else 1))
            layer = _Layer(**common, weights=self.space.value(state).contiguous(), bn=bn)
            steps = None
            if all(bool(torch.isfinite(a).all()) for a in bn):  # else BN and φ as PyTorch's ops, unfused
                bn_module = self._bn_module(layer)
                steps = _float_steps(lambda v: self.phi(bn_module(v)), layer.out_shape[0], layer.out_shape[1:])
            return replace(layer, steps=steps)
        if conv:  # rows ordered (kernel row, kernel column, channel), as im2col's patches
            rows = trits.transpose(0, 2, 3, 1).reshape(trits.shape[0], -1)
        elif previous is not None and previous["kind"] == "conv":  # the model flattens C×H×W, the engine H×W×C
            c, h, w = previous["out_shape"]
            rows = trits.reshape(-1, c, h, w).transpose(0, 2, 3, 1).reshape(trits.shape[0], -1)
        else:
            rows = trits
        thresholds = float_thresholds = None
        if entry["role"] == "xnor":
            thresholds = (arrays["flip"].astype(np.int32), arrays["lo"], arrays["hi"])
            float_thresholds = tuple(a.astype(np.float32) for a in thresholds)  # exact: |values| < 2²⁴
        filters = torch.from_numpy(np.ascontiguousarray(trits, dtype=np.int8)) if conv else None
        return _Layer(**common, weights=TernaryMatrix.of(rows), thresholds=thresholds,
                      float_thresholds=float_thresholds, bn=bn, filters=filters)

    def __call__(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        return self.run(x).logits

    @torch.no_grad()
    def run(self, x: torch.Tensor | np.ndarray, trace: bool = False, per_sample: bool = False) -> EngineResult:
        x = torch.as_tensor(x, dtype=torch.float32)
        if tuple(x.shape[1:]) != self.input_shape and (x.dim() != 2 or x.shape[1] != np.prod(self.input_shape)):
            wanted = "×".join(map(str, self.input_shape))
            raise ValueError(f"input of shape {tuple(x.shape)}; this model takes N×{wanted}")
        if not np.isfinite(x.numpy()).all():  # the model would carry NaN on, a trit cannot (numpy: 20× torch's time)
            raise ValueError("input holds NaN or infinite values")
        if x.shape[0] == 0:
            raise ValueError("an empty batch: at least one sample")
        events, kernels, trits, sample_events = {}, {}, {}, {}
        tuning = 0.0  # seconds this run spends measuring kernels
        t = self._real_input(self.layers[0], x)
        if trace:
            trits[self.layers[0].name] = self._model_layout(t, self.layers[0])
        for layer in self.layers[1:]:
            n = t.shape[0]
            conv = layer.kind == "conv"
            if conv:
                (ho, wo), fan_in = self._out_size(t.shape, layer), layer.weights.shape[1]
                rows = n * ho * wo
            else:
                t = t.reshape(n, -1)
                rows, fan_in = n, t.shape[1]
            name, measuring = self._kernel(rows, fan_in, layer, t)
            tuning += measuring
            s, cols = self._product(layer, t, name)
            if conv:
                per = conv_gate_events(t, layer.weights, layer.kernel, layer.padding, layer.stride, per_sample)
            else:
                per = (cols != 0).astype(np.int64) @ layer.weights.nonzero_per_input if per_sample else None
            kernels[layer.name] = name
            if per_sample:  # each sample's events (they add up to the batch's)
                sample_events[layer.name] = per
            events[layer.name] = int(per.sum()) if per is not None else gate_events(cols, layer.weights)
            if conv:
                s = s.reshape(n, ho, wo, -1)
            if layer.role == "output":
                s = (_max_pool2(s, 1) if conv and layer.pool else s).astype(np.int32, copy=False)
                return EngineResult(self._output(layer, s), s, events, kernels, trits, sample_events, tuning)
            flip, lo, hi = layer.float_thresholds if s.dtype == np.float32 else layer.thresholds
            pool = conv and layer.pool
            s4 = s if conv else s.reshape(n, 1, 1, -1)
            t = np.empty((n, ho // 2, wo // 2, s4.shape[3]) if pool else s4.shape, dtype=np.int8)
            _pool_thresholds(s4, pool, flip, lo, hi, t)
            if not conv:
                t = t.reshape(n, -1)
            if trace:
                trits[layer.name] = self._model_layout(t, layer)
        raise AssertionError("an exported model ends with its output layer")

    def _product(self, layer: _Layer, t: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray | None]:
        """The layer's integer sums s on kernel ``name`` — (N·Ho·Wo, out) or, for ``onednn`` straight from the
        image, (N, Ho, Wo, out); int32, or float32 holding integers — and, for a fully connected layer, the input
        it multiplied (None for a convolution)."""
        if layer.kind == "conv":
            if name == "onednn" and onednn_int8():  # straight from the image, no im2col
                y = onednn_conv2d_tensor(shifted_channels_last(t), layer.filters, layer.padding, layer.stride,
                                         self._packed(layer))
                return y.permute(0, 2, 3, 1).numpy(), None  # exact integers in float32, (N, Ho, Wo, out) in memory
            return conv_product(t, layer.weights, layer.kernel, layer.padding, layer.stride, name), None
        return KERNELS[name](t, layer.weights), t

    def _kernel(self, rows: int, inputs: int, layer: _Layer, t: np.ndarray) -> tuple[str, float]:
        """The forced kernel; else, with ``tune``, the fastest candidate measured on this machine for the layer
        at this many rows (rounded up to a power of two; a batch of more than ``TUNE_MAX_SAMPLES`` samples
        counts as that many), measured the first time on the input at hand (its first ``TUNE_MAX_SAMPLES``
        samples); else ``choose``.  With the seconds this call spent measuring (0 but the first time)."""
        if self.kernel:
            return self.kernel, 0.0
        if not self.tune:
            return choose(rows, inputs, layer.weights.shape[0], int8=fast_int8(), onednn=onednn_int8(),
                          conv=layer.kind == "conv"), 0.0
        n = min(t.shape[0], TUNE_MAX_SAMPLES)  # larger batches take the choice measured on this many samples
        key = (layer.name, 1 << max(rows * n // t.shape[0] - 1, 0).bit_length())
        return self._choices.choose(key, lambda: self._timings(layer, t[:n], candidates(inputs)))

    def _timings(self, layer: _Layer, t: np.ndarray, names: list[str]) -> dict[str, float]:
        """Each kernel's best time for the layer's product on t (``kernels.time_candidates``: two rounds, or
        ``TUNE_REPEATS`` while they take under ``TUNE_BUDGET_S``)."""
        return time_candidates(names, lambda name: self._product(layer, t, name), TUNE_REPEATS, TUNE_BUDGET_S)

    @staticmethod
    def _out_size(shape: tuple[int, ...], layer: _Layer) -> tuple[int, int]:
        return conv_out_size(shape[1], shape[2], layer.kernel, layer.padding, layer.stride)

    def _packed(self, layer: _Layer) -> torch.Tensor:
        """The conv's weights in oneDNN's layout, reordered on first use and kept."""
        if layer.name not in self._onednn:
            self._onednn[layer.name] = onednn_conv_packed(layer.filters, layer.padding, layer.stride)
        return self._onednn[layer.name]

    def _eight_bit_layer(self, layer: _Layer) -> dict:
        """What the 8-bit first layer needs, computed once: its trits t (int8), 255·B with B = Σ t over the taps
        that fall inside the image (per position and output channel: padding makes it vary at the border), the
        thresholds on U = 2·S − 255·B (below), and oneDNN's packed weights where present."""
        trits = torch.round(layer.weights / self.H).to(torch.int8)
        t = trits.to(torch.float64)
        fan = int(np.prod(trits.shape[1:]))
        if 255 * fan >= 1 << 24:  # S = Σ t·p must stay exact in float32
            raise ValueError(f"first_layer='int8': the first layer's fan-in {fan} is too large (at most 65 792)")
        if not all(bool(torch.isfinite(a).all()) for a in layer.bn):
            raise ValueError("first_layer='int8': the first layer's BatchNorm state is not finite")
        if layer.kind == "conv":
            ones = torch.ones(1, *self.input_shape, dtype=torch.float64)
            B = F.conv2d(ones, t, stride=layer.stride, padding=layer.padding)[0].permute(1, 2, 0)  # (Ho, Wo, out)
        else:
            B = t.sum(1)
        out = trits.shape[0]
        bn = self._bn_module(layer)
        # the layer's real pre-activation is H·U/255, |U| = |Σ t·(2p − 255)| ≤ 255·fan: φ(BN(·)) of it as
        # thresholds on the integer U
        thresholds = _step_thresholds(lambda v: self.phi(bn(v)), self.H / 255.0, 255 * fan, out,
                                      layer.kind == "conv")
        packed = None  # oneDNN unless a kernel is forced (``portable`` must assume no instruction set)
        if layer.kind == "conv" and self.kernel in (None, "onednn") and onednn_int8():
            packed = onednn_conv_packed(trits, layer.padding, layer.stride, zero_point=0)
        B255 = (255 * B).to(torch.float32).numpy().reshape(1, 1, -1) if layer.kind != "conv" else (
            (255 * B).to(torch.float32).numpy())
        return {"trits": trits, "B255": np.ascontiguousarray(B255), "packed": packed, "thresholds": thresholds}

    @staticmethod
    def _bn_module(layer: _Layer) -> torch.nn.Module:
        """The real-input layer's BatchNorm as the model's module, in eval mode."""
        out = layer.bn[0].shape[0]
        bn = torch.nn.BatchNorm2d(out, eps=layer.bn_eps) if layer.kind == "conv" else torch.nn.BatchNorm1d(
            out, eps=layer.bn_eps)
        mean, var, weight, bias = layer.bn
        with torch.no_grad():
            bn.running_mean.copy_(mean), bn.running_var.copy_(var), bn.weight.copy_(weight), bn.bias.copy_(bias)
        return bn.eval()

    def _real_input_8bit(self, layer: _Layer, x: torch.Tensor) -> np.ndarray:
        """The first layer on 8-bit pixels: p = round((x + 1)·255/2) ∈ {0 … 255} (the datasets' inputs are
        x = 2p/255 − 1, docs/METHOD.md), so its real pre-activation Σ w·x over the taps inside the image is
        H·(2·S − 255·B)/255 with S = Σ t·p — integers, exact (S by oneDNN's int8 convolution where present, else a
        float32 convolution of integers below 2²⁴, exact too); then pool and φ(BN(·)) as thresholds on U."""
        e = self._eight_bit
        p = torch.round((x + 1.0) * 127.5).clamp_(0, 255)
        if layer.kind == "conv":
            if e["packed"] is not None:
                S = onednn_conv2d_tensor(p.to(torch.uint8), e["trits"], layer.padding, layer.stride, e["packed"],
                                         zero_point=0)
            else:
                S = F.conv2d(p, e["trits"].to(torch.float32), stride=layer.stride, padding=layer.padding)
            S = S.permute(0, 2, 3, 1).numpy()  # (N, Ho, Wo, out); a copy only where S is not channels-last
        else:
            S = F.linear(p.flatten(1), e["trits"].to(torch.float32)).numpy()[:, None, None, :]
        n, ho, wo, c = S.shape
        pool = layer.kind == "conv" and layer.pool
        t = np.empty((n, ho // 2, wo // 2, c) if pool else S.shape, dtype=np.int8)
        _affine_pool_thresholds(np.ascontiguousarray(S), e["B255"], pool, *e["thresholds"], t)
        return t if layer.kind == "conv" else t.reshape(n, -1)

    def _real_input(self, layer: _Layer, x: torch.Tensor) -> np.ndarray:
        """The first layer, with the model's float ops; its trits channels-last (conv) or N×F."""
        x = x.reshape(x.shape[0], *self.input_shape)
        if self._eight_bit is not None:
            return self._real_input_8bit(layer, x)
        if layer.kind == "conv":
            y = F.conv2d(x, layer.weights, stride=layer.stride, padding=layer.padding)
        else:
            y = F.linear(x.flatten(1), layer.weights)
        if layer.steps is not None:  # pool, BatchNorm, φ and channels-last in one pass
            y4 = y.contiguous().numpy()
            y4 = y4 if layer.kind == "conv" else y4[:, :, None, None]
            pool = layer.kind == "conv" and layer.pool
            n, c, h, w = y4.shape
            t = np.empty((n, h // 2, w // 2, c) if pool else (n, h, w, c), dtype=np.int8)
            _float_pool_steps(y4, pool, *layer.steps, t)
            return t if layer.kind == "conv" else t.reshape(n, c)
        if layer.kind == "conv" and layer.pool:
            y = _pool_float(y)
        mean, var, weight, bias = layer.bn
        y = F.batch_norm(y, mean, var, weight, bias, False, 0.0, layer.bn_eps)
        t = self.phi(y).to(torch.int8).numpy()  # φ's values are −1, 0, 1 (activations N ≤ 1)
        # channels-last for the XNOR layers: numpy moves int8 about 3× faster than PyTorch's permute here
        return np.ascontiguousarray(t.transpose(0, 2, 3, 1)) if layer.kind == "conv" else np.ascontiguousarray(t)

    def _output(self, layer: _Layer, s: np.ndarray) -> torch.Tensor:
        """logits = BN(H·s): the output layer's BatchNorm on the float value of its pre-BN output."""
        y = torch.from_numpy(s.reshape(s.shape[0], -1)).to(torch.float32) * torch.tensor(self.H, dtype=torch.float32)
        mean, var, weight, bias = layer.bn
        return F.batch_norm(y, mean, var, weight, bias, False, 0.0, layer.bn_eps)

    @staticmethod
    def _model_layout(t: np.ndarray, layer: _Layer) -> np.ndarray:
        return np.ascontiguousarray(t.transpose(0, 3, 1, 2)) if layer.kind == "conv" else t
