import pytest
import torch
from torch import nn

from gxnor_core import ConfigError, DiscreteConv2d, DiscreteLinear, build_model, validate_config
from gxnor_core.dst import DSTOptimizer
from gxnor_core.models import count_weights
from gxnor_core.probes import probe
from gxnor_core.train import loss_fn


def _cfg(**kw):
    return validate_config(kw)


def test_mnist_cnn_matches_the_paper():
    model = build_model(_cfg(dataset={"name": "mnist5k"}, model={"arch": "mnist_cnn"}))
    assert list(model.weight_layers()) == ["conv1", "conv2", "fc1", "fc2"]
    assert count_weights(model) == 581_408
    records = probe(model, torch.zeros(2, 1, 28, 28))
    assert sum(r["macs"] for r in records.values()) == 4_267_008


def test_cifar_vgg_matches_the_paper():
    model = build_model(_cfg(dataset={"name": "cifar10"}, model={"arch": "cifar_vgg"}))
    assert list(model.weight_layers()) == ["conv1", "conv2", "conv3", "conv4", "conv5", "conv6", "fc1", "fc2"]
    assert count_weights(model) == 12_973_440
    out = model.eval()(torch.zeros(2, 3, 32, 32))
    assert out.shape == (2, 10)


def test_full_precision_baseline_is_the_same_network_with_float_weights_and_relu():
    cfg = _cfg(dataset={"name": "mnist5k"}, model={"arch": "mnist_cnn"},
               weights={"discrete": False}, activations={"discrete": False})
    model = build_model(cfg)
    assert count_weights(model) == 581_408
    assert all(isinstance(m, nn.Conv2d | nn.Linear) for m in model.weight_layers().values())
    assert model.discrete_layers() == []


def test_an_architecture_the_input_cannot_feed_is_a_config_error():
    with pytest.raises(ConfigError) as err:
        build_model(_cfg(dataset={"name": "digits"}, model={"arch": "mnist_cnn"}))
    assert err.value.field == "model.arch"


def test_discrete_layers_hold_integer_states_only():
    cfg = _cfg(dataset={"name": "mnist5k"}, model={"arch": "mnist_cnn", "width": 0.25}, weights={"N": 2})
    torch.manual_seed(0)
    model = build_model(cfg)
    opt = DSTOptimizer(model, "adam", 0.01, 3.0, torch.Generator().manual_seed(0))
    x, y = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    before = [m.state.clone() for m in model.discrete_layers()]
    for _ in range(3):
        opt.zero_grad()
        loss_fn("squared_hinge", model(x), y).backward()
        opt.step()
    assert any(not torch.equal(b, m.state) for b, m in zip(before, model.discrete_layers()))
    for layer in model.discrete_layers():
        assert isinstance(layer, DiscreteConv2d | DiscreteLinear)
        assert layer.state.dtype == torch.int8
        assert layer.value is None  # the transient float view did not survive the step
        assert not any(p.shape == layer.state.shape for p in layer.parameters())
    assert all(p.numel() == 0 for p in opt.proposals)  # DST scratch released
    float_tensors = {k: v for k, v in model.state_dict().items() if v.is_floating_point()}
    assert all(".state" not in k for k in float_tensors)
    assert all(v.dim() <= 1 for v in float_tensors.values())  # only BN vectors are float


@pytest.mark.parametrize("base,expected", [("sgd", 1.0), ("momentum", 5.0), ("adam", 9.0)])
def test_persistent_bytes_per_weight(base, expected):
    cfg = _cfg(model={"hidden": [32]})
    model = build_model(cfg)
    opt = DSTOptimizer(model, base, 0.01, 3.0, torch.Generator().manual_seed(0))
    opt.zero_grad()
    loss_fn("squared_hinge", model(torch.randn(16, 1, 8, 8)), torch.randint(0, 10, (16,))).backward()
    opt.step()
    n = sum(m.num_weights for m in model.discrete_layers())
    assert opt.persistent_bytes() / n == expected


def test_model_size_is_computed_without_building_and_matches_the_built_network():
    from gxnor_core.models import model_size

    cnn = _cfg(dataset={"name": "mnist5k"}, model={"arch": "mnist_cnn"})
    assert model_size(cnn) == (581_408, 4_267_008)
    vgg = _cfg(dataset={"name": "cifar10"}, model={"arch": "cifar_vgg"})
    weights, macs = model_size(vgg)
    assert weights == 12_973_440 and 600e6 < macs < 630e6  # docs/METHOD.md §5 (cifar_vgg): ≈616 M
