import inspect

from fastapi import APIRouter

from app.api.deps import SettingsDep
from app.auth import Auth
from app.costs import cost_catalog
from app.schemas import ERRORS
from gxnor_core import ARCHITECTURES, DATASETS, OPTIMIZERS, PRESETS, WINDOWS
from gxnor_core.config import LOSSES, ExperimentConfig
from gxnor_core.data import dataset_present
from gxnor_core.metrics import catalog as metric_catalog
from gxnor_core.sweeps import SWEEP_PRESET_DESCRIPTIONS, SWEEP_PRESETS

router = APIRouter(prefix="/api/v1", tags=["catalog"], responses={401: ERRORS[401]})


def _dataset(d, settings) -> dict:
    """One dataset of the registry, and whether this server can serve it: ``allowed`` (GXNOR_ALLOWED_DATASETS),
    ``present`` (bundled, or its files found in the datasets directory — not read: `gxnor datasets` verifies
    them) and ``served`` (both: a run on it is accepted)."""
    allowed = settings.allowed_datasets is None or d.name in settings.allowed_datasets
    present = dataset_present(d.name, settings.datasets_root)
    return {"name": d.name, "help": d.help, "input_shape": d.input_shape, "num_classes": d.num_classes,
            "train_pool": d.pool, "test_size": d.test, "bundled": d.bundled, "allowed": allowed, "present": present,
            "served": allowed and present}


@router.get("/catalog")
def catalog(settings: SettingsDep, who: Auth) -> dict:
    """Datasets, architectures, windows, presets, defaults and bounds — everything a form needs — and the metric
    catalog (``metrics``: run, epoch and layer metrics with labels, units, better-direction and what each is a
    fraction of; docs/METRICS.md) and the cost model's schemes, counts and energy table (``costs``)."""
    return {
        "datasets": [_dataset(d, settings) for d in DATASETS.values()],
        "architectures": [{"name": a.name, "help": a.help} for a in ARCHITECTURES.values()],
        "windows": [{"name": w.name, "equation": inspect.getdoc(w.tensor), "ours": "*Ours*" in (w.tensor.__doc__ or "")}
                    for w in WINDOWS.values()],
        "optimizers": list(OPTIMIZERS),
        "losses": list(LOSSES),
        "presets": PRESETS,
        "defaults": ExperimentConfig().model_dump(mode="json"),
        "schema": ExperimentConfig.model_json_schema(),
        "sweep_presets": {name: {"description": SWEEP_PRESET_DESCRIPTIONS.get(name, ""), "spec": spec}
                          for name, spec in SWEEP_PRESETS.items()},
        "metrics": metric_catalog(),
        "costs": cost_catalog(settings.energy_table),
        "limits": {"max_epochs": settings.max_epochs, "max_sweep_runs": settings.max_sweep_runs,
                   "max_queued_runs_per_team": settings.max_queued_runs},
    }
