"""Run modes (gxnor_core.modes): each of the paper's comparison networks builds the layers its definition says,
is recognised and labelled from its config, and the sweep preset paper-baselines runs them all; the stateless
DST rule layer_rms follows its equation and trains."""

import pytest
import torch
from torch import nn

from gxnor_core import build_model, train, validate_config
from gxnor_core.dst import OPTIMIZERS, DSTOptimizer
from gxnor_core.latent import LatentOptimizer
from gxnor_core.layers import StepActivation, has_states, layer_weight
from gxnor_core.modes import RUN_MODES, mode_of, run_label
from gxnor_core.sweeps import SWEEP_PRESETS, expand
from gxnor_core.train import loss_fn

# mode → (weight levels in units of the layer's scale, activation levels; None: ReLU)
DEFINITIONS = {
    "gxnor": ([-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0]),
    "twn": ([-1.0, 0.0, 1.0], None),
    "bwn": ([-1.0, 1.0], None),
    "bnn": ([-1.0, 1.0], [-1.0, 1.0]),
    "full_precision": (None, None),
}


def _config(mode: str, training: str = "dst", **extra):
    data = {"dataset": {"name": "mnist5k"}, "model": {"arch": "mnist_cnn", "width": 0.25}, **extra}
    for field, value in {**RUN_MODES[mode].fields, "weights.training": training}.items():
        section, key = field.split(".")
        data.setdefault(section, {})[key] = value
    return validate_config(data)


def _trained(mode: str, training: str):
    """The mode's network after two training steps (so latent α and DST states have moved)."""
    cfg = _config(mode, training, weights={"H": 0.5})
    torch.manual_seed(0)
    model = build_model(cfg)
    opt = (LatentOptimizer(model, "adam", 0.05) if training == "latent"
           else DSTOptimizer(model, "adam", 0.05, 3.0, torch.Generator().manual_seed(0)))
    x, y = torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))
    for _ in range(2):
        opt.zero_grad()
        loss_fn("squared_hinge", model(x), y).backward()
        opt.step()
    return cfg, model


@pytest.mark.parametrize("training", ["dst", "latent"])
@pytest.mark.parametrize("mode", list(RUN_MODES))
def test_each_mode_builds_the_layers_its_definition_says(mode, training):
    assert set(DEFINITIONS) == set(RUN_MODES)
    weight_levels, act_levels = DEFINITIONS[mode]
    cfg, model = _trained(mode, training)
    layers = list(model.weight_layers().values())
    if weight_levels is None:  # float weights: the training mode does not apply
        assert not any(has_states(m) for m in layers) and all(type(m) in (nn.Conv2d, nn.Linear) for m in layers)
    else:
        assert (model.latent_layers() if training == "latent" else model.discrete_layers()) == layers
        for layer in layers:
            w = layer_weight(layer)
            if training == "latent":  # the BWN/TWN scale: α = mean|w| (binary), mean |w| over |w| > Δ (ternary)
                a = layer.weight.detach().abs()
                alpha = a.mean() if len(weight_levels) == 2 else a[a > 0.7 * a.mean()].mean()
            else:  # DST: the states of Z_N, no scale
                alpha = torch.tensor(0.5)
            assert sorted(torch.unique(w).tolist()) == pytest.approx([alpha.item() * v for v in weight_levels])
    acts = [m for m in model.modules() if isinstance(m, StepActivation)]
    assert len(acts) == 3
    x = torch.linspace(-3, 3, 601, requires_grad=True)
    for act in acts:
        if act_levels is None:
            assert act.act is None  # ReLU
            continue
        y = act(x)
        assert sorted(torch.unique(y.detach()).tolist()) == act_levels
        if mode == "bnn":  # BNN's straight-through estimator: 1 on |x| ≤ 1, else 0
            (grad,) = torch.autograd.grad(y.sum(), x)
            assert torch.equal(grad, (x.detach().abs() <= 1).float())
    assert mode_of(cfg) is RUN_MODES[mode]


def test_run_labels_name_the_mode_and_its_training():
    assert run_label(_config("bwn", "latent")) == "BWN-latent"
    assert run_label(_config("gxnor", "dst")) == "GXNOR-DST"
    assert run_label(_config("bnn", "dst")) == "BNN-DST"
    assert run_label(_config("full_precision", "latent")) == "full precision"
    assert run_label(validate_config({"weights": {"N": 2}})) is None  # five-level weights: no paper mode
    assert run_label(validate_config({"activations": {"N": 0}, "weights": {"N": 0}})) is None  # a ≠ 1: not BNN's


def test_paper_baselines_sweep_runs_every_mode_by_dst_and_latent_weights_and_labels_each():
    points = expand({"name": "cmp", "preset": "paper-baselines", "seeds": [0]})
    names = [p.config.name for p in points]
    assert names == [f"cmp · {m} · seed=0" for m in
                     ("GXNOR-DST", "GXNOR-latent", "TWN-DST", "TWN-latent", "BWN-DST", "BWN-latent", "BNN-DST",
                      "BNN-latent", "full precision")]
    assert [run_label(p.config) for p in points] == [n.split(" · ")[1] for n in names]
    base = SWEEP_PRESETS["paper-baselines"]["base"]
    assert {p.config.model.arch for p in points} == {base["model"]["arch"]}
    assert len({p.config.train.model_dump_json() for p in points}) == 1  # the same schedule for every mode
    # a point that only varies part of a mode keeps the field labels
    partial = expand({"name": "n", "grid": {"weights.N": [0, 1]}, "seeds": [0]})
    assert [p.config.name for p in partial] == ["n · N=0 · seed=0", "n · N=1 · seed=0"]


def test_layer_rms_step_is_minus_lr_times_the_gradient_over_its_rms():
    assert OPTIMIZERS["layer_rms"].floats_per_weight == 0
    p = torch.nn.Parameter(torch.zeros(4))
    opt = OPTIMIZERS["layer_rms"].make([{"params": [p]}], 0.1)
    p.grad = torch.tensor([3.0, -4.0, 0.0, 0.0])  # RMS = sqrt(25 / 4) = 2.5
    opt.step()
    assert p.detach().tolist() == pytest.approx([-0.12, 0.16, 0.0, 0.0])
    assert opt.state_dict()["state"] == {}  # nothing kept between steps
    p.grad = torch.zeros(4)
    opt.step()  # a zero gradient proposes nothing
    assert p.detach().tolist() == pytest.approx([-0.12, 0.16, 0.0, 0.0])


@pytest.mark.slow
def test_layer_rms_driven_dst_trains_digits_with_one_byte_per_weight():
    summary = train({"model": {"hidden": [128]}, "dst": {"optimizer": "layer_rms"},
                     "train": {"epochs": 4, "batch_size": 50}})
    assert summary["persistent_bytes_per_weight"] == 1.0
    assert summary["test_error"] <= 0.15  # chance is 0.90; Adam-driven DST reaches ≈ 0.09 in the same run
