"""The metric catalog: every figure a run reports, declared once (docs/METRICS.md lists it).

Three kinds, each a tuple of ``Metric`` in the order they are shown:

- ``EPOCH_METRICS``: network-level figures of one epoch (``train()`` reports them to
  ``Reporter.epoch``; the API serves them per epoch, the UI draws them as curves and compares
  them across runs).  The ones with ``over_layers`` are computed here, from the epoch's layer
  records (``network_metrics``), so a new aggregate needs no code elsewhere.
- ``RUN_METRICS``: one value per run — the run's *summary*.  ``summarize`` builds it after every
  epoch from that epoch's metrics and the trainer's model selection; ``train()`` returns it, the
  worker stores it, the API's ``Summary`` schema, the list's sort keys, the CSV exports, the sweep
  aggregates (mean and sample sd over seeds) and ``bench.studies`` all derive from this tuple.
- ``LAYER_METRICS``: fields of a layer record (``gxnor_core.probes.probe`` plus the trainer's
  transition counts).

Adding a run-level figure is then: its entry here (in ``EPOCH_METRICS`` with ``over_layers``
when it aggregates layer records, else computed where ``train()`` builds the epoch's metrics, and
a ``last(...)`` line in ``RUN_METRICS``), and a test.  ``VIEWS`` says where the dashboard shows a
metric by default; everything else (labels, units, better-direction) the UI reads from
``GET /api/v1/catalog``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

Better = Literal["lower", "higher"] | None

# unit → how it is shown (``format``) and its JSON type.
UNITS: dict[str, dict[str, Any]] = {
    "fraction": {"format": "percent", "integer": False, "text": "a fraction in [0, 1], shown as a percentage"},
    "loss": {"format": "number", "integer": False, "text": "the training loss's own scale"},
    "learning_rate": {"format": "number", "integer": False, "text": "a step size"},
    "epoch": {"format": "integer", "integer": True, "text": "an epoch number, 1-based"},
    "count": {"format": "compact", "integer": False, "text": "a count (a mean per sample where it says so)"},
    "seconds": {"format": "duration", "integer": False, "text": "seconds of wall time"},
    "per_second": {"format": "number", "integer": False, "text": "a rate per second of wall time"},
    "bytes": {"format": "bytes", "integer": False, "text": "bytes"},
}


@dataclass(frozen=True)
class LayerSet:
    """A subset of a network's weight layers, told from a layer record."""

    name: str
    text: str
    test: Callable[[Mapping[str, Any]], bool]


LAYER_SETS: dict[str, LayerSet] = {s.name: s for s in (
    LayerSet("all", "every weight layer", lambda r: True),
    LayerSet("discrete_weights", "layers with discrete weights", lambda r: r["weight_states"] is not None),
    LayerSet("discrete_input", "layers whose input is a discrete activation (not the data, not a full-precision "
             "activation)", lambda r: not r["input_is_real"]),
    LayerSet("xnor", "XNOR layers: discrete weights and discrete input",
             lambda r: r["weight_states"] is not None and not r["input_is_real"]),
)}


@dataclass(frozen=True)
class OverLayers:
    """A network-level value from one epoch's layer records: Σ numerator / Σ denominator over the layers of
    ``layers`` (a ``LAYER_SETS`` name), or Σ numerator alone when ``denominator`` is None.  The numerator is a
    layer field or the product of two (a per-layer fraction times its weight); a missing (None) field counts 0.
    ``empty`` is the value when the set has no layer, or its denominator sums to 0.  With ``requires`` (a
    ``LAYER_SETS`` name) the value is None for a network that has no layer of that set."""

    numerator: str | tuple[str, str]
    denominator: str | None
    layers: str = "all"
    empty: float | None = None
    requires: str | None = None

    def __call__(self, records: Iterable[Mapping[str, Any]]) -> float | None:
        records = list(records)
        if self.requires is not None and not any(LAYER_SETS[self.requires].test(r) for r in records):
            return None
        keep = [r for r in records if LAYER_SETS[self.layers].test(r)]
        den = 1 if self.denominator is None else sum(r.get(self.denominator) or 0 for r in keep)
        if not keep or not den:
            return self.empty
        if isinstance(self.numerator, str):
            num = sum(r.get(self.numerator) or 0 for r in keep)
        else:
            a, b = self.numerator
            num = sum((r.get(a) or 0) * (r.get(b) or 0) for r in keep)
        return num / den if self.denominator is not None else float(num)

    def fields(self) -> list[str]:
        """The layer fields it reads."""
        num = [self.numerator] if isinstance(self.numerator, str) else list(self.numerator)
        return num + ([self.denominator] if self.denominator else [])

    def text(self) -> str:
        num = self.numerator if isinstance(self.numerator, str) else f"{self.numerator[0]} × {self.numerator[1]}"
        out = (f"Σ {num} over {LAYER_SETS[self.layers].text}" if self.denominator is None
               else f"Σ {num} / Σ {self.denominator} over {LAYER_SETS[self.layers].text}")
        if self.requires is not None:
            out += f"; null for a network with no layer of the set `{self.requires}` ({LAYER_SETS[self.requires].text})"
        return out


@dataclass(frozen=True)
class Metric:
    """One figure.  ``description`` says what it is and what it is a fraction *of* (its denominator)."""

    name: str
    label: str  # what it is, in words a reader takes at face value ("…, whole network")
    short: str  # a table column's header
    unit: str  # a UNITS key
    better: Better
    description: str
    digits: int = 4  # significant digits (number) or decimals of the percentage (percent)
    # EPOCH_METRICS: computed from the epoch's layer records (None: train() computes it)
    over_layers: OverLayers | None = None
    # RUN_METRICS: taken from the trainer's model selection under this key, else the last epoch's value of the
    # EPOCH_METRICS entry of the same name
    from_selection: str | None = None
    over_seeds: tuple[str, ...] = ("mean", "std")  # RUN_METRICS: statistics a sweep reports per config (sample std)
    sortable: bool = True  # RUN_METRICS: a sort key of GET /api/v1/runs
    filterable: bool = True  # RUN_METRICS: a number a list may be narrowed by (dashboard filters)

    @property
    def format(self) -> str:
        return UNITS[self.unit]["format"]

    @property
    def integer(self) -> bool:
        return UNITS[self.unit]["integer"]

    def to_dict(self) -> dict[str, Any]:
        """As ``GET /api/v1/catalog`` serves it."""
        out = asdict(self)
        out["format"] = self.format
        out["over_layers"] = None if self.over_layers is None else {
            "numerator": self.over_layers.numerator, "denominator": self.over_layers.denominator,
            "layers": self.over_layers.layers, "requires": self.over_layers.requires,
            "text": self.over_layers.text()}
        out["over_seeds"] = list(self.over_seeds)
        return out


_PROBE = "on the probe batch (the first 500 validation images, or test images without a validation split; eval mode)"
_EVENT = ("a gate event is a multiply-accumulate whose weight and input are both non-zero (a gated XNOR that "
          "opens); padded taps of a convolution are zeros of the input: they count in the dense MACs, so as "
          "resting MACs, never as events")
_XNOR = ("the XNOR layers (weight layers with discrete weights and discrete input: not the first layer, which sees "
         "the data)")
_NO_XNOR = ("Null for a network without an XNOR layer (full-precision weights or activations): it has no gates, "
            "and its non-zero multiplies are not gate events (GET /runs/{id}/costs counts them).")

EPOCH_METRICS: tuple[Metric, ...] = (
    Metric("val_error", "Validation error", "Val err", "fraction", "lower",
           "Misclassified validation samples / validation samples, after the epoch, in eval mode (null when the "
           "dataset has no validation split).", digits=2),
    Metric("test_error", "Test error", "Test err", "fraction", "lower",
           "Misclassified test samples / test samples, after the epoch, in eval mode.", digits=2),
    Metric("train_error", "Training error", "Train err", "fraction", "lower",
           "Misclassified training samples / training samples seen in the epoch, counted in training mode while "
           "the weights moved (the last partial batch is dropped).", digits=2),
    Metric("train_loss", "Training loss", "Train loss", "loss", "lower",
           "Loss summed over the epoch's training batches / training samples seen (train.loss: squared hinge or "
           "cross-entropy)."),
    Metric("val_loss", "Validation loss", "Val loss", "loss", "lower",
           "Loss over the validation split / validation samples, after the epoch, in eval mode."),
    Metric("test_loss", "Test loss", "Test loss", "loss", "lower",
           "Loss over the test split / test samples, after the epoch, in eval mode."),
    Metric("xnor_gate_event_rate", "Gate-event rate (XNOR layers)", "XNOR gate events", "fraction", "lower",
           f"Gate events / dense MACs, both summed over {_XNOR}, per sample {_PROBE}; {_EVENT}.  1 − this is "
           f"the resting probability of the gated XNORs.  {_NO_XNOR}", digits=1,
           over_layers=OverLayers("events", "macs", "xnor")),
    Metric("xnor_activation_sparsity", "Activation sparsity (XNOR layers)", "XNOR act. sparsity", "fraction",
           "higher", f"Each XNOR layer's input sparsity (zero input values / input values {_PROBE}; padding not "
           f"counted), averaged over {_XNOR} weighted by their dense MACs.  {_NO_XNOR}", digits=1,
           over_layers=OverLayers(("activation_sparsity", "macs"), "macs", "xnor")),
    Metric("xnor_events_per_sample", "Gate events per sample (XNOR layers)", "XNOR events", "count", "lower",
           f"Gate events summed over {_XNOR}, mean per sample {_PROBE}; {_EVENT}.  {_NO_XNOR}",
           over_layers=OverLayers("events", None, "xnor")),
    Metric("gate_event_rate", "Gate-event rate (whole network)", "Gate events (whole net)", "fraction", "lower",
           f"Gate events / dense MACs, both summed over every weight layer, per sample {_PROBE}; {_EVENT}.  The "
           "first layer sees the data (real-valued pixels): its non-zero multiplies count as events and, weighted "
           "by its MACs, can dominate — xnor_gate_event_rate leaves it out.  " + _NO_XNOR, digits=1,
           over_layers=OverLayers("events", "macs", "all", empty=0.0, requires="xnor")),
    Metric("activation_sparsity", "Activation sparsity (whole network)", "Act. sparsity (whole net)", "fraction",
           "higher",
           f"Each weight layer's input sparsity (zero input values / input values {_PROBE}; padding not counted), "
           "averaged over every weight layer weighted by its dense MACs.  The first layer sees the data, so it is "
           "rarely sparse and, weighted by MACs, can dominate.", digits=1,
           over_layers=OverLayers(("activation_sparsity", "macs"), "macs", "all", empty=0.0)),
    Metric("weight_sparsity", "Weight sparsity (whole network)", "W. sparsity", "fraction", "higher",
           "Zero weights / weights, over every weight layer (full-precision layers count their exact zeros).",
           digits=1, over_layers=OverLayers(("weight_sparsity", "num_weights"), "num_weights", "all", empty=0.0)),
    Metric("transition_rate", "Transition rate (discrete weights)", "Transitions", "fraction", None,
           "Weights whose state at the end of the epoch differs from its start / weights, over the layers with "
           "discrete weights (0 when there are none).", digits=2,
           over_layers=OverLayers("transitions", "num_weights", "discrete_weights", empty=0.0)),
    Metric("lr", "Learning rate", "LR", "learning_rate", None,
           "The epoch's learning rate (exponential decay from train.lr to train.lr_final)."),
    Metric("epoch_seconds", "Epoch time", "Epoch s", "seconds", "lower",
           "Wall time of the epoch: training, evaluation of the validation and test splits, and the probe."),
    Metric("samples_per_second", "Training throughput", "Samples/s", "per_second", "higher",
           "Training samples seen / seconds of the epoch's training loop (evaluation and probe excluded)."),
    Metric("persistent_bytes_per_weight", "Persistent training memory per weight", "Bytes/weight", "bytes",
           "lower", "Bytes kept from one training step to the next for the weights of every weight layer / those "
           "weights (docs/METHOD.md §7): the integer state (1 byte) of a DST weight, the 4-byte float shadow of a "
           "latent-weight one, the 4-byte float of a full-precision one, plus the optimizer's per-weight state "
           "(Adam 8 bytes, momentum 4, sgd and layer_rms none; under DST the base rule's state for its "
           "proposals).  BatchNorm parameters and scalar step counters are not counted.", digits=3),
)
_EPOCH = {m.name: m for m in EPOCH_METRICS}


def last(name: str, **changes: Any) -> Metric:
    """The run metric that is the last epoch's value of the epoch metric ``name``."""
    m = _EPOCH[name]
    text = m.description[0].lower() + m.description[1:]
    return replace(m, over_layers=None, description=f"At the last recorded epoch, {text}", **changes)


RUN_METRICS: tuple[Metric, ...] = (
    Metric("best_val_error", "Best validation error", "Best val err", "fraction", "lower",
           "The lowest validation error of any epoch (misclassified validation samples / validation samples); "
           "the test error when the dataset has no validation split.", digits=2, from_selection="best_val_error"),
    Metric("test_error", "Test error at the best epoch", "Test err", "fraction", "lower",
           "Misclassified test samples / test samples at the epoch of the lowest validation error (model "
           "selection is on validation data).", digits=2, from_selection="test_error_at_best"),
    last("activation_sparsity"),
    last("gate_event_rate"),
    last("weight_sparsity"),
    last("transition_rate"),
    last("train_loss"),
    Metric("best_test_error", "Best test error (reference only)", "Best test err", "fraction", "lower",
           "The lowest test error of any epoch (misclassified test samples / test samples): selecting on test "
           "data is optimistic, so it is shown for reference only.", digits=2, from_selection="best_test_error"),
    Metric("best_epoch", "Epoch of the best validation error", "Best epoch", "epoch", None,
           "The epoch (1-based) with the lowest validation error, whose test error is the run's test error.",
           from_selection="best_epoch"),
    # after the older figures, so that CSV columns keep their places (the views put these first)
    last("xnor_gate_event_rate"),
    last("xnor_activation_sparsity"),
    last("xnor_events_per_sample"),
    last("persistent_bytes_per_weight"),
)

LAYER_METRICS: tuple[Metric, ...] = (
    Metric("gate_event_rate", "Gate-event rate", "Gate events", "fraction", "lower",
           f"The layer's gate events / its dense MACs, per sample {_PROBE}; {_EVENT}.  On a layer that is not an "
           "XNOR layer (real-valued input, or full-precision weights) the same count is of non-zero multiplies, "
           "not of gates.", digits=1),
    Metric("activation_sparsity", "Input activation sparsity", "Input zeros", "fraction", "higher",
           f"Zero values of the layer's input / its input values (padding not counted), {_PROBE}.", digits=1),
    Metric("weight_sparsity", "Weight sparsity", "Zero weights", "fraction", "higher",
           "The layer's zero weights / its weights.", digits=1),
    Metric("events", "Gate events per sample", "Events", "count", "lower",
           f"Gate events of the layer, mean per sample {_PROBE}; {_EVENT}.  On a layer that is not an XNOR layer, "
           "non-zero multiplies (multiply-accumulates whose weight and input are both non-zero)."),
    Metric("macs", "Dense MACs per sample", "MACs", "count", None,
           "Multiply-accumulates of the layer per sample, all taps counted (conv: C_out·H_out·W_out·C_in·k², "
           "padded taps included; fc: in·out)."),
    Metric("num_weights", "Weights", "Weights", "count", None, "Weights of the layer."),
    Metric("transitions", "Weights that changed state", "Changed", "count", None,
           "Weights whose state at the end of the epoch differs from its start (null for full-precision "
           "weights)."),
    Metric("moves", "DST moves", "Moves", "count", None,
           "State moves DST made during the epoch; a weight can move several times (null for full-precision "
           "weights)."),
)

# Where the dashboard shows which metric by default, in order (everything is in the API, CSVs and /catalog).
# The XNOR-layer figures are the headline; the whole-network ones are shown beside them (docs/METRICS.md).
VIEWS: dict[str, tuple[str, ...]] = {
    "list": ("best_val_error", "test_error", "xnor_gate_event_rate", "gate_event_rate"),  # runs table columns
    "card": ("best_val_error", "test_error", "best_test_error", "xnor_gate_event_rate", "xnor_activation_sparsity",
             "xnor_events_per_sample", "gate_event_rate", "activation_sparsity",
             "weight_sparsity", "persistent_bytes_per_weight"),  # run page cards (run metrics)
    "compare": ("best_val_error", "test_error", "xnor_gate_event_rate", "xnor_activation_sparsity",
                "gate_event_rate", "activation_sparsity", "persistent_bytes_per_weight"),  # compare table
    "compare_layers": ("gate_event_rate", "activation_sparsity", "weight_sparsity"),  # /compare's layer figures
    "sweep": ("best_val_error", "test_error", "xnor_activation_sparsity", "xnor_gate_event_rate",
              "activation_sparsity", "gate_event_rate"),  # sweep results, plots
    "sweep_runs": ("best_val_error", "test_error", "xnor_gate_event_rate", "gate_event_rate"),  # a sweep's runs
    "network_curves": ("xnor_gate_event_rate", "xnor_activation_sparsity", "gate_event_rate", "activation_sparsity",
                       "weight_sparsity", "transition_rate"),  # epochs
    "studies": ("best_val_error", "test_error", "xnor_activation_sparsity", "xnor_gate_event_rate",
                "activation_sparsity", "gate_event_rate"),  # docs/STUDIES.md
}
# The accuracy / hardware-cost trade-off (sweep Pareto front, compare and sweep scatter plots): run metrics,
# both minimised.  A run without XNOR layers (the full-precision baseline) has no x: it is never on the front.
PARETO = {"x": "xnor_gate_event_rate", "y": "test_error"}


def run_metric(name: str) -> Metric:
    for m in RUN_METRICS:
        if m.name == name:
            return m
    raise KeyError(name)


def run_metric_names() -> tuple[str, ...]:
    return tuple(m.name for m in RUN_METRICS)


def sortable() -> tuple[str, ...]:
    """The run metrics the run list sorts by."""
    return tuple(m.name for m in RUN_METRICS if m.sortable)


def seed_metrics() -> tuple[str, ...]:
    """The run metrics a sweep aggregates over seeds."""
    return tuple(m.name for m in RUN_METRICS if m.over_seeds)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def network_metrics(records: Iterable[Mapping[str, Any]]) -> dict[str, float | None]:
    """The epoch metrics that aggregate layer records (``over_layers``), from one epoch's records."""
    recs = list(records)
    return {m.name: m.over_layers(recs) for m in EPOCH_METRICS if m.over_layers is not None}


def summarize(metrics: Mapping[str, Any] | None, selection: Mapping[str, Any]) -> dict[str, Any]:
    """The run summary after an epoch: every run metric, from the trainer's model selection (``best_epoch``,
    ``best_val_error``, ``test_error_at_best``, ``best_test_error``) or the epoch's ``metrics``; a value that
    is missing, NaN or infinite is None."""
    metrics = metrics or {}
    return {m.name: _finite(selection.get(m.from_selection) if m.from_selection else metrics.get(m.name))
            for m in RUN_METRICS}


def empty_summary() -> dict[str, None]:
    """The summary of a run with no epoch yet."""
    return dict.fromkeys(run_metric_names())


def catalog() -> dict[str, Any]:
    """The whole catalog as JSON (``GET /api/v1/catalog`` → ``metrics``)."""
    return {
        "run": [m.to_dict() for m in RUN_METRICS],
        "epoch": [m.to_dict() for m in EPOCH_METRICS],
        "layer": [m.to_dict() for m in LAYER_METRICS],
        "layer_sets": {s.name: s.text for s in LAYER_SETS.values()},
        "units": {k: {"format": v["format"], "text": v["text"]} for k, v in UNITS.items()},
        "views": {k: list(v) for k, v in VIEWS.items()},
        "pareto": dict(PARETO),
    }


def check() -> None:
    """The catalog is consistent: unique names, known units and layer sets, ``last`` metrics exist per epoch,
    views and the Pareto axes name metrics of the right kind (raises AssertionError)."""
    for group in (EPOCH_METRICS, RUN_METRICS, LAYER_METRICS):
        names = [m.name for m in group]
        assert len(names) == len(set(names)), f"duplicate metric names: {names}"
        for m in group:
            assert m.unit in UNITS, f"{m.name}: unknown unit {m.unit!r}"
            assert m.over_layers is None or m.over_layers.layers in LAYER_SETS, m.name
    epoch = {m.name for m in EPOCH_METRICS}
    run = {m.name for m in RUN_METRICS}
    layer = {m.name for m in LAYER_METRICS}
    for m in RUN_METRICS:
        assert m.from_selection or m.name in epoch, f"{m.name}: neither from_selection nor an epoch metric"
    for m in EPOCH_METRICS:
        if m.over_layers is not None:
            fields = m.over_layers.fields()
            assert set(fields) <= layer, f"{m.name}: layer fields {fields} not all in LAYER_METRICS"
            assert m.over_layers.requires is None or m.over_layers.requires in LAYER_SETS, m.name
    kinds = {"compare_layers": layer, "network_curves": epoch}
    for view, names in VIEWS.items():
        assert set(names) <= kinds.get(view, run), f"view {view}: unknown metrics {set(names) - kinds.get(view, run)}"
    assert set(PARETO.values()) <= run


# ---------------------------------------------------------------- the reference (docs/METRICS.md)

DOC_BEGIN = "<!-- metric reference: generated from gxnor_core/metrics.py by scripts/metrics-reference -->"
DOC_END = "<!-- end of the generated reference -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _better(m: Metric) -> str:
    return {"lower": "lower", "higher": "higher", None: "—"}[m.better]


def markdown() -> str:
    """The metric reference, as docs/METRICS.md holds it between DOC_BEGIN and DOC_END."""
    out = [DOC_BEGIN, "", "### Run metrics (one value per run: the summary)", "",
           "| name | label | unit | better | from | what it is (and its denominator) |", "|---|---|---|---|---|---|"]
    for m in RUN_METRICS:
        src = f"model selection (`{m.from_selection}`)" if m.from_selection else "the last epoch"
        out.append(f"| `{m.name}` | {_cell(m.label)} | {m.unit} | {_better(m)} | {src} | {_cell(m.description)} |")
    out += ["", "Every run metric is sortable in `GET /api/v1/runs` (`sort=`), a column of the runs table and its CSV "
            "(the column chooser), in `Summary` and, as "
            "mean and sample std over seeds, in a sweep's results (`results[].metrics`) and results CSV.", "",
            "### Epoch metrics (network level, one value per epoch)", "",
            "| name | label | unit | better | over layers | what it is (and its denominator) |",
            "|---|---|---|---|---|---|"]
    for m in EPOCH_METRICS:
        over = _cell(m.over_layers.text()) if m.over_layers else "— (computed by `train()`)"
        out.append(f"| `{m.name}` | {_cell(m.label)} | {m.unit} | {_better(m)} | {over} | {_cell(m.description)} |")
    out += ["", "### Layer metrics (one value per layer and epoch: a layer record's fields)", "",
            "| name | label | unit | better | what it is (and its denominator) |", "|---|---|---|---|---|"]
    for m in LAYER_METRICS:
        out.append(f"| `{m.name}` | {_cell(m.label)} | {m.unit} | {_better(m)} | {_cell(m.description)} |")
    out += ["", "### Layer sets", "", "| name | layers |", "|---|---|"]
    out += [f"| `{s.name}` | {_cell(s.text)} |" for s in LAYER_SETS.values()]
    out += ["", "### Units", "", "| unit | shown as | |", "|---|---|---|"]
    out += [f"| `{k}` | {v['format']} | {v['text']} |" for k, v in UNITS.items()]
    out += ["", "### Where the dashboard shows them", "", "| view | metrics, in order |", "|---|---|"]
    out += [f"| `{k}` | {', '.join(f'`{n}`' for n in v)} |" for k, v in VIEWS.items()]
    out += ["", f"Trade-off plots and the sweep's Pareto front: `{PARETO['y']}` against `{PARETO['x']}`, both "
            "minimised.", "", DOC_END]
    return "\n".join(out) + "\n"


def write_reference(path: str) -> None:
    """Replace the generated part of ``path`` (between DOC_BEGIN and DOC_END, inclusive) by ``markdown()``."""
    from pathlib import Path

    p = Path(path)
    text = p.read_text()
    start, end = text.index(DOC_BEGIN), text.index(DOC_END) + len(DOC_END) + 1
    p.write_text(text[:start] + markdown() + text[end:])
