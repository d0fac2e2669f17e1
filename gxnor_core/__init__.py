"""GXNOR core: gated XNOR networks trained without full-precision hidden weights.

Deng et al., "GXNOR-Net", Neural Networks 100 (2018) 49–58.  Pure library: no
web, database or queue imports here.
"""

from .activations import ACTIVATION_PRESETS, WINDOWS, MultiStepActivation, quantize_activation
from .config import PRESETS, ExperimentConfig, apply_overrides, preset, validate_config
from .data import DATASETS, DatasetError, check_fits_dataset, load_dataset
from .dst import OPTIMIZERS, DSTOptimizer, dst_update
from .errors import ConfigError, FieldError, SweepSpecError
from .layers import DiscreteConv2d, DiscreteLinear
from .models import ARCHITECTURES, GXNORNet, build_model
from .probes import probe
from .spaces import DiscreteSpace
from .train import Reporter, load_model, train

__all__ = [
    "ACTIVATION_PRESETS", "ARCHITECTURES", "DATASETS", "OPTIMIZERS", "PRESETS", "WINDOWS", "ConfigError",
    "DSTOptimizer", "DatasetError", "DiscreteConv2d", "DiscreteLinear", "DiscreteSpace", "ExperimentConfig",
    "FieldError", "GXNORNet", "MultiStepActivation", "Reporter", "SweepSpecError", "apply_overrides",
    "build_model", "check_fits_dataset", "dst_update", "load_dataset", "load_model", "preset", "probe",
    "quantize_activation", "train", "validate_config",
]
