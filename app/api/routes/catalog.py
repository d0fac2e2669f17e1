import inspect

from fastapi import APIRouter

from app.api.deps import SettingsDep
from app.auth import Auth
from app.schemas import ERRORS
from gxnor_core import PRESETS, WINDOWS
from gxnor_core.config import ARCHS, DATASETS, LOSSES, OPTIMIZERS, ExperimentConfig
from gxnor_core.models import INPUT_SHAPES
from gxnor_core.sweeps import SWEEP_PRESET_DESCRIPTIONS, SWEEP_PRESETS

router = APIRouter(prefix="/api/v1", tags=["catalog"], responses={401: ERRORS[401]})

_ARCH_HELP = {
    "mlp": "Fully connected: hidden widths from model.hidden, each FC-BN-φ, then 10FC-BN.",
    "mnist_cnn": "Paper: 32C5-MP2-64C5-MP2-512FC-10 (valid convs, BN after each layer).",
    "cifar_vgg": "Paper: 2×128C3-MP2-2×256C3-MP2-2×512C3-MP2-1024FC-10 (same-padded convs).",
}


@router.get("/catalog")
def catalog(settings: SettingsDep, who: Auth) -> dict:
    """Datasets, architectures, windows, presets, defaults and bounds — everything a form needs."""
    return {
        "datasets": [{"name": d, "input_shape": INPUT_SHAPES[d], "bundled": d in ("digits", "mnist5k"),
                      "served": settings.allowed_datasets is None or d in settings.allowed_datasets}
                     for d in DATASETS],
        "architectures": [{"name": a, "help": _ARCH_HELP[a]} for a in ARCHS],
        "windows": [{"name": w.name, "equation": inspect.getdoc(w.tensor), "ours": "*Ours*" in (w.tensor.__doc__ or "")}
                    for w in WINDOWS.values()],
        "optimizers": list(OPTIMIZERS),
        "losses": list(LOSSES),
        "presets": PRESETS,
        "defaults": ExperimentConfig().model_dump(mode="json"),
        "schema": ExperimentConfig.model_json_schema(),
        "sweep_presets": {name: {"description": SWEEP_PRESET_DESCRIPTIONS.get(name, ""), "spec": spec}
                          for name, spec in SWEEP_PRESETS.items()},
        "limits": {"max_epochs": settings.max_epochs, "max_sweep_runs": settings.max_sweep_runs,
                   "max_queued_runs_per_team": settings.max_queued_runs},
    }
