"""bench.train_speed's step phases: every variant is built as ``train`` builds it and really trains, in turns."""

import importlib

import torch

from bench import train_speed
from gxnor_core import DSTOptimizer

training = importlib.import_module("gxnor_core.train")  # the module (the package's ``train`` is its function)

BASE = {"dataset": {"name": "digits"}, "model": {"arch": "mlp", "hidden": [32]},
        "train": {"epochs": 1, "batch_size": 50, "device": "cpu"}}


def test_step_phases_times_each_variant_phase_by_phase_and_their_steps_train(monkeypatch):
    variants = {"gxnor": {**BASE, "train": {**BASE["train"], "integer_forward": "on"}},
                "full_precision": {**BASE, "weights": {"discrete": False}, "activations": {"discrete": False}}}
    stepped = {}
    real_step = DSTOptimizer.step

    def counting(opt):  # the optimizer steps for real; count them per network
        stepped[id(opt)] = stepped.get(id(opt), 0) + 1
        real_step(opt)

    monkeypatch.setattr(DSTOptimizer, "step", counting)
    states = []
    real_build = training.build_model

    def keeping(cfg, shape):
        model = real_build(cfg, shape)
        states.append((model, {k: v.clone() for k, v in model.state_dict().items()}))
        return model

    monkeypatch.setattr(training, "build_model", keeping)
    kept = []
    monkeypatch.setattr(train_speed, "keep_freed_memory", lambda: kept.append(1))
    phases = train_speed.step_phases(variants, steps=4)
    assert kept == [1]  # the process keeps freed memory, as ``train`` has it do
    assert list(phases) == ["gxnor", "full_precision"]
    for row in phases.values():
        assert set(row) == {"forward", "backward", "optimizer", "step", "kernel_ms_mean", "page_faults_mean"}
        assert all(row[k] > 0 for k in ("forward", "backward", "optimizer", "step"))
        assert row["step"] >= max(row["forward"], row["backward"], row["optimizer"])
    assert sorted(stepped.values()) == [train_speed.WARMUP_STEPS + 4] * 2  # both stepped every turn
    for model, before in states:  # and trained: the DST states or the float weights moved
        after = model.state_dict()
        assert any(not torch.equal(before[k], after[k]) for k in before)
