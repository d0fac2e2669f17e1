"""The XNOR layers' integer forward in training (gxnor_core.integer_forward; docs/METHOD.md, "The training
forward"): the same outputs and gradients as the float forward, bit for bit, so training is unchanged."""

from __future__ import annotations

import copy
import math
import time

import pytest
import torch

from gxnor_core import DiscreteConv2d, DiscreteLinear, DiscreteSpace, Reporter, integer_forward, kernels, train
from gxnor_core.config import validate_config
from gxnor_core.errors import ConfigError
from gxnor_core.integer_forward import integer_forward_applies, integer_forward_on
from gxnor_core.kernels import KERNEL_ENV, KERNELS, candidates
from gxnor_core.models import build_model
from gxnor_core.probes import probe
from gxnor_core.train import loss_fn


def _trits(shape, zeros: float = 0.4, generator=None) -> torch.Tensor:
    """Random values in {-1, 0, 1} (about ``zeros`` of them 0), float32, as a ternary activation gives."""
    u = torch.rand(shape, generator=generator)
    return torch.where(u < zeros, 0.0, torch.where(u < (1 + zeros) / 2, -1.0, 1.0))


def _layer_pair(layer: torch.nn.Module) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The layer with the float forward and a copy (same states) with the integer forward, in training mode."""
    float_layer, int_layer = layer.train(), copy.deepcopy(layer).train()
    int_layer.integer_forward = True
    return float_layer, int_layer


def _forward_backward(layer, x: torch.Tensor, seed: int = 0):
    x = x.clone().requires_grad_(True)
    y = layer(x)
    grad = torch.randn(y.shape, generator=torch.Generator().manual_seed(seed))
    y.backward(grad)
    return y.detach(), x.grad, layer.value.grad


def _assert_same(float_layer, int_layer, x):
    y0, gx0, gw0 = _forward_backward(float_layer, x)
    y1, gx1, gw1 = _forward_backward(int_layer, x)
    assert torch.equal(y0, y1)
    assert y1.is_contiguous() and y1.dtype == torch.float32
    assert torch.equal(gx0, gx1)
    assert torch.equal(gw0, gw1)


CONV_SHAPES = [
    # (batch, in channels, image, out channels, kernel, padding, stride)
    (100, 32, 12, 64, 5, 0, 1),  # mnist_cnn conv2 at the training batch
    (1, 32, 12, 64, 5, 0, 1),  # batch 1
    (3, 128, 16, 128, 3, 1, 1),  # cifar_vgg conv2 (a 16×16 crop)
    (2, 256, 8, 512, 3, 1, 1),  # cifar_vgg conv5's fan-in and width
    (5, 7, 9, 13, 3, 1, 2),  # odd everything, stride 2
    (1, 3, 7, 5, 5, 2, 1),  # odd channels, padding 2
    (4, 16, 6, 24, 1, 0, 1),  # 1×1: the im2col is the input itself, a read-only view
    (4, 64, 5, 32, 1, 0, 1),  # 1×1, channels a multiple of 8 (patches packed from the image)
    (3, 16, 3, 8, 3, 0, 1),  # the kernel covers the whole image: one output position
]


@pytest.mark.parametrize("kernel", [None, *KERNELS])
@pytest.mark.parametrize("shape", CONV_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_conv_forward_and_gradients_equal_the_float_ones(shape, kernel, monkeypatch):
    """Every shape with every kernel forced, and as measured (None)."""
    if kernel is None:
        monkeypatch.delenv(KERNEL_ENV, raising=False)
    else:
        monkeypatch.setenv(KERNEL_ENV, kernel)
    n, c, size, out, k, pad, stride = shape
    torch.manual_seed(1)
    layer = DiscreteConv2d(c, out, k, DiscreteSpace(1, 1.0), padding=pad, stride=stride)
    _assert_same(*_layer_pair(layer), _trits((n, c, size, size)))


LINEAR_SHAPES = [(100, 64, 256), (100, 1024, 512), (1, 1024, 512), (7, 512, 10), (1, 33, 1), (100, 8192, 1024)]


@pytest.mark.parametrize("shape", LINEAR_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_linear_forward_and_gradients_equal_the_float_ones(shape):
    n, k, out = shape
    torch.manual_seed(2)
    layer = DiscreteLinear(k, out, DiscreteSpace(1, 1.0))
    _assert_same(*_layer_pair(layer), _trits((n, k)))


@pytest.mark.parametrize("kernel", [None, *KERNELS])
@pytest.mark.parametrize("N,H", [(0, 1.0), (1, 0.5), (1, 2.0), (0, 4.0)])
def test_binary_weights_and_power_of_two_scales_are_exact(N, H, kernel, monkeypatch):
    """Every scale with every kernel forced, and as measured (None)."""
    if kernel is None:
        monkeypatch.delenv(KERNEL_ENV, raising=False)
    else:
        monkeypatch.setenv(KERNEL_ENV, kernel)
    torch.manual_seed(3)
    space = DiscreteSpace(N, H)
    _assert_same(*_layer_pair(DiscreteConv2d(16, 24, 3, space, padding=1)), _trits((4, 16, 10, 10)))
    _assert_same(*_layer_pair(DiscreteLinear(300, 40, space)), _trits((6, 300), zeros=0.0))


@pytest.mark.parametrize("kernel", list(KERNELS))
def test_every_kernel_gives_the_same_forward(kernel, monkeypatch):
    monkeypatch.setenv(KERNEL_ENV, kernel)
    torch.manual_seed(4)
    space = DiscreteSpace(1, 1.0)
    _assert_same(*_layer_pair(DiscreteConv2d(9, 33, 3, space, padding=1)), _trits((3, 9, 6, 6)))
    _assert_same(*_layer_pair(DiscreteLinear(130, 17, space)), _trits((5, 130)))


def test_each_shapes_kernel_is_measured_once_and_the_fastest_kept(monkeypatch):
    """Without a forced kernel, the first forward of a shape times every candidate kernel's forward
    (``integer_forward.measured``) and keeps the fastest; the next forward of that shape measures nothing; a
    deliberately slowed kernel is never kept where there is another; the values stay the float forward's."""
    monkeypatch.delenv(KERNEL_ENV, raising=False)
    choices = kernels.MeasuredChoices()
    monkeypatch.setattr(integer_forward, "_choices", choices)
    calls = []
    real_conv, real_popcount = kernels.popcount_conv, KERNELS["popcount"]

    def slow(real):
        def run(*args):
            calls.append(real.__name__)
            time.sleep(0.02)
            return real(*args)
        return run

    monkeypatch.setattr(kernels, "popcount_conv", slow(real_conv))
    monkeypatch.setitem(KERNELS, "popcount", slow(real_popcount))
    torch.manual_seed(6)
    space = DiscreteSpace(1, 1.0)
    conv, linear = _layer_pair(DiscreteConv2d(16, 24, 3, space, padding=1)), _layer_pair(DiscreteLinear(96, 40, space))
    for (float_layer, int_layer), x in ((conv, _trits((4, 16, 7, 7))), (linear, _trits((6, 96)))):
        _assert_same(float_layer, int_layer, x)
    assert len(choices.timings) == 2
    for key, timings in choices.timings.items():
        fan_in = 16 * 9 if key[0] == "conv" else 96
        assert list(timings) == candidates(fan_in)
        chosen = choices.chosen[key]
        assert timings[chosen] == min(timings.values())
        if len(timings) > 1:  # another kernel here: the slowed one is never kept
            assert chosen != "popcount"
    before = len(calls)
    _assert_same(*conv, _trits((4, 16, 7, 7)))  # the same shape again: one forward, no measuring
    conv_key = next(key for key in choices.timings if key[0] == "conv")
    assert len(calls) - before == (choices.chosen[conv_key] == "popcount")
    assert len(choices.timings) == 2


@pytest.mark.parametrize("kernel", [None, *KERNELS])
def test_an_empty_batch_gives_the_float_forwards_empty_output(kernel, monkeypatch):
    """A batch of 0 samples: the float forward returns an empty N×C×H×W (or N×F) tensor, and so does the
    integer one, with every kernel and when measuring (its sums have no rows to infer a width from)."""
    if kernel is None:
        monkeypatch.delenv(KERNEL_ENV, raising=False)
    else:
        monkeypatch.setenv(KERNEL_ENV, kernel)
    space = DiscreteSpace(1, 1.0)
    _assert_same(*_layer_pair(DiscreteConv2d(32, 64, 5, space)), torch.zeros(0, 32, 12, 12))
    _assert_same(*_layer_pair(DiscreteLinear(96, 40, space)), torch.zeros(0, 96))


def test_eval_forward_without_grad_equals_the_float_one():
    torch.manual_seed(5)
    float_layer, int_layer = _layer_pair(DiscreteConv2d(8, 16, 5, DiscreteSpace(1, 1.0)))
    x = _trits((1, 8, 11, 11))
    with torch.no_grad():
        assert torch.equal(float_layer.eval()(x), int_layer.eval()(x))


def test_which_layers_are_xnor_layers():
    assert integer_forward_applies(DiscreteSpace(1, 1.0), 1)
    assert integer_forward_applies(DiscreteSpace(0, 0.25), 0)
    assert not integer_forward_applies(DiscreteSpace(1, 1.0), None)  # a real input (pixels, ReLU)
    assert not integer_forward_applies(DiscreteSpace(1, 1.0), 2)  # multi-level activations
    assert not integer_forward_applies(DiscreteSpace(2, 1.0), 1)  # multi-level weights
    assert not integer_forward_applies(DiscreteSpace(1, 0.75), 1)  # float sums of ±0.75 round
    cfg = {"dataset": {"name": "mnist5k"}, "model": {"arch": "mnist_cnn"}}
    assert build_model(validate_config(cfg)).set_integer_forward(True) == ["conv2", "fc1", "fc2"]
    assert build_model(validate_config({"model": {"hidden": [32]}})).set_integer_forward(True) == ["fc2"]
    for other in ({"weights": {"training": "latent"}}, {"weights": {"discrete": False}},
                  {"activations": {"discrete": False}}, {"activations": {"N": 2}}, {"weights": {"H": 3.0}}):
        assert build_model(validate_config(other)).set_integer_forward(True) == []


def test_auto_is_on_for_the_cpu_and_off_for_cuda():
    assert integer_forward_on("auto", "cpu") is True
    assert integer_forward_on("auto", torch.device("cpu")) is True
    assert integer_forward_on("auto", "cuda") is False
    assert integer_forward_on("auto", "cuda:0") is False
    assert integer_forward_on("off", "cpu") is False
    assert integer_forward_on("on", "cpu") is True
    with pytest.raises(RuntimeError, match="integer_forward"):
        integer_forward_on("on", "cuda")


def test_the_config_field():
    assert validate_config({}).train.integer_forward == "auto"
    assert validate_config({"train": {"integer_forward": "off"}}).train.integer_forward == "off"
    with pytest.raises(ConfigError) as err:
        validate_config({"train": {"integer_forward": "yes"}})
    assert err.value.field == "train.integer_forward"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_keeps_the_float_forward():
    torch.manual_seed(6)
    layer = DiscreteConv2d(8, 16, 3, DiscreteSpace(1, 1.0)).cuda().train()
    layer.integer_forward = True  # even if set, a CUDA input takes the float path
    x = _trits((2, 8, 7, 7)).cuda()
    assert torch.equal(layer(x), torch.nn.functional.conv2d(x, layer.space.value(layer.state)))


def _model_pair(cfg: dict):
    """A network (float forward) and a copy with the integer forward on its XNOR layers."""
    torch.manual_seed(0)
    float_model = build_model(validate_config(cfg))
    int_model = copy.deepcopy(float_model)
    assert int_model.set_integer_forward(True)
    return float_model, int_model


def _step(model, x, y):
    model.train()
    out = model(x)
    loss = loss_fn("squared_hinge", out, y)
    loss.backward()
    grads = {name: layer.value.grad for name, layer in model.weight_layers().items() if hasattr(layer, "value")}
    grads.update({name: p.grad for name, p in model.named_parameters()})
    return out.detach(), grads


@pytest.mark.parametrize("cfg,batch", [
    ({"model": {"arch": "mlp", "hidden": [256, 129]}}, 37),
    ({"dataset": {"name": "mnist5k"}, "model": {"arch": "mnist_cnn"}}, 9),
    pytest.param({"dataset": {"name": "cifar10"}, "model": {"arch": "cifar_vgg"}}, 2, marks=pytest.mark.slow),
], ids=["mlp", "mnist_cnn", "cifar_vgg"])
def test_a_network_step_is_identical(cfg, batch):
    """Whole networks (the model's own input shape; BatchNorm and φ between the layers): outputs, every
    weight gradient DST reads and every float parameter's gradient equal."""
    from gxnor_core.data import DATASETS

    g = torch.Generator().manual_seed(7)
    float_model, int_model = _model_pair(cfg)
    x = torch.rand((batch, *DATASETS[validate_config(cfg).dataset.name].input_shape), generator=g) * 2 - 1
    y = torch.randint(0, 10, (batch,), generator=g)
    out0, grads0 = _step(float_model, x, y)
    out1, grads1 = _step(int_model, x, y)
    assert torch.equal(out0, out1)
    assert grads0.keys() == grads1.keys()
    for name in grads0:
        assert torch.equal(grads0[name], grads1[name]), name


class _Collect(Reporter):
    def __init__(self):
        self.metrics, self.layers, self.states = [], [], []

    def epoch(self, metrics, layers, checkpoint):
        self.metrics.append({k: v for k, v in metrics.items() if k not in ("epoch_seconds", "samples_per_second")})
        self.layers.append(layers)
        self.states.append({k: v.clone() for k, v in checkpoint["model"].items()})  # the model changes on


@pytest.mark.slow
@pytest.mark.parametrize("model", [{"arch": "mlp", "hidden": [128, 64]}, {"arch": "cifar_vgg", "width": 0.125}],
                         ids=["mlp", "cifar_vgg"])
def test_training_on_and_off_gives_identical_runs(model, monkeypatch):
    """A few epochs on digits: the same weight states, BatchNorm state, metrics and probe records (gate events
    included) with the integer forward as without — and "on" did run the integer sums, "off" never."""
    runs, sums = {}, {"off": 0, "on": 0}
    real_kernel = integer_forward._kernel  # every integer forward asks it which kernel runs

    def counted(*args):
        sums[setting] += 1
        return real_kernel(*args)

    monkeypatch.setattr(integer_forward, "_kernel", counted)
    for setting in ("off", "on"):
        rep = _Collect()
        cfg = {"dataset": {"name": "digits", "limit": 400}, "model": model,
               "train": {"epochs": 2, "batch_size": 50, "device": "cpu", "integer_forward": setting}}
        result = train(cfg, rep)
        runs[setting] = (rep, result)
    assert sums["off"] == 0 and sums["on"] > 0
    (off, r_off), (on, r_on) = runs["off"], runs["on"]
    assert on.metrics == off.metrics
    assert on.layers == off.layers
    for a, b in zip(off.states, on.states):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert r_on == r_off
    assert not math.isnan(on.metrics[-1]["train_loss"])


def test_probes_are_unchanged():
    torch.manual_seed(8)
    float_model, int_model = _model_pair({"model": {"hidden": [64, 48]}})
    x = torch.rand(50, 1, 8, 8) * 2 - 1
    assert probe(int_model, x) == probe(float_model, x)
