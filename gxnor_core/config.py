"""The one experiment config (every field explained in docs/CONFIG.md): used by the CLI, the API and the worker.

Every field has a default, so ``{}`` is a valid config (digits, MLP, ternary).
Unknown keys are an error.  Bounds are the product's hard limits; a service may
impose lower ones on top.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from .activations import ACTIVATION_PRESETS, OVERLAPS, WINDOWS
from .data import DATASETS
from .dst import OPTIMIZERS
from .errors import ConfigError, FieldError
from .integer_forward import INTEGER_FORWARD_CHOICES
from .models import ARCHITECTURES

# The names each choice field accepts, from the registries (a new entry there is a new allowed value here).
DATASET_NAMES = tuple(DATASETS)
ARCH_NAMES = tuple(ARCHITECTURES)
WINDOW_NAMES = tuple(WINDOWS)
OPTIMIZER_NAMES = tuple(OPTIMIZERS)
LOSSES = ("squared_hinge", "cross_entropy")
WEIGHT_TRAININGS = ("dst", "latent")
SCHEDULES = ("exponential", "multistep")
DEVICES = ("auto", "cpu", "cuda")


# Names and other free text a person types: every character but the C0 and C1 controls (Unicode category Cc,
# U+0000–U+001F, U+007F–U+009F — tab and newline included).  PostgreSQL cannot store a NUL in text at all,
# and the others have no business in a name shown in lists, logs and terminals.
_CONTROL_RANGES = r"\x00-\x1f\x7f-\x9f"
CONTROL_CHARS = re.compile(f"[{_CONTROL_RANGES}]")
NO_CONTROL_PATTERN = f"^[^{_CONTROL_RANGES}]*$"  # the same rule in JSON Schema, for OpenAPI clients


def control_char_problem(text: str) -> str | None:
    """Why ``text`` is refused (the first control character and its position), or None when it is fine."""
    found = CONTROL_CHARS.search(text)
    if found is None:
        return None
    return f"control characters are not allowed (U+{ord(found.group()):04X} at position {found.start()})"


def _refuse_control_chars(text: str) -> str:
    problem = control_char_problem(text)
    if problem is not None:
        raise PydanticCustomError("control_character", problem)
    return text


# The one type for stored names and free-text query parameters (config name and project, sweep and token
# names, ?q= …): a str without control characters.  Length limits are the field's own.
CleanText = Annotated[str, AfterValidator(_refuse_control_chars),
                      Field(json_schema_extra={"pattern": NO_CONTROL_PATTERN})]


def refuse_control_chars(data: Any, where: str = "") -> None:
    """Raise FieldError naming the first string (key or value) in nested JSON-like ``data`` that holds a
    control character, by its dotted path under ``where``."""
    if isinstance(data, str):
        problem = control_char_problem(data)
        if problem is not None:
            raise FieldError(where, problem)
    elif isinstance(data, dict):
        for key, value in data.items():
            path = f"{where}.{key}" if where else str(key)
            if isinstance(key, str) and (problem := control_char_problem(key)) is not None:
                raise FieldError(where, f"key {key!r}: {problem}")
            refuse_control_chars(value, path)
    elif isinstance(data, list | tuple):
        for i, value in enumerate(data):
            refuse_control_chars(value, f"{where}.{i}" if where else str(i))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, strict=True)


class DatasetConfig(_Strict):
    name: Literal[DATASET_NAMES] = Field("digits", description="Dataset name; never a path.")
    root: CleanText | None = Field(
        None,
        description="Directory holding the standard files (CLI only; default ~/.cache/gxnor/datasets, "
        "or GXNOR_DATASETS_DIR).",
    )
    download: bool = Field(
        False, description="Download missing standard files into root (CLI only)."
    )
    val_fraction: float = Field(
        0.1, ge=0.0, le=0.5, description="Fraction of the training split held out for validation."
    )
    limit: int | None = Field(
        None, ge=10, le=10_000_000, description="Use at most this many training samples."
    )


class ModelConfig(_Strict):
    arch: Literal[ARCH_NAMES] = Field("mlp", description="Network family (docs/METHOD.md §5).")
    hidden: list[Annotated[int, Field(ge=1, le=16384)]] = Field(
        default_factory=lambda: [256, 256],
        max_length=16,
        description="Hidden layer widths of the MLP (1–16 384 each, at most 16 layers).",
    )
    width: float = Field(
        1.0, gt=0.0, le=4.0, description="Channel multiplier for the CNNs (1 = the paper's)."
    )


class WeightConfig(_Strict):
    discrete: bool = Field(True, description="False: full-precision float weights (baseline).")
    N: int = Field(1, ge=0, le=8, description="2^N+1 weight states in [-H, H].")
    H: float = Field(1.0, gt=0.0, le=1e3, description="Weight range [-H, H].")
    training: Literal[WEIGHT_TRAININGS] = Field(
        "dst",
        description="dst: integer states moved by Discrete State Transition (no float weights); latent: float "
        "shadow weights, quantized in the forward pass (BWN/TWN scale α), straight-through backward.",
    )
    fc_init: float = Field(
        1.0, gt=0.0, le=10.0,
        description="Fully connected layers start from U(-fc_init·H, fc_init·H) rounded onto the states "
        "(convolutions from U(-H, H)); the reference code's CIFAR-10 run uses 1.5.",
    )


class ActivationConfig(_Strict):
    discrete: bool = Field(True, description="False: ReLU activations (baseline).")
    N: int = Field(1, ge=0, le=8, description="Activation levels: 0 binary, 1 ternary, ≥2 multi.")
    r: float = Field(0.5, ge=0.0, le=4.0, description="Sparsity window: |x| ≤ r maps to 0.")
    a: float = Field(0.5, gt=0.0, le=4.0, description="Derivative window half-width.")
    window: Literal[WINDOW_NAMES] = Field("rect", description="Derivative window shape.")
    overlap: Literal[OVERLAPS] = Field(
        "paper",
        description="paper: φ'(x) = Σ_k h·g(|x| - s_k); sum: also the mirror windows at -s_k, summed "
        "(differs when r < a).",
    )


class DSTConfig(_Strict):
    optimizer: Literal[OPTIMIZER_NAMES] = Field("adam", description="Base rule proposing Δw.")
    m: float = Field(3.0, gt=0.0, le=100.0, description="Transition nonlinearity τ = tanh(m|ν|/Δz).")
    restart_patience: int | None = Field(
        None,
        ge=1,
        le=10_000,
        description="Epochs without validation improvement before a random restart "
        "(reference code's heuristic, off by default).",
    )


class TrainConfig(_Strict):
    epochs: int = Field(10, ge=1, le=10_000)
    batch_size: int = Field(100, ge=1, le=65_536)
    lr: float = Field(0.01, gt=0.0, le=10.0, description="Learning rate of the first epoch.")
    lr_final: float = Field(
        0.0001, gt=0.0, le=10.0, description="Learning rate of the last epoch (exponential decay)."
    )
    schedule: Literal[SCHEDULES] = Field(
        "exponential",
        description="exponential: lr → lr_final; multistep: the same decay, times milestone_factor at "
        "each of the milestones.",
    )
    milestones: list[Annotated[int, Field(ge=1)]] = Field(
        default_factory=list, max_length=100, validate_default=True,
        description="Epochs (0-based, increasing, below epochs) from which the learning rate is multiplied "
        "by milestone_factor (schedule multistep only).",
    )
    milestone_factor: float = Field(0.1, gt=0.0, le=1.0, description="The multistep schedule's factor.")
    zero_lr_first_epoch: bool = Field(
        False,
        description="The reference code's first epoch: learning rate 0 (DST moves nothing, BatchNorm "
        "running statistics still update); the schedule starts at the second epoch.",
    )
    lr_float: float | None = Field(
        None, gt=0.0, le=10.0,
        description="First-epoch learning rate of the float parameters (BatchNorm γ/β; every weight of a "
        "full-precision network), on the same schedule; null: lr.",
    )
    loss: Literal[LOSSES] = "squared_hinge"
    seed: int = Field(0, ge=0, le=2**31 - 1)
    device: Literal[DEVICES] = "auto"
    integer_forward: Literal[INTEGER_FORWARD_CHOICES] = Field(
        "auto",
        description="The XNOR layers' forward pass on integer kernels (same values as the float one, backward "
        "unchanged): auto: on the CPU, not on a GPU; on: the CPU only; off: float.",
    )

    @field_validator("milestones")
    @classmethod
    def _milestones_fit_the_schedule(cls, milestones: list[int], info: ValidationInfo) -> list[int]:
        """Milestones belong to the multistep schedule, which needs at least one; they increase and lie
        inside the run (a milestone at or after ``epochs`` would never apply)."""
        schedule, epochs = info.data.get("schedule"), info.data.get("epochs")
        if schedule == "exponential" and milestones:
            raise PydanticCustomError("milestones", "milestones are used by schedule multistep only")
        if schedule == "multistep" and not milestones:
            raise PydanticCustomError("milestones", "schedule multistep needs at least one milestone")
        if any(b <= a for a, b in zip(milestones, milestones[1:])):
            raise PydanticCustomError("milestones", "milestones must be strictly increasing")
        if epochs is not None and milestones and milestones[-1] >= epochs:
            raise PydanticCustomError("milestones", f"milestone {milestones[-1]} is not below train.epochs "
                                                    f"({epochs}); epochs count from 0")
        return milestones


class ExperimentConfig(_Strict):
    name: CleanText = Field("run", min_length=1, max_length=200)
    project: CleanText = Field("default", min_length=1, max_length=100)
    dataset: DatasetConfig = Field(default_factory=DatasetConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    weights: WeightConfig = Field(default_factory=WeightConfig)
    activations: ActivationConfig = Field(default_factory=ActivationConfig)
    dst: DSTConfig = Field(default_factory=DSTConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)


def _first_error(exc: ValidationError) -> ConfigError:
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err["loc"])
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    return ConfigError(field, msg)


def validate_config(data: dict[str, Any] | ExperimentConfig) -> ExperimentConfig:
    """Parse and validate a config dict; raise ConfigError naming the first bad field."""
    if isinstance(data, ExperimentConfig):
        return data
    if not isinstance(data, dict):
        raise ConfigError("", "config must be a JSON object")
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as exc:
        raise _first_error(exc) from None


# ``mnist-paper`` and ``cifar-paper`` are the paper's networks and activation on a short schedule (batch 100,
# 100 epochs): quick approximations kept under their old names, not the paper's protocol.  ``*-reference``
# follow the reference code's training settings field by field (docs/REPRODUCING.md lists each, and what
# differs).
PRESETS: dict[str, dict[str, Any]] = {
    "quick": {
        "name": "quick",
        "dataset": {"name": "digits"},
        "model": {"arch": "mlp", "hidden": [256, 256]},
        "train": {"epochs": 10, "batch_size": 50, "lr": 0.01, "lr_final": 0.001},
    },
    "mnist-paper": {
        "name": "mnist-paper",
        "dataset": {"name": "mnist", "val_fraction": 1 / 6},
        "model": {"arch": "mnist_cnn"},
        "activations": {"N": 1, "r": 1.0, "a": 0.5, "window": "rect"},
        "dst": {"optimizer": "adam", "m": 3.0},
        "train": {"epochs": 100, "batch_size": 100, "lr": 0.01, "lr_final": 0.00001},
    },
    "cifar-paper": {
        "name": "cifar-paper",
        "dataset": {"name": "cifar10", "val_fraction": 0.1},
        "model": {"arch": "cifar_vgg"},
        "activations": {"N": 1, "r": 1.0, "a": 0.5, "window": "rect"},
        "dst": {"optimizer": "adam", "m": 3.0},
        "train": {"epochs": 100, "batch_size": 100, "lr": 0.01, "lr_final": 0.00001},
    },
    "mnist-reference": {
        "name": "mnist-reference",
        "dataset": {"name": "mnist", "val_fraction": 1 / 6},  # 50 000 / 10 000 / 10 000
        "model": {"arch": "mnist_cnn"},
        "weights": {"N": 1, "H": 1.0, "fc_init": 1.0},
        "activations": dict(ACTIVATION_PRESETS["reference"]),
        "dst": {"optimizer": "adam", "m": 3.0},
        "train": {"epochs": 4000, "batch_size": 10_000, "lr": 0.1, "lr_final": 1e-7, "zero_lr_first_epoch": True,
                  "loss": "squared_hinge"},
    },
    "cifar-reference": {
        "name": "cifar-reference",
        "dataset": {"name": "cifar10", "val_fraction": 0.1},  # 45 000 / 5 000 / 10 000
        "model": {"arch": "cifar_vgg"},
        "weights": {"N": 1, "H": 1.0, "fc_init": 1.5},
        "activations": dict(ACTIVATION_PRESETS["reference"]),
        "dst": {"optimizer": "adam", "m": 3.0},
        "train": {"epochs": 2000, "batch_size": 1000, "lr": 0.01, "lr_final": 3e-5, "zero_lr_first_epoch": True,
                  "schedule": "multistep", "milestones": [1000, 1600], "milestone_factor": 0.1,
                  "loss": "squared_hinge"},
    },
}
# Each preset has a full-precision baseline of the same network (float weights, ReLU).
for _name in list(PRESETS):
    _fp = copy.deepcopy(PRESETS[_name])
    _fp["name"] = f"{_name}-fp"
    _fp["weights"] = {"discrete": False}
    _fp["activations"] = {**_fp.get("activations", {}), "discrete": False}
    PRESETS[f"{_name}-fp"] = _fp


def preset(name: str) -> ExperimentConfig:
    if name not in PRESETS:
        raise ConfigError("preset", f"unknown preset {name!r}; choose from {sorted(PRESETS)}")
    return validate_config(copy.deepcopy(PRESETS[name]))


def _parse_scalar(text: str) -> Any:
    """`--set` values are YAML scalars/lists: 0.5, true, null, [256, 256], mnist."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b=value`` assignments to a config dict (a copy is returned)."""
    out = copy.deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(item, "expected key.path=value")
        path, raw = item.split("=", 1)
        keys = path.strip().split(".")
        node = out
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise ConfigError(path, "is not a section")
        node[keys[-1]] = _parse_scalar(raw)
    return out


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a JSON or YAML config file, or a preset given as ``preset:NAME`` or a bare preset name.  Neither a
    file nor a preset: a FieldError on ``config`` that lists the presets."""
    text_path = str(path)
    name = text_path.removeprefix("preset:")
    if text_path.startswith("preset:") or (name in PRESETS and not Path(text_path).exists()):
        if name not in PRESETS:
            raise FieldError("config", f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
        return copy.deepcopy(PRESETS[name])
    if not Path(text_path).exists():
        raise FieldError("config", f"no such file or preset: {text_path} (presets: {', '.join(PRESETS)})")
    return read_mapping(text_path, "config")


def read_mapping(path: str | Path, field: str) -> dict[str, Any]:
    """A JSON or YAML file holding a mapping (empty file: ``{}``); errors are FieldError on ``field`` (the
    command-line argument that named the file)."""
    p = Path(path)
    if not p.is_file():
        raise FieldError(field, f"no such file: {p}")
    raw = p.read_text()
    if p.suffix == ".json":
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise FieldError(field, f"invalid JSON: {exc}") from None
    else:
        import yaml

        try:
            data = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise FieldError(field, f"invalid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise FieldError(field, f"{field} must be a mapping")
    return data
