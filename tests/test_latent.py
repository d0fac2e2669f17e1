"""Latent-weight training (docs/METHOD.md §7): the quantizers, the straight-through estimator, where float
shadow weights exist (only there), the optimizer, and the persistent bytes per weight of every training mode."""

import numpy as np
import pytest
import torch

from gxnor_core import build_model, train, validate_config
from gxnor_core.dst import DSTOptimizer
from gxnor_core.latent import QUANTIZERS, LatentOptimizer, quantize, quantizer_for
from gxnor_core.layers import LatentConv2d, LatentLinear, layer_weight
from gxnor_core.spaces import DiscreteSpace
from gxnor_core.train import load_model, loss_fn
from tests.test_train import Recorder

CNN = {"dataset": {"name": "mnist5k"}, "model": {"arch": "mnist_cnn", "width": 0.25}}


def _steps(model, opt, n=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(8, 1, 28, 28, generator=g), torch.randint(0, 10, (8,), generator=g)
    for _ in range(n):
        opt.zero_grad()
        loss_fn("squared_hinge", model(x), y).backward()
        opt.step()


def _reference(w: np.ndarray, N: int, H: float) -> np.ndarray:
    """The papers' quantizers, written out in numpy: BWN α·sign, TWN with Δ = 0.7·mean|w|, else nearest state."""
    a = np.abs(w)
    if N == 0:
        return a.mean() * np.where(w >= 0, 1.0, -1.0)
    if N == 1:
        keep = a > 0.7 * a.mean()
        return a[keep].mean() * np.sign(w) * keep
    step = 2 * H / 2**N
    return -H + step * np.clip(np.round((w + H) / step), 0, 2**N)


@pytest.mark.parametrize("name", list(QUANTIZERS))
def test_every_quantizer_gives_alpha_times_the_states_of_its_space(name):
    N = {"bwn": 0, "twn": 1, "nearest": 3}[name]
    assert quantizer_for(N).name == name
    space = DiscreteSpace(N, 0.5)
    w = torch.randn(4000, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 0.3
    q, idx, alpha = quantize(w, space)
    assert idx.dtype == space.index_dtype and int(idx.min()) >= 0 and int(idx.max()) <= space.max_index
    assert torch.allclose(q, space.value(idx, torch.float64) * (alpha / space.H))
    assert np.allclose(q.numpy(), _reference(w.numpy(), N, space.H))
    assert len(torch.unique(q)) == space.num_states  # every state is used by this spread of weights


def test_twn_threshold_and_scale_on_a_small_example():
    w = torch.tensor([0.1, -0.2, 0.9, -1.0, 0.05, 0.6])  # mean|w| = 0.475, Δ = 0.3325
    q, idx, alpha = quantize(w, DiscreteSpace(1, 1.0))
    assert float(alpha) == pytest.approx((0.9 + 1.0 + 0.6) / 3)
    assert idx.tolist() == [1, 1, 2, 0, 1, 2]
    a = float(alpha)
    assert q.tolist() == pytest.approx([0, 0, a, -a, 0, a])


def test_the_backward_pass_is_straight_through():
    layer = LatentLinear(5, 3, DiscreteSpace(1, 1.0))
    x = torch.randn(4, 5)
    layer(x).square().sum().backward()
    q = layer_weight(layer)
    expected = 2 * (x @ q.t()).t() @ x  # ∂/∂W of Σ (x Wᵀ)² at W = Q(w)
    assert torch.allclose(layer.weight.grad, expected, atol=1e-5)


def test_float_shadow_weights_exist_only_in_latent_mode():
    latent = build_model(validate_config({**CNN, "weights": {"training": "latent"}}))
    dst = build_model(validate_config(CNN))
    _steps(latent, LatentOptimizer(latent, "adam", 0.01))
    _steps(dst, DSTOptimizer(dst, "adam", 0.01, 3.0, torch.Generator().manual_seed(0)))

    assert dst.latent_layers() == [] and latent.discrete_layers() == []
    for layer in latent.latent_layers():
        assert isinstance(layer, LatentConv2d | LatentLinear)
        assert isinstance(layer.weight, torch.nn.Parameter) and layer.weight.dtype == torch.float32
        assert layer.weight.requires_grad and dict(layer.named_buffers()) == {}
    shadow = {k for k, v in latent.state_dict().items() if v.is_floating_point() and v.dim() > 1}
    assert shadow == {f"blocks.{n}.0.weight" for n in ("conv1", "conv2", "fc1", "fc2")}
    # DST: integer states only; the only float tensors are BatchNorm vectors, and no parameter is a weight
    assert all(layer.state.dtype == torch.int8 for layer in dst.discrete_layers())
    assert all(v.dim() <= 1 for v in dst.state_dict().values() if v.is_floating_point())
    assert all(p.dim() == 1 for p in dst.parameters())


def test_latent_weights_stay_in_range_and_report_states_like_dst():
    model = build_model(validate_config({**CNN, "weights": {"training": "latent", "H": 0.5}}))
    opt = LatentOptimizer(model, "sgd", 50.0)  # a step large enough to push weights far past ±H
    before = [layer.state.clone() for layer in model.latent_layers()]
    _steps(model, opt, n=2)
    for layer in model.latent_layers():
        assert float(layer.weight.detach().abs().max()) <= 0.5
        assert layer.state.dtype == torch.int8 and set(layer.state.unique().tolist()) <= {0, 1, 2}
    moved = sum(int((layer.state.long() - old.long()).abs().sum())
                for layer, old in zip(model.latent_layers(), before))
    assert 0 < moved <= sum(opt.take_moves())  # every step counted: at least the net change


@pytest.mark.parametrize("training,base,expected", [
    ("dst", "sgd", 1.0), ("dst", "layer_rms", 1.0), ("dst", "momentum", 5.0), ("dst", "adam", 9.0),
    ("latent", "sgd", 4.0), ("latent", "layer_rms", 4.0), ("latent", "momentum", 8.0), ("latent", "adam", 12.0),
])
def test_persistent_bytes_per_weight_of_each_training_mode(training, base, expected):
    model = build_model(validate_config({"model": {"hidden": [32]}, "weights": {"training": training}}))
    opt = (LatentOptimizer(model, base, 0.01) if training == "latent"
           else DSTOptimizer(model, base, 0.01, 3.0, torch.Generator().manual_seed(0)))
    opt.zero_grad()
    loss_fn("squared_hinge", model(torch.randn(16, 1, 8, 8)), torch.randint(0, 10, (16,))).backward()
    opt.step()
    n = sum(m.num_weights for m in model.quantized_layers())
    assert opt.persistent_bytes() / n == expected


@pytest.mark.parametrize("training,weights,base,expected", [
    ("dst", True, "sgd", 1.0), ("dst", True, "adam", 9.0), ("latent", True, "adam", 12.0),
    ("dst", False, "adam", 12.0), ("dst", False, "sgd", 4.0),
])
def test_every_run_reports_its_persistent_bytes_per_weight(training, weights, base, expected):
    rec = Recorder()
    summary = train({"model": {"hidden": [16]}, "weights": {"discrete": weights, "training": training},
                     "dst": {"optimizer": base}, "train": {"epochs": 1, "batch_size": 200}}, rec)
    assert rec.metrics[-1]["persistent_bytes_per_weight"] == summary["persistent_bytes_per_weight"] == expected


def test_latent_runs_are_deterministic_and_resume_exactly():
    config = {"model": {"hidden": [32, 32]}, "weights": {"training": "latent"}, "train": {"epochs": 3}}
    full, again = Recorder(), Recorder()
    assert train(config, full) == train(config, again) and full.metrics == again.metrics
    first = Recorder(stop_after=1)
    train(config, first)
    resumed = Recorder(resume=first.checkpoints[-1])
    train(config, resumed)
    assert first.metrics + resumed.metrics == full.metrics
    assert first.layers + resumed.layers == full.layers
    moves = [r["moves"] for r in full.layers[-1]]
    assert all(m >= r["transitions"] for m, r in zip(moves, full.layers[-1])) and sum(moves) > 0


def test_a_latent_checkpoint_loads_as_the_network_it_trained(tmp_path):
    rec = Recorder()
    train({"model": {"hidden": [16]}, "weights": {"training": "latent"}, "train": {"epochs": 1}}, rec)
    torch.save(rec.checkpoints[-1], tmp_path / "checkpoint.pt")
    model = load_model(str(tmp_path / "checkpoint.pt"))
    assert [type(m) for m in model.weight_layers().values()] == [LatentLinear, LatentLinear]
    shadows = {k: v for k, v in rec.checkpoints[-1]["model"].items() if k.endswith(".0.weight")}
    assert all(torch.equal(model.state_dict()[k], v) for k, v in shadows.items()) and len(shadows) == 2
