import copy
import math

import pytest
import torch

from gxnor_core import Reporter, preset, train, validate_config
from gxnor_core.train import lr_at

TIMING = {"epoch_seconds", "samples_per_second"}


class Recorder(Reporter):
    """Keeps everything train() reports; optionally stops after an epoch or resumes."""

    def __init__(self, stop_after=None, resume=None):
        self.metrics, self.layers, self.checkpoints = [], [], []
        self.stop_after, self.resume = stop_after, resume

    def resume_from(self):
        return self.resume

    def should_stop(self):
        return self.stop_after is not None and len(self.metrics) >= self.stop_after

    def epoch(self, metrics, layers, checkpoint):
        self.metrics.append({k: v for k, v in metrics.items() if k not in TIMING})
        self.layers.append(layers)
        self.checkpoints.append(copy.deepcopy(checkpoint))


SMALL_MLP = {"model": {"hidden": [64, 64]}, "train": {"epochs": 4, "batch_size": 64}}
SMALL_CNN = {
    "dataset": {"name": "mnist5k", "limit": 600},
    "model": {"arch": "mnist_cnn", "width": 0.25},
    "weights": {"N": 2},
    "dst": {"optimizer": "momentum"},
    "train": {"epochs": 3, "batch_size": 50},
}


@pytest.mark.parametrize("config", [SMALL_MLP, pytest.param(SMALL_CNN, marks=pytest.mark.slow)], ids=["mlp", "cnn"])
def test_same_seed_gives_identical_metrics(config):
    a, b = Recorder(), Recorder()
    train(config, a)
    train(config, b)
    assert a.metrics == b.metrics
    assert a.layers == b.layers


@pytest.mark.parametrize("config,k", [(SMALL_MLP, 2), (SMALL_CNN, 1)], ids=["mlp", "cnn"])
def test_resume_after_epoch_k_is_exact(config, k):
    full = Recorder()
    full_summary = train(config, full)

    first = Recorder(stop_after=k)
    assert train(config, first)["status"] == "cancelled"
    assert len(first.metrics) == k
    ckpt = first.checkpoints[-1]
    resumed = Recorder(resume=ckpt)
    resumed_summary = train(config, resumed)

    assert first.metrics + resumed.metrics == full.metrics
    assert first.layers + resumed.layers == full.layers
    final_full, final_resumed = full.checkpoints[-1]["model"], resumed.checkpoints[-1]["model"]
    assert final_full.keys() == final_resumed.keys()
    for key in final_full:
        assert torch.equal(final_full[key], final_resumed[key]), key
    assert resumed_summary == full_summary


@pytest.mark.slow
def test_quick_preset_learns_digits():
    summary = train(preset("quick"))
    assert summary["status"] == "succeeded"
    assert summary["test_error"] <= 0.10  # ≥ 90 % test accuracy


@pytest.mark.slow
def test_full_precision_baseline_learns_digits():
    summary = train(preset("quick-fp"))
    assert summary["test_error"] <= 0.10
    assert summary["num_discrete_weights"] == 0


def test_epoch_records_carry_every_spec_field():
    rec = Recorder()
    train({"model": {"hidden": [32]}, "train": {"epochs": 2}}, rec)
    m = rec.metrics[-1]
    for field in ("epoch", "train_loss", "train_error", "val_loss", "val_error", "test_error", "lr",
                  "weight_sparsity", "activation_sparsity", "gate_event_rate", "transition_rate"):
        assert field in m and m[field] is not None and not math.isnan(m[field]), field
    names = [r["layer"] for r in rec.layers[-1]]
    assert names == ["fc1", "fc2"]
    for r in rec.layers[-1]:
        matrix = torch.tensor(r["transition_matrix"])
        assert matrix.shape == (3, 3)
        assert int(matrix.sum()) == r["num_weights"]
        assert int(matrix.sum() - matrix.trace()) == r["transitions"]
        assert r["moves"] >= r["transitions"]
        assert torch.tensor(r["weight_states"]).tolist() == matrix.sum(0).tolist()  # end-of-epoch states
    total = sum(r["num_weights"] for r in rec.layers[-1])
    assert m["transition_rate"] == pytest.approx(sum(r["transitions"] for r in rec.layers[-1]) / total)


def test_learning_rate_decays_exponentially_from_lr_to_lr_final():
    cfg = validate_config({"train": {"epochs": 5, "lr": 0.1, "lr_final": 0.001}})
    lrs = [lr_at(cfg, e) for e in range(5)]
    assert lrs[0] == pytest.approx(0.1) and lrs[-1] == pytest.approx(0.001)
    ratios = [lrs[i + 1] / lrs[i] for i in range(4)]
    assert max(ratios) == pytest.approx(min(ratios))


def test_restart_heuristic_is_deterministic_and_keeps_states_in_space():
    config = {**SMALL_MLP, "dst": {"restart_patience": 1}, "train": {"epochs": 4, "lr": 0.5, "lr_final": 0.5}}
    a, b = Recorder(), Recorder()
    train(config, a)
    train(config, b)
    assert a.metrics == b.metrics
    for state in (v for k, v in a.checkpoints[-1]["model"].items() if k.endswith(".state")):
        assert int(state.min()) >= 0 and int(state.max()) <= 2
