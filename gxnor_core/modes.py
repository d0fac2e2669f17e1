"""Run modes: the networks the paper compares (GXNOR, BWN, TWN, BNN, full precision) as config settings.

A mode is not a config field: it is the set of weight and activation fields that define it
(``RUN_MODES``), so a stored config always says exactly what ran, and any config that has them *is* that
mode (``mode_of``).  Each mode with discrete weights trains either by DST or by latent weights
(``weights.training``); ``run_label`` names a config the way the comparison tables do: ``BWN-latent``,
``GXNOR-DST``, ``full precision``.  The sweep preset ``paper-baselines`` (gxnor_core.sweeps) runs every mode
× training (docs/CONFIG.md, "Run modes").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .config import ExperimentConfig


@dataclass(frozen=True)
class RunMode:
    """``fields``: the dotted config fields that define the mode and their values (a sweep point's overrides)."""

    name: str
    label: str
    fields: dict[str, Any]
    help: str


RUN_MODES: dict[str, RunMode] = {m.name: m for m in (
    RunMode("gxnor", "GXNOR",
            {"weights.discrete": True, "weights.N": 1, "activations.discrete": True, "activations.N": 1},
            "Ternary weights and ternary activations (the paper's network; r and the derivative window as set)."),
    RunMode("twn", "TWN", {"weights.discrete": True, "weights.N": 1, "activations.discrete": False},
            "Ternary weights, float (ReLU) activations."),
    RunMode("bwn", "BWN", {"weights.discrete": True, "weights.N": 0, "activations.discrete": False},
            "Binary weights, float (ReLU) activations."),
    RunMode("bnn", "BNN",
            {"weights.discrete": True, "weights.N": 0, "activations.discrete": True, "activations.N": 0,
             "activations.window": "rect", "activations.a": 1.0},
            "Binary weights and binary activations sign(x), whose derivative is BNN's straight-through "
            "estimator: 1 on |x| ≤ 1 (a rect window of a = 1 on the step of height 2)."),
    RunMode("full_precision", "full precision", {"weights.discrete": False, "activations.discrete": False},
            "Float weights, ReLU activations: the same network without discretization."),
)}
TRAINING_LABELS = {"dst": "DST", "latent": "latent"}
MODE_FIELDS = frozenset({"weights.training", *(f for m in RUN_MODES.values() for f in m.fields)})
"""The fields that say which mode a run is and how its weights train."""


def _value(config: ExperimentConfig, field: str) -> Any:
    node: Any = config
    for part in field.split("."):
        node = getattr(node, part)
    return node


def mode_of(config: ExperimentConfig) -> RunMode | None:
    """The mode whose fields ``config`` has (None: a network none of them defines, e.g. five-level weights)."""
    return next((m for m in RUN_MODES.values()
                 if all(_value(config, f) == v for f, v in m.fields.items())), None)


def spelled_out_mode(config: ExperimentConfig, overrides: dict[str, Any]) -> str | None:
    """``run_label(config)`` when ``overrides`` (a sweep point's) set every field of the config's mode and nothing
    but mode fields, else None: a point that spells out a run mode is named after it."""
    mode = mode_of(config)
    if mode is None or not set(overrides) <= MODE_FIELDS:
        return None
    if any(f not in overrides or overrides[f] != v for f, v in mode.fields.items()):
        return None
    return run_label(config)


def run_label(config: ExperimentConfig) -> str | None:
    """``BWN-latent``, ``GXNOR-DST``, ``full precision`` (float weights: no training mode to name); None when
    no mode defines the network."""
    mode = mode_of(config)
    if mode is None:
        return None
    if not config.weights.discrete:
        return mode.label
    return f"{mode.label}-{TRAINING_LABELS[config.weights.training]}"


def mode_points(trainings: tuple[str, ...] = ("dst", "latent")) -> list[dict[str, Any]]:
    """Sweep points (dotted field → value) of every mode with discrete weights × each weight training, in the
    order of ``RUN_MODES``; full precision is a sweep's ``baseline``."""
    return [{**m.fields, "weights.training": t} for m in RUN_MODES.values() if m.fields["weights.discrete"]
            for t in trainings]
