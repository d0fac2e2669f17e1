"""The integer engine (gxnor_core.engine, docs/EXPORT.md) equals the PyTorch model in eval mode bit for bit —
every hidden layer's trits, the output layer's integer sums and the logits — for every architecture, odd
shapes, every kernel, and a CPU without AVX; and it counts exactly the gate events the probes count."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numba
import numpy as np
import pytest
import torch

from gxnor_core import ARCHITECTURES, build_model, kernels, load_dataset, load_model, validate_config
from gxnor_core.activations import MultiStepActivation
from gxnor_core.data import DATASETS
from gxnor_core.engine import Engine
from gxnor_core.errors import ConfigError
from gxnor_core.export import export_checkpoint, export_model
from gxnor_core.kernels import (
    KERNEL_ENV,
    KERNELS,
    TernaryMatrix,
    choose,
    conv_gate_events,
    cpu_features,
    gate_events,
    im2col,
    onednn_conv2d,
    pack,
    pack_numpy,
    patch_planes,
    popcount_conv,
)
from gxnor_core.layers import DiscreteConv2d, DiscreteLinear, StepActivation
from gxnor_core.models import GXNORNet, _block
from gxnor_core.probes import probe
from gxnor_core.reporters import DirectoryReporter
from gxnor_core.spaces import DiscreteSpace
from gxnor_core.train import train

try:
    from tests.test_export import randomized
except ImportError:  # plain `pytest` puts tests/ itself on sys.path, not the repository root
    from test_export import randomized


def smallest_config(arch: str) -> dict:
    """A config of ``arch`` on the smallest registered input its layers accept (CNNs at a quarter width)."""
    for name in ("digits", "mnist5k", "cifar10"):
        config = {"dataset": {"name": name}, "model": {"arch": arch, "width": 0.25}}
        try:
            build_model(validate_config(config))
            return config
        except ConfigError:
            continue
    raise AssertionError(f"no registered dataset fits {arch}")


def model_outputs(model: GXNORNet, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """(each hidden layer's φ output, the output layer's pre-BN output, the logits) of the model in eval mode."""
    phi, pre = {}, {}
    names = list(model.blocks)
    hooks = [block[-1].register_forward_hook(lambda m, i, o, n=n: phi.__setitem__(n, o))
             for n, block in model.blocks.items() if isinstance(block[-1], StepActivation)]
    hooks.append(model.blocks[names[-1]][0].register_forward_hook(lambda m, i, o: pre.__setitem__("s", o)))
    try:
        with torch.no_grad():
            logits = model.eval()(x)
    finally:
        for h in hooks:
            h.remove()
    return phi, pre["s"], logits


def assert_engine_equals_model(engine: Engine, model: GXNORNet, x: torch.Tensor, H: float = 1.0):
    phi, pre, logits = model_outputs(model, x)
    got = engine.run(x, trace=True)
    assert list(got.trits) == list(phi)
    for name, trits in got.trits.items():
        assert np.array_equal(trits, phi[name].numpy().astype(np.int8)), name
    assert torch.equal(torch.from_numpy(got.sums).to(torch.float32) * H, pre)  # before the last scale
    assert torch.equal(got.logits, logits)
    counted = engine.run(x, per_sample=True)  # each sample's events, in the same pass: they add up to the batch's
    assert counted.events == got.events and list(counted.sample_events) == list(got.events)
    for name, per in counted.sample_events.items():
        assert per.shape == (x.shape[0],) and int(per.sum()) == got.events[name]
    return got


def assert_events_equal_probes(got, model: GXNORNet, x: torch.Tensor):
    records = probe(model, x)
    xnor = [name for name, rec in records.items() if not rec["input_is_real"]]
    assert list(got.events) == xnor
    for name in xnor:
        assert got.events[name] / x.shape[0] == records[name]["events"], name


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
@pytest.mark.parametrize("kernel", [None, *KERNELS])
def test_every_architecture_equals_the_model_exactly_and_counts_the_probes_events(arch, kernel):
    cfg, model = randomized(smallest_config(arch), seed=3)
    shape = DATASETS[cfg.dataset.name].input_shape
    engine = Engine(export_model(model, cfg, shape), kernel=kernel)
    for batch in (1, 6):
        x = torch.rand(batch, *shape, generator=torch.Generator().manual_seed(batch)) * 2 - 1
        got = assert_engine_equals_model(engine, model, x)
        assert_events_equal_probes(got, model, x)
        if kernel:
            assert set(got.kernels.values()) == {kernel}


def _network(input_shape, layers, N=1, H=1.0, Na=1, r=0.5, seed=0):
    """A hand-built network of blocks (kind, out, kernel, padding, stride, pool) and its config (weights and
    activations as given), with random states and BatchNorm state."""
    space, phi = DiscreteSpace(N, H), MultiStepActivation(Na, r)
    blocks, (c, h, w), features = OrderedDict(), input_shape, None
    for i, (kind, out, k, pad, stride, pool) in enumerate(layers):
        act = StepActivation(phi) if i < len(layers) - 1 else None
        if kind == "conv":
            layer = DiscreteConv2d(c, out, k, space, padding=pad, stride=stride)
            h, w = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
            h, w = (h // 2, w // 2) if pool else (h, w)
            c, features = out, out * h * w
        else:
            layer = DiscreteLinear(features or c * h * w, out, space)
            features = out
        blocks[f"{kind}{i + 1}"] = _block(layer, out, kind == "conv", pool, act)
    model = GXNORNet(blocks).eval()
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 3 * H)
            m.running_var.copy_((torch.rand(n, generator=g) * 10 + 0.05) * H * H)
            m.weight.data.copy_(torch.randn(n, generator=g))
            m.bias.data.copy_(torch.randn(n, generator=g))
    for layer in model.discrete_layers():
        layer.state.copy_(torch.randint(0, space.num_states, layer.state.shape, generator=g))
    cfg = validate_config({"weights": {"N": N, "H": H}, "activations": {"N": Na, "r": r}})
    return cfg, model


SHAPES = {
    "odd-sizes-padding-stride2": ((3, 15, 13), [("conv", 5, 3, 1, 2, True), ("conv", 7, 3, 0, 1, False),
                                               ("fc", 13, 0, 0, 1, False), ("fc", 4, 0, 0, 1, False)], {}),
    "binary-weights-and-activations": ((2, 13, 13), [("conv", 9, 5, 2, 1, True), ("conv", 6, 3, 1, 2, False),
                                                    ("fc", 3, 0, 0, 1, False)], {"N": 0, "Na": 0}),
    "H-half-r-zero-big-kernel": ((1, 10, 12), [("conv", 3, 3, 0, 1, False), ("conv", 70, 5, 2, 1, True),
                                               ("fc", 65, 0, 0, 1, False), ("fc", 2, 0, 0, 1, False)],
                                 {"H": 0.5, "r": 0.0}),
    "H-two-r-one-fc-only": ((1, 5, 7), [("fc", 7, 0, 0, 1, False), ("fc", 129, 0, 0, 1, False),
                                        ("fc", 1, 0, 0, 1, False)], {"H": 2.0, "r": 1.0}),
    "stride3-odd-channels": ((5, 17, 16), [("conv", 11, 3, 1, 1, False), ("conv", 13, 4, 1, 3, True),
                                           ("fc", 5, 0, 0, 1, False)], {}),
}


@pytest.mark.parametrize("case", list(SHAPES))
@pytest.mark.parametrize("kernel", list(KERNELS))
def test_odd_shapes_padding_stride_and_batch_1_equal_the_model_exactly(case, kernel):
    input_shape, layers, kw = SHAPES[case]
    cfg, model = _network(input_shape, layers, seed=len(case), **kw)
    engine = Engine(export_model(model, cfg, input_shape), kernel=kernel)
    for batch in (1, 3):
        x = torch.randn(batch, *input_shape, generator=torch.Generator().manual_seed(batch)) * 2
        got = assert_engine_equals_model(engine, model, x, H=kw.get("H", 1.0))
        assert_events_equal_probes(got, model, x)


@pytest.mark.parametrize("rows,inputs,outputs", [(1, 1, 1), (1, 64, 3), (3, 65, 130), (4, 127, 129),
                                                 (9, 800, 64), (2, 1024, 512), (130, 27, 10),
                                                 # whole tiles (4 × 16, 1 × 32) and what is left past them
                                                 (8, 64, 16), (5, 130, 33), (6, 200, 48), (1, 100, 65)])
@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.97])
def test_every_kernel_computes_the_exact_ternary_product_and_its_events(rows, inputs, outputs, sparsity, monkeypatch):
    rng = np.random.default_rng(rows * inputs + outputs)
    x = rng.integers(-1, 2, (rows, inputs)).astype(np.int8)
    x[rng.random(x.shape) < sparsity] = 0
    w = rng.integers(-1, 2, (outputs, inputs)).astype(np.int8)
    ref = x.astype(np.int64) @ w.astype(np.int64).T
    matrix = TernaryMatrix.of(w)
    for name, kernel in KERNELS.items():
        got = kernel(x, matrix)
        assert got.dtype == (np.float32 if name == "onednn" else np.int32) and np.array_equal(got, ref), name
    assert_popcount_exact(x, matrix, ref, monkeypatch)
    events = ((x != 0).astype(np.int64) @ (w != 0).astype(np.int64).T).sum()
    assert gate_events(x, matrix) == events


@contextmanager
def tiles_of_kind(monkeypatch, kind: str):
    """``popcount`` on tiles of ``kind`` inside the block (``GXNOR_POPCOUNT_TILES``; ``tiles()`` reads it once)."""
    with monkeypatch.context() as patch:
        patch.setenv(kernels.TILES_ENV, kind)
        kernels.tiles.cache_clear()
        assert kernels.tiles() == kind
        try:
            yield patch
        finally:
            kernels.tiles.cache_clear()


def assert_popcount_exact(x: np.ndarray, matrix: TernaryMatrix, ref: np.ndarray, monkeypatch) -> None:
    """``popcount``'s product equals ``ref`` on both kinds of tile, by both routes (small: one compiled call;
    else packed, then the parallel tiled product)."""
    for kind in kernels.TILE_KINDS:
        with tiles_of_kind(monkeypatch, kind) as patch:
            assert np.array_equal(KERNELS["popcount"](x, matrix), ref), kind
            patch.setattr(kernels, "SERIAL_WORK", 0)
            assert np.array_equal(KERNELS["popcount"](x, matrix), ref), kind


@pytest.mark.parametrize("words", [1, 30, 31, 32, 62, 63, 64, 100])
def test_byte_tiles_never_overflow_with_every_gate_open_and_every_sign_different(words, monkeypatch):
    """The byte tile's worst case: each byte of popcount(g) and popcount(q ∧ g) gains 8 per word, which 31
    words bring to 248 and a 32nd would wrap — the tile widens its byte counts every 31 words.  Rows all +1
    against weights all −1 (−64·words), and against alternating ones (the sums 0 and ±64·words by row)."""
    inputs = 64 * words
    x = np.ones((5, inputs), dtype=np.int8)
    x[1] = -1
    x[3, ::2] = -1
    w = -np.ones((33, inputs), dtype=np.int8)
    w[::3] = 1
    ref = x.astype(np.int64) @ w.astype(np.int64).T
    assert np.abs(ref).max() == inputs
    matrix = TernaryMatrix.of(w)
    assert_popcount_exact(x, matrix, ref, monkeypatch)


@pytest.mark.parametrize("outputs", [1, 16, 17, 32, 64, 100, 512])
def test_the_weight_planes_rows_are_an_odd_number_of_tiles_and_the_products_exact(outputs, monkeypatch):
    """``mask_t``/``sign_t`` rows hold 16·(2k+1) outputs (a tile's successive words in different cache sets),
    the padding zero; the product is exact for both kinds of tile at every such width — and the tiles compute
    only the outputs rounded up to 16: with the columns past those set to all ones (every gate open), a loop
    that ran over them would write sums past each row of the product, into the next row's first outputs."""
    rng = np.random.default_rng(outputs)
    w = rng.integers(-1, 2, (outputs, 300)).astype(np.int8)
    x = rng.integers(-1, 2, (9, 300)).astype(np.int8)
    matrix = TernaryMatrix.of(w)
    assert matrix.tile_outputs == -(-outputs // 16) * 16
    assert matrix.mask_t.shape[1] % 32 == 16 and matrix.mask_t.shape[1] >= matrix.tile_outputs
    assert not matrix.mask_t[:, outputs:].any() and not matrix.sign_t[:, outputs:].any()
    ref = x.astype(np.int64) @ w.astype(np.int64).T
    assert_popcount_exact(x, matrix, ref, monkeypatch)
    matrix.mask_t[:, matrix.tile_outputs:] = ~np.uint64(0)  # the row's extra columns, never computed
    assert_popcount_exact(x, matrix, ref, monkeypatch)


def test_the_tiles_follow_the_cpu_unless_forced(monkeypatch):
    """``words`` exactly where numba compiles for AVX-512 VPOPCNTDQ (``_llvm.target_features``: numba's
    ``NUMBA_CPU_FEATURES``, else the host's); a forced kind must be one of the two."""
    from gxnor_core import _llvm

    kernels.tiles.cache_clear()
    expected = "words" if "avx512vpopcntdq" in _llvm.target_features() else "bytes"
    try:
        with monkeypatch.context() as patch:
            patch.delenv(kernels.TILES_ENV, raising=False)
            assert kernels.tiles() == expected
            kernels.tiles.cache_clear()
            patch.setenv(kernels.TILES_ENV, "nibbles")
            with pytest.raises(ValueError, match="GXNOR_POPCOUNT_TILES='nibbles': one of words, bytes"):
                kernels.tiles()
    finally:
        kernels.tiles.cache_clear()


@pytest.mark.parametrize("length", [0, 1, 7, 63, 64, 65, 127, 128, 200, 800])
def test_packing_gives_the_reference_planes_for_every_row_length(length):
    """``pack`` (64 trits per vector compare, a partial last word read from the row's last 64 trits and
    shifted down) against ``pack_numpy`` (numpy's packbits): every bit, the bits past the row's length zero."""
    rng = np.random.default_rng(length)
    x = rng.integers(-1, 2, (7, length)).astype(np.int8)
    got, want = pack(x), pack_numpy(x)
    assert np.array_equal(got.mask, want.mask) and np.array_equal(got.sign, want.sign)
    assert got.length == want.length == length


@pytest.mark.parametrize("n,h,w,c,k,padding,stride", [(2, 12, 12, 32, 5, 0, 1), (3, 9, 7, 16, 3, 1, 2),
                                                       (1, 8, 8, 8, 3, 1, 1), (2, 5, 5, 24, 3, 1, 1),
                                                       (2, 6, 6, 64, 3, 2, 1), (1, 4, 4, 128, 3, 1, 1),
                                                       (2, 8, 8, 17, 3, 2, 3),
                                                       # 1×1 (the im2col is a read-only view of the input) and a
                                                       # kernel covering the whole image (one output position)
                                                       (2, 5, 5, 3, 1, 0, 1), (3, 8, 8, 64, 1, 0, 1),
                                                       (2, 3, 3, 16, 3, 0, 1), (2, 3, 3, 4, 3, 0, 1)])
def test_patches_packed_from_the_image_are_the_packed_im2col(n, h, w, c, k, padding, stride, monkeypatch):
    """``patch_planes`` (each image packed once, patches copied in whole bytes of its planes; an im2col then
    ``pack`` where C is not a multiple of 8) gives the planes of the im2col, and ``popcount_conv`` its product
    by either route (small: the im2col and one compiled call; else the planes from the image), on a writable
    or a read-only image."""
    rng = np.random.default_rng(c * h + k)
    x = rng.integers(-1, 2, (n, h, w, c)).astype(np.int8)
    x[rng.random(x.shape) < 0.4] = 0
    cols, size = im2col(x, k, padding, stride)
    want = pack_numpy(cols)
    for work in (kernels.SERIAL_WORK, 0):  # the patches copied on this thread, then an image per task
        monkeypatch.setattr(kernels, "SERIAL_WORK", work)
        planes, got_size = patch_planes(x, k, padding, stride)
        assert got_size == size and planes.length == cols.shape[1]
        assert np.array_equal(planes.mask, want.mask) and np.array_equal(planes.sign, want.sign)
    w8 = TernaryMatrix.of(rng.integers(-1, 2, (20, cols.shape[1])).astype(np.int8))
    want = cols.astype(np.int64) @ w8.int8.numpy().astype(np.int64).T
    x.flags.writeable = False
    for work in (kernels.SERIAL_WORK, 0):
        monkeypatch.setattr(kernels, "SERIAL_WORK", work)
        assert np.array_equal(popcount_conv(x, w8, k, padding, stride), want)


def test_a_product_of_mismatched_shapes_is_refused_before_the_compiled_loops():
    w = TernaryMatrix.of(np.ones((16, 100), dtype=np.int8))
    for rows in (1, 300):  # the one-call small path and the packed one
        with pytest.raises(ValueError, match="100 inputs"):
            kernels.popcount_matmul(np.ones((rows, 164), dtype=np.int8), w)
    with pytest.raises(ValueError, match="100 inputs"):
        kernels.planes_product(pack(np.ones((4, 99), dtype=np.int8)), w)


def test_the_product_on_one_thread_and_on_many_is_the_same(monkeypatch):
    """Small products run on the calling thread (``kernels.serial``), large ones in numba's parallel region:
    both give the exact product, whichever the size."""
    rng = np.random.default_rng(5)
    x = rng.integers(-1, 2, (37, 300)).astype(np.int8)
    w = rng.integers(-1, 2, (70, 300)).astype(np.int8)
    want = x.astype(np.int64) @ w.astype(np.int64).T
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        for work, one in ((1 << 62, True), (0, numba.config.NUMBA_NUM_THREADS == 1)):
            monkeypatch.setattr(kernels, "SERIAL_WORK", work)
            assert kernels.serial(1) is one
            assert np.array_equal(kernels.popcount_matmul(x, TernaryMatrix.of(w)), want)
            got, ref = pack(x), pack_numpy(x)
            assert np.array_equal(got.mask, ref.mask) and np.array_equal(got.sign, ref.sign)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("n,h,w,c,out,k,padding,stride", [(1, 5, 5, 1, 1, 1, 0, 1), (3, 9, 7, 6, 5, 3, 1, 2),
                                                           (2, 12, 12, 32, 64, 5, 0, 1), (2, 8, 8, 17, 9, 3, 2, 3)])
def test_the_direct_convolution_and_its_events_equal_the_im2col_product(n, h, w, c, out, k, padding, stride):
    """``onednn_conv2d`` (oneDNN's int8 convolution on the image, or the fallback where it is missing) and
    ``conv_gate_events`` (from the non-zero mask, per sample) against the im2col product and its events."""
    rng = np.random.default_rng(n * h + c)
    x = rng.integers(-1, 2, (n, h, w, c)).astype(np.int8)
    x[rng.random(x.shape) < 0.4] = 0
    filters = rng.integers(-1, 2, (out, c, k, k)).astype(np.int8)
    matrix = TernaryMatrix.of(filters.transpose(0, 2, 3, 1).reshape(out, -1))
    cols, (ho, wo) = im2col(x, k, padding, stride)
    want = (cols.astype(np.int64) @ matrix.int8.numpy().astype(np.int64).T).reshape(n, ho, wo, out)
    if kernels.onednn_int8():
        got = onednn_conv2d(x, torch.from_numpy(filters), padding, stride)
        assert got.dtype == np.int32 and np.array_equal(got, want)
    per_sample = [gate_events(cols.reshape(n, ho * wo, -1)[i], matrix) for i in range(n)]
    assert conv_gate_events(x, matrix, k, padding, stride).tolist() == per_sample
    assert conv_gate_events(x, matrix, k, padding, stride, per_sample=False).tolist() == [sum(per_sample)]
    transposed = np.ascontiguousarray(x.transpose(0, 2, 1, 3)).transpose(0, 2, 1, 3)  # the same values, strided
    assert conv_gate_events(transposed, matrix, k, padding, stride, per_sample=False).tolist() == [sum(per_sample)]
    empty = conv_gate_events(x[:0], matrix, k, padding, stride, per_sample=False)  # an empty batch: no events
    assert empty.tolist() == [0]


def test_without_onednn_the_onednn_kernel_is_the_int8_product(monkeypatch):
    """Where oneDNN's int8 ops are missing or inexact, ``onednn`` computes with ``torch._int_mm`` (and the
    engine's convolutions take the im2col path): the same integers, never an error."""
    monkeypatch.setattr(kernels, "onednn_int8", lambda: False)
    monkeypatch.setattr(kernels.TernaryMatrix, "onednn_packed", property(lambda self: pytest.fail("packed")))
    rng = np.random.default_rng(5)
    x, w = rng.integers(-1, 2, (40, 70)).astype(np.int8), rng.integers(-1, 2, (33, 70)).astype(np.int8)
    got = KERNELS["onednn"](x, TernaryMatrix.of(w))
    assert got.dtype == np.float32 and np.array_equal(got, x.astype(np.int64) @ w.astype(np.int64).T)
    cfg, model = randomized(smallest_config("mnist_cnn"), seed=2)
    monkeypatch.setattr("gxnor_core.engine.onednn_int8", lambda: False)
    engine = Engine(export_model(model, cfg, DATASETS[cfg.dataset.name].input_shape), kernel="onednn")
    x = torch.rand(3, *engine.input_shape, generator=torch.Generator().manual_seed(1)) * 2 - 1
    assert_engine_equals_model(engine, model, x)
    assert not engine._onednn  # no conv weights were reordered for oneDNN


def test_the_engine_measures_each_layers_kernel_once_per_batch_size_and_keeps_the_fastest(monkeypatch):
    """``Engine(tune=True)`` (the default) times every candidate kernel on the layer's own input the first time a
    batch size (rounded up to a power of two) comes, keeps the fastest, and never measures that size again;
    a kernel made slow is never the one kept; ``tune=False`` takes the fixed rule."""
    cfg, model = randomized(smallest_config("mnist_cnn"), seed=4)
    data = export_model(model, cfg, DATASETS[cfg.dataset.name].input_shape)
    x = torch.rand(6, *DATASETS[cfg.dataset.name].input_shape, generator=torch.Generator().manual_seed(2)) * 2 - 1
    engine = Engine(data)
    first = engine.run(x)
    assert first.tuning_seconds > 0 and engine.run(x).tuning_seconds == 0  # measured once, reported apart
    got = assert_engine_equals_model(engine, model, x)
    xnor = [layer.name for layer in engine.layers[1:]]
    buckets = dict(engine.measured)  # rows rounded up to a power of two: 6 samples → 8 rows of a FC layer
    assert sorted(name for name, _ in buckets) == sorted(xnor)
    assert all(rows & (rows - 1) == 0 and rows >= 6 for _, rows in buckets)
    for (name, _), timings in buckets.items():
        fan_in = next(layer.weights.shape[1] for layer in engine.layers if layer.name == name)
        assert list(timings) == kernels.candidates(fan_in) and all(t > 0 for t in timings.values())
        assert got.kernels[name] == min(timings, key=timings.get)
    before = {k: dict(v) for k, v in engine.measured.items()}
    assert_engine_equals_model(engine, model, x[:5])  # 5 rows: the same bucket, not measured again
    assert engine.measured == before
    engine(x[:1])  # a new size for every layer
    assert len(engine.measured) == 2 * len(xnor) and ("fc2", 1) in engine.measured
    big = torch.rand(200, *x.shape[1:], generator=torch.Generator().manual_seed(3)) * 2 - 1
    assert_engine_equals_model(engine, model, big)  # 200 samples: measured on the first 64, keyed as 64
    assert ("fc2", 64) in engine.measured and len(engine.measured) == 3 * len(xnor)

    if len(kernels.candidates(800)) == 1:
        pytest.skip("only popcount is a candidate on this CPU (no int8 dot-product instruction)")
    popcount = KERNELS["popcount"]

    def slow(cols, w):
        time.sleep(0.02)
        return popcount(cols, w)

    monkeypatch.setitem(KERNELS, "popcount", slow)
    conv = kernels.popcount_conv  # a convolution's popcount packs its patches from the image

    def slow_conv(*args):
        time.sleep(0.02)
        return conv(*args)

    monkeypatch.setattr(kernels, "popcount_conv", slow_conv)
    slowed = Engine(data)
    got = assert_engine_equals_model(slowed, model, x)
    assert "popcount" not in got.kernels.values()
    fixed = Engine(data, tune=False)
    traced = fixed.run(x, trace=True)
    assert not fixed.measured
    for previous, layer in zip(fixed.layers, fixed.layers[1:]):
        t = traced.trits[previous.name]  # the layer's input, in the model's layout
        conv = layer.kind == "conv"
        rows = t.shape[0] * math.prod(Engine._out_size(t.transpose(0, 2, 3, 1).shape, layer)) if conv else t.shape[0]
        want = choose(rows, layer.weights.shape[1], layer.weights.shape[0], int8=kernels.fast_int8(),
                      onednn=kernels.onednn_int8(), conv=conv)
        assert traced.kernels[layer.name] == want


def test_threads_meeting_a_new_batch_size_together_measure_it_once():
    """The API's scoring threads share an engine: when several meet a new size at once, one measures each layer
    and the others take its choice (every answer still the model's)."""
    cfg, model = randomized(smallest_config("mnist_cnn"), seed=5)
    engine = Engine(export_model(model, cfg, DATASETS[cfg.dataset.name].input_shape))
    measured, real = [], engine._timings

    def counting(layer, t, names):
        measured.append(layer.name)
        time.sleep(0.05)  # long enough for the other threads to arrive meanwhile
        return real(layer, t, names)

    engine._timings = counting
    x = torch.rand(4, *engine.input_shape, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: engine.run(x), range(4)))
    assert sorted(measured) == sorted(layer.name for layer in engine.layers[1:])  # each layer once
    assert sum(r.tuning_seconds > 0 for r in results) >= 1
    for r in results:
        assert torch.equal(r.logits, results[0].logits)
    assert_engine_equals_model(engine, model, x)


def test_onednn_is_refused_where_it_would_run_slow_reference_code(monkeypatch):
    """oneDNN answers even on a CPU it has no kernel for, from reference code ~1000× slower (its signed-input
    inner product on an AMD EPYC without AMX): ``onednn_int8`` times each product it would run against fp32
    PyTorch and refuses oneDNN when one is more than ``ONEDNN_PROBE_LIMIT`` times slower."""
    work = torch.rand(32, 64)
    assert kernels._fast_enough(lambda: work @ work.T, lambda: work @ work.T)
    calls = []
    slow = lambda: (calls.append(1), time.sleep(0.05))  # 20× the small product would be 2.5 ms of it
    assert not kernels._fast_enough(slow, lambda: work @ work.T)
    assert len(calls) == 1 + 3 * kernels.ONEDNN_PROBE_ATTEMPTS  # refused only after every attempt
    kernels.onednn_int8.cache_clear()
    try:
        monkeypatch.setattr(kernels, "_onednn_fast", lambda: False)
        assert not kernels.onednn_int8()
        assert "onednn" not in kernels.candidates(800)
    finally:
        kernels.onednn_int8.cache_clear()


def test_the_kernel_is_chosen_per_shape_or_forced(monkeypatch):
    assert choose(64 * 64, 800, 64) == "int8"  # the im2col of a batch of 64 (mnist_cnn conv2)
    assert choose(1, 1024, 512) == "popcount"  # batch 1, fully connected
    assert choose(64 * 64, 4608, 512) == "popcount"  # large fan-in
    assert choose(64, 1024, 10) == "int8"  # an output layer of 10 classes
    # with oneDNN's int8 ops (and an int8 dot-product instruction): batches of convolutions, large FC layers
    assert choose(64 * 64, 800, 64, onednn=True, conv=True) == "onednn"
    assert choose(64, 800, 64, onednn=True, conv=True) == "int8"  # batch 1: not oneDNN (its cost per call)
    assert choose(64, 800, 64, conv=True) == "int8" and choose(64, 800, 64) == "popcount"
    assert choose(256, 2304, 256, onednn=True, conv=True) == "onednn"  # cifar_vgg conv4 at batch 1
    assert choose(64, 1024, 512, onednn=True) == "onednn"
    assert choose(1, 8192, 1024, onednn=True) == "popcount"  # batch 1, fully connected
    assert choose(64, 1024, 10, onednn=True) == "int8"
    assert choose(64 * 64, 800, 64, int8=False, onednn=True, conv=True) == "popcount"
    cfg, model = randomized({"model": {"hidden": [16]}})
    data = export_model(model, cfg, (1, 8, 8))
    monkeypatch.setenv(KERNEL_ENV, "portable")
    assert set(Engine(data).run(torch.zeros(2, 1, 8, 8)).kernels.values()) == {"portable"}
    monkeypatch.setenv(KERNEL_ENV, "fastest")
    with pytest.raises(ValueError, match="GXNOR_ENGINE_KERNEL='fastest': one of popcount, int8, onednn, portable"):
        Engine(data)
    features = cpu_features()
    assert {"popcnt", "avx2", "avx512f", "avx512vpopcntdq", "torch_capability"} <= set(features)


def test_inputs_of_the_wrong_shape_are_refused():
    cfg, model = randomized({"model": {"hidden": [16]}})
    engine = Engine(export_model(model, cfg, (1, 8, 8)))
    assert engine(torch.zeros(2, 64)).shape == (2, 10)  # flat rows are fine for an input of 1×8×8
    with pytest.raises(ValueError, match=r"input of shape \(2, 1, 9, 8\); this model takes N×1×8×8"):
        engine(torch.zeros(2, 1, 9, 8))
    with pytest.raises(ValueError, match="an empty batch"):
        engine(torch.zeros(0, 1, 8, 8))


_GENERIC_CPU = """
import json, sys
import numpy as np, torch
from gxnor_core.engine import Engine
from gxnor_core.kernels import KERNELS, _rows4, _xnor_gemm
from tests.test_engine import randomized, smallest_config
from gxnor_core.export import export_model
from gxnor_core.data import DATASETS

cfg, model = randomized(smallest_config(sys.argv[1]), seed=3)
shape = DATASETS[cfg.dataset.name].input_shape
x = torch.from_numpy(np.load(sys.argv[2]))
with torch.no_grad():
    expected = model.eval()(x)
engine_data = export_model(model, cfg, shape)
same = {k: torch.equal(Engine(engine_data, kernel=k)(x), expected) for k in KERNELS}
asm = "".join(_xnor_gemm.inspect_asm().values()) + "".join(_rows4.inspect_asm().values())
print(json.dumps({"same": same, "sums": Engine(engine_data).run(x).sums.tolist(),
                  "torch": torch.backends.cpu.get_cpu_capability(), "asm": len(asm),
                  **{op: op in asm for op in ("zmm", "ymm", "popcnt")}}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["mnist_cnn"])
def test_a_cpu_without_avx_or_popcnt_gives_identical_outputs(arch, tmp_path):
    """numba compiles for a generic x86-64 (no AVX, no POPCNT: NUMBA_CPU_NAME=generic) and PyTorch takes its
    baseline code path (ATEN_CPU_CAPABILITY=default, oneDNN limited to SSE4.1); every kernel still equals the
    model there, and the integer sums equal this process's (PyTorch's float logits may differ in the last bit
    between instruction sets — for the model as for the engine)."""
    cfg, model = randomized(smallest_config(arch), seed=3)
    shape = DATASETS[cfg.dataset.name].input_shape
    x = torch.rand(4, *shape, generator=torch.Generator().manual_seed(9)) * 2 - 1
    np.save(tmp_path / "x.npy", x.numpy())
    env = {**os.environ, "NUMBA_CPU_NAME": "generic", "NUMBA_CACHE_DIR": str(tmp_path / "numba"),
           "ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41"}
    res = subprocess.run([sys.executable, "-c", _GENERIC_CPU, arch, str(tmp_path / "x.npy")], env=env,
                         capture_output=True, text=True, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["torch"] == "DEFAULT"
    assert out["asm"] > 0 and not out["zmm"] and not out["ymm"] and not out["popcnt"]  # really no AVX, no POPCNT
    assert out["same"] == dict.fromkeys(KERNELS, True)
    assert np.array_equal(Engine(export_model(model, cfg, shape)).run(x).sums, np.array(out["sums"]))


TRAINED = {"mlp": {"dataset": {"name": "digits"}, "model": {"arch": "mlp", "hidden": [64, 48]}},
           "mnist_cnn": {"dataset": {"name": "mnist5k", "limit": 1200}, "model": {"arch": "mnist_cnn", "width": 0.5}},
           "cifar_vgg": {"dataset": {"name": "digits"}, "model": {"arch": "cifar_vgg", "width": 0.125}}}


@pytest.mark.slow
@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_a_trained_network_equals_its_model_on_the_whole_test_split(arch, tmp_path):
    config = {**TRAINED[arch], "name": arch, "train": {"epochs": 2, "batch_size": 100}}
    train(config, DirectoryReporter(tmp_path))
    model = load_model(str(tmp_path / "best.pt"))
    engine = Engine(export_checkpoint((tmp_path / "best.pt").read_bytes()))
    data = load_dataset(validate_config(config).dataset)
    got = assert_engine_equals_model(engine, model, data.test_x)
    assert_events_equal_probes(got, model, data.test_x)
    assert (got.logits.argmax(1) != data.test_y).float().mean() < 0.5  # it learned something: a real test
    # the 8-bit first layer is judged by test error: within a point of the model's on the whole split (digits
    # are 4-bit images, which 8 bits only approximate: 2p/16 − 1 is not always 2q/255 − 1; mnist5k's are 8-bit)
    eight = Engine(export_checkpoint((tmp_path / "best.pt").read_bytes()), first_layer="int8").run(data.test_x)
    error = lambda logits: (logits.argmax(1) != data.test_y).float().mean().item()
    assert abs(error(eight.logits) - error(got.logits)) <= 0.01, (error(eight.logits), error(got.logits))


def test_the_8bit_first_layers_thresholds_are_its_step_functions_on_every_integer():
    """``_step_thresholds`` by bisection against φ(BN(U·scale)) evaluated on every U in the range, for channels
    rising, falling (negative BN weight) and constant (never −1 or never +1)."""
    from gxnor_core.engine import _step_thresholds

    bn = torch.nn.BatchNorm1d(6).eval()
    with torch.no_grad():  # rising, falling, always 0, always −1, rising, always +1
        bn.weight.copy_(torch.tensor([1.0, -2.0, 0.0, 1e-6, 3.0, 0.0]))
        bn.bias.copy_(torch.tensor([0.0, 0.3, 0.2, -5.0, 1.1, 3.0]))
        bn.running_mean.copy_(torch.tensor([0.5, -1.0, 0.0, 0.0, 2.0, 0.0]))
    phi = MultiStepActivation(1, 0.5)
    f = lambda v: phi(bn(v))
    umax, scale = 300, 1 / 64
    flip, lo, hi = _step_thresholds(f, scale, umax, 6, conv=False)
    U = torch.arange(-umax, umax + 1, dtype=torch.float32)
    with torch.no_grad():
        want = f(U[:, None].expand(-1, 6) * scale).round().numpy().astype(np.int8)
    assert set(want[:, 5]) == {1} and set(want[:, 2]) == {0} and set(want[:, 3]) == {-1}
    u = U.numpy()[:, None] * flip
    got = (u >= hi).astype(np.int8) - (u <= lo).astype(np.int8)
    assert np.array_equal(got, want)


def test_an_unknown_first_layer_is_refused_and_a_forced_kernel_keeps_the_8bit_layer_off_onednn():
    cfg, model = randomized({"model": {"hidden": [16]}})
    with pytest.raises(ValueError, match="unknown first layer 'int4'; one of float, int8"):
        Engine(export_model(model, cfg, (1, 8, 8)), first_layer="int4")
    cfg, model = randomized(smallest_config("mnist_cnn"), seed=4)
    data = export_model(model, cfg, DATASETS[cfg.dataset.name].input_shape)
    portable, auto = (Engine(data, kernel=k, first_layer="int8") for k in ("portable", None))
    assert portable._eight_bit["packed"] is None  # no instruction-set assumption: a float32 conv of integers
    x = torch.randint(0, 256, (3, *portable.input_shape), generator=torch.Generator().manual_seed(2)) * (2 / 255) - 1
    assert torch.equal(portable(x.float()), auto(x.float()))  # the same integers either way


def test_the_first_layers_float_thresholds_are_batchnorm_then_phi_on_every_float_tried():
    """``_float_steps`` (bisection over all float32 values) and ``_float_pool_steps`` against the model's own
    BatchNorm and φ, evaluated on the same floats laid out as the model's maps: random values at many scales,
    each threshold and its neighbours up to 3 ulps away, ±0, subnormals, ±max, ±∞ and NaN; channels rising,
    falling, constant, and with a tiny weight; pooled and not, on maps of odd and even size."""
    from gxnor_core.engine import _float_pool_steps, _float_steps

    bn = torch.nn.BatchNorm2d(6).eval()
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([1.0, -2.0, 0.0, 1e-6, 3.0, 0.0]))
        bn.bias.copy_(torch.tensor([0.0, 0.3, 0.2, -5.0, 1.1, 3.0]))
        bn.running_mean.copy_(torch.tensor([0.5, -1.0, 0.0, 0.0, 2.0, 0.0]))
        bn.running_var.copy_(torch.tensor([1.0, 0.3, 2.0, 1e-3, 7.0, 1.0]))
    phi = MultiStepActivation(1, 0.5)
    f = lambda v: phi(bn(v))
    steps = _float_steps(f, 6, (3, 5))
    assert steps is not None
    flip, lo, hi, _ = steps
    g = np.random.default_rng(0)
    values = [g.standard_normal(2000).astype(np.float32) * np.float32(scale) for scale in (1e-3, 0.3, 1, 3, 1e4)]
    for edge in np.concatenate([lo, hi]):
        if np.isfinite(edge):
            near = [edge]
            for direction in (-np.inf, np.inf):
                v = edge
                for _ in range(3):
                    with np.errstate(over="ignore"):  # max's neighbour is ∞
                        v = np.nextafter(v, np.float32(direction), dtype=np.float32)
                    near.append(v)
            values.append(np.array(near, dtype=np.float32))
    special = [0.0, -0.0, 1e-45, -1e-45, 3.4028235e38, -3.4028235e38, np.inf, -np.inf, np.nan]
    values.append(np.array(special, dtype=np.float32))
    v = np.concatenate(values)
    v = np.concatenate([v, -v])  # both signs of every value (the falling channels meet the thresholds negated)
    for rows, cols in ((3, 5), (4, 6)):  # an odd map (the last row and column unpooled) and an even one
        m = rows * cols
        y = torch.from_numpy(np.resize(v, (-(-v.size // m)) * m)).reshape(-1, 1, rows, cols)
        y = y.expand(-1, 6, rows, cols).contiguous()  # every value in every channel
        with torch.no_grad():
            want = f(y).round().to(torch.int8).permute(0, 2, 3, 1).numpy()
        t = np.empty((y.shape[0], rows, cols, 6), dtype=np.int8)
        _float_pool_steps(y.numpy(), False, *steps, t)
        assert np.array_equal(t, want)
        finite = np.isfinite(y[:, 0].numpy())  # ±∞ meets a zero weight as NaN there: no trit, 0
        assert set(want[..., 2][finite]) == {0} and set(want[..., 5][finite]) == {1}  # the constant channels
        assert set(want[..., 1].ravel()) == {-1, 0, 1} and flip[1] == -1  # falling, every step met
        pooled = np.empty((y.shape[0], rows // 2, cols // 2, 6), dtype=np.int8)
        _float_pool_steps(y.numpy(), True, *steps, pooled)
        with torch.no_grad():
            h2, w2 = 2 * (rows // 2), 2 * (cols // 2)
            want = f(torch.maximum(torch.maximum(y[:, :, 0:h2:2, 0:w2:2], y[:, :, 0:h2:2, 1:w2:2]),
                                   torch.maximum(y[:, :, 1:h2:2, 0:w2:2], y[:, :, 1:h2:2, 1:w2:2])))
        assert np.array_equal(pooled, want.round().to(torch.int8).permute(0, 2, 3, 1).numpy())


def test_the_engine_fuses_the_first_layer_where_it_can_and_refuses_non_finite_inputs():
    """The real-input layer runs as one compiled pass (``steps``) for every architecture (so every equality test
    here runs it); NaN or ±∞ inputs are refused (the model would carry NaN on, which no trit can); a BatchNorm
    state that is not finite keeps PyTorch's ops, with the model's answer."""
    for arch in ARCHITECTURES:
        cfg, model = randomized(smallest_config(arch), seed=6)
        shape = DATASETS[cfg.dataset.name].input_shape
        engine = Engine(export_model(model, cfg, shape))
        assert engine.layers[0].steps is not None, arch
        assert_engine_equals_model(engine, model, torch.rand(2, *shape) * 2 - 1)
        for bad in (float("nan"), float("inf"), -float("inf")):
            x = torch.zeros(2, *shape)
            x.view(2, -1)[1, 3] = bad
            with pytest.raises(ValueError, match="input holds NaN or infinite values"):
                engine(x)
    cfg, model = randomized(smallest_config("mnist_cnn"), seed=6)
    first_bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    with torch.no_grad():
        first_bn.running_var[0] = float("inf")  # that channel's BN output is its bias: finite, constant
    engine = Engine(export_model(model, cfg, DATASETS[cfg.dataset.name].input_shape))
    assert engine.layers[0].steps is None
    assert_engine_equals_model(engine, model, torch.rand(3, *engine.input_shape) * 2 - 1)


def test_the_first_layers_pool_is_max_pool2d_nan_included():
    """The engine's compiled 2×2 pool of the first layer's float output: ``F.max_pool2d``'s values, odd sizes
    floored, NaN propagating as in ``torch.maximum``."""
    from gxnor_core.engine import _pool_float

    for shape in [(2, 3, 6, 7), (1, 1, 5, 5), (3, 4, 24, 24)]:
        y = torch.randn(*shape, generator=torch.Generator().manual_seed(sum(shape)))
        y.view(-1)[:: 17] = float("nan")
        got, want = _pool_float(y), torch.nn.functional.max_pool2d(y, 2)
        assert torch.equal(got.isnan(), want.isnan()) and torch.equal(got.nan_to_num(7.0), want.nan_to_num(7.0))
