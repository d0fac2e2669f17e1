"""Operation-type cost model (docs/METHOD.md §6, docs/DESIGN.md "Cost model"): which operations a network
executes per sample, layer by layer, as this run measured them and as full-precision, BWN, TWN and BNN
networks of the same shape would, with an energy estimate from one per-operation energy table.

Everything is counted per sample, from a layer record (``gxnor_core.probes``: dense MACs, gate events, weight
states, activation levels, sparsities — means over the probe batch) and the network's shape
(``shapes``: values of each layer's input, padded taps).  The rules, the same in every scheme:

- a MAC is *executed* unless an operand is a known zero that the scheme gates: zero weights where the
  scheme has them (TWN, and this run's discrete weights: static, known after training), zero inputs where
  the input is discrete (a gated XNOR; dynamic).  Real-valued inputs (the data, ReLU outputs) are never gated:
  those layers run dense.  A MAC that is not executed is *resting*;
- an executed MAC is a gated XNOR and an integer accumulation when both operands are discrete (a low-bit
  integer product for more than three levels, counted the same), a float add/subtract when one operand is
  binary or ternary (±c or 0) and the other real, else a float multiply and a float add;
- padded taps of a convolution are zeros of the input: counted in the dense MACs; they rest where inputs
  are gated and are executed where they are not (``padded_macs`` says how many there are);
- bytes moved: every weight and every input value of a layer read once per sample at the scheme's width
  (32-bit floats; ⌈log2 levels⌉ bits for discrete values), no reuse or caching modelled; BatchNorm,
  pooling and the activations themselves are not counted in any scheme.

Counts of this run come from the probe's exact counts (``events``: MACs with both operands non-zero); the other
schemes follow from their definitions and this network's MACs (TWN also from this run's zero weights).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .models import _plan

FLOAT_BITS = 32
# What each count is (all per sample; a layer's, or summed over the layers).
COUNTS: dict[str, str] = {
    "macs": "Dense multiply-accumulates: every tap, padded ones included (the same in every scheme).",
    "executed": "MACs executed: not skipped on a gated zero operand.",
    "resting": "MACs not executed because an operand is a zero the scheme gates (a gate that stays closed): "
               "macs − executed.",
    "xnor": "Gated XNORs that open (both operands discrete and non-zero; a low-bit integer product for more "
            "than three levels) — in BNN, every MAC of a layer with binary input.",
    "int_add": "Integer accumulations of XNOR results (popcount steps): one per XNOR.",
    "float_mult": "32-bit float multiplies.",
    "float_add": "32-bit float adds/subtracts (accumulations of float products, or of a real input whose weight is "
                 "±c).",
    "weight_bytes": "Bytes of weights read: every weight once, at the scheme's width.",
    "activation_bytes": "Bytes of layer inputs read: every input value once (padding not stored), at the scheme's "
                        "width (null without the network's shape).",
    "compute_pj": "Energy of the operations, in picojoules (the energy table).",
    "memory_pj": "Energy of the bytes read, in picojoules (the energy table's 64-bit memory read / 8 per byte).",
    "energy_pj": "compute_pj + memory_pj.",
}


class EnergyTable(BaseModel):
    """Energy per operation in picojoules.  Default: M. Horowitz, "Computing's energy problem (and what we can do
    about it)", ISSCC 2014 — 45 nm, 0.9 V.  A server sets its own with GXNOR_ENERGY_TABLE (JSON)."""

    model_config = ConfigDict(extra="forbid")
    source: str = Field('M. Horowitz, "Computing\'s energy problem (and what we can do about it)", ISSCC 2014',
                        max_length=300)
    node: str = Field("45 nm, 0.9 V", max_length=100)
    fp32_mult_pj: float = Field(3.7, ge=0, description="32-bit float multiply.")
    fp32_add_pj: float = Field(0.9, ge=0, description="32-bit float add (or subtract).")
    int8_add_pj: float = Field(0.03, ge=0, description="8-bit integer add: one accumulation of a gated XNOR's "
                               "±1 (a popcount step).")
    xnor_pj: float = Field(0.0, ge=0, description="The XNOR gate itself; not in Horowitz's table, counted as "
                           "free next to its accumulation.")
    memory_read_64bit_pj: float = Field(10.0, ge=0, description="Reading 64 bits from an 8 KB on-chip SRAM "
                                        "(cache); every byte moved costs an eighth of it.")


@dataclass(frozen=True)
class Scheme:
    name: str
    label: str
    assumption: str


SCHEMES: tuple[Scheme, ...] = (
    Scheme("run", "This run (measured)",
           "This network as trained, from the probe's exact counts at the epoch: on XNOR layers (discrete weights "
           "and discrete input) a MAC with both operands non-zero is a gated XNOR plus an integer accumulation and "
           "every other MAC rests (padded taps included); layers with real-valued input run dense, skipping only "
           "zero weights (float add/subtract for binary or ternary weights, float multiply-add otherwise); "
           "weights ⌈log2 states⌉ bits, discrete activations ⌈log2 levels⌉ bits, real values 32 bits."),
    Scheme("full_precision", "Full precision",
           "32-bit float weights and activations, dense: every MAC is a float multiply and a float add; no zero "
           "is skipped."),
    Scheme("bwn", "BWN",
           "Binary weights ±1 (1 bit), dense 32-bit float activations, no zeros: every MAC is a float "
           "add/subtract."),
    Scheme("twn", "TWN",
           "Ternary weights with this run's zero weights (each layer's weight sparsity; 2 bits), dense 32-bit "
           "float activations: a MAC with a non-zero weight is a float add/subtract, one with a zero weight rests.  "
           "For a run with full-precision weights (no zeros) it is the BWN count."),
    Scheme("bnn", "BNN",
           "Binary weights and activations ±1 (1 bit), no zeros: every MAC is an XNOR and a popcount step "
           "(integer accumulation); the first layer sees the real-valued data (32 bits) and adds/subtracts "
           "floats."),
)


@dataclass(frozen=True)
class Shape:
    """A weight layer's geometry per sample: ``input_values`` (its input's values, padding not counted),
    ``macs`` (dense: every tap, padded ones included) and ``padded_macs`` (the taps on padding)."""

    input_values: int
    macs: int
    padded_macs: int


def _taps_on_input(n_in: int, n_out: int, kernel: int, padding: int) -> int:
    """Σ over the output positions of one axis of the kernel taps that land on the input (stride 1)."""
    return sum(min(o - padding + kernel, n_in) - max(o - padding, 0) for o in range(n_out))


def shapes(config: Any, input_shape: tuple[int, int, int] | None = None) -> dict[str, Shape]:
    """The geometry of every weight layer of config's network (an ExperimentConfig), by layer name, without
    building it (``gxnor_core.models``' plan; convolutions have stride 1)."""
    from .data import DATASETS

    c, h, w = input_shape or DATASETS[config.dataset.name].input_shape
    out: dict[str, Shape] = {}
    for name, kind, fan_in, n_out, kernel, padding, pool, macs in _plan(config, (c, h, w)):
        if kind == "conv":
            h_out, w_out = h + 2 * padding - kernel + 1, w + 2 * padding - kernel + 1
            on_input = n_out * fan_in * _taps_on_input(h, h_out, kernel, padding) * _taps_on_input(
                w, w_out, kernel, padding)
            out[name] = Shape(fan_in * h * w, macs, macs - on_input)
            h, w = (h_out // 2, w_out // 2) if pool else (h_out, w_out)
        else:
            out[name] = Shape(fan_in, macs, 0)
    return out


def _bits(levels: int | None) -> int:
    """Storage bits of a value with ``levels`` possible values (None: a 32-bit float)."""
    return FLOAT_BITS if levels is None else max(1, math.ceil(math.log2(levels)))


def _op(w_levels: int | None, x_levels: int | None) -> str:
    """What one executed MAC is: "xnor" (both discrete), "add" (one binary/ternary, the other real), "mac"."""
    if w_levels is not None and x_levels is not None:
        return "xnor"
    if (w_levels is not None and w_levels <= 3) or (x_levels is not None and x_levels <= 3):
        return "add"
    return "mac"


def _count(macs: float, executed: float, w_levels: int | None, x_levels: int | None, num_weights: int,
           input_values: int | None, table: EnergyTable) -> dict[str, float | None]:
    op = _op(w_levels, x_levels)
    c: dict[str, float | None] = {"macs": macs, "executed": executed, "resting": macs - executed,
                                  "xnor": executed if op == "xnor" else 0.0,
                                  "int_add": executed if op == "xnor" else 0.0,
                                  "float_mult": executed if op == "mac" else 0.0,
                                  "float_add": executed if op in ("add", "mac") else 0.0,
                                  "weight_bytes": num_weights * _bits(w_levels) / 8,
                                  "activation_bytes": None if input_values is None
                                  else input_values * _bits(x_levels) / 8}
    c["compute_pj"] = (c["xnor"] * table.xnor_pj + c["int_add"] * table.int8_add_pj
                       + c["float_mult"] * table.fp32_mult_pj + c["float_add"] * table.fp32_add_pj)
    c["memory_pj"] = None if c["activation_bytes"] is None else (
        (c["weight_bytes"] + c["activation_bytes"]) * table.memory_read_64bit_pj / 8)
    c["energy_pj"] = None if c["memory_pj"] is None else c["compute_pj"] + c["memory_pj"]
    return c


def layer_type(record: Mapping[str, Any]) -> str:
    """"xnor" (discrete weights and discrete input), "real_input" (the data or a full-precision activation) or
    "float_weights" (discrete input, full-precision weights)."""
    if record["input_is_real"]:
        return "real_input"
    return "xnor" if record.get("weight_states") is not None else "float_weights"


def _levels(record: Mapping[str, Any]) -> tuple[int | None, int | None]:
    w = record.get("weight_states")
    x = None if record["input_is_real"] else record.get("activation_levels")
    return (len(w) if w is not None else None), (len(x) if x is not None else None)


def _scheme_layer(scheme: str, index: int, record: Mapping[str, Any], shape: Shape | None,
                  table: EnergyTable) -> dict[str, float | None]:
    macs = record["macs"]
    inputs = None if shape is None else shape.input_values
    n = record["num_weights"]
    ws = record.get("weight_sparsity") or 0.0
    if scheme == "full_precision":
        return _count(macs, macs, None, None, n, inputs, table)
    if scheme == "bwn":
        return _count(macs, macs, 2, None, n, inputs, table)
    if scheme == "twn":
        return _count(macs, macs * (1.0 - ws), 3, None, n, inputs, table)
    if scheme == "bnn":
        return _count(macs, macs, 2, None if index == 0 else 2, n, inputs, table)
    w_levels, x_levels = _levels(record)
    if x_levels is not None:  # discrete input: gated; executed = MACs with both operands non-zero (measured)
        executed = record["events"]
    elif w_levels is not None:  # real input, discrete weights: zero weights skipped, inputs dense
        executed = macs * (1.0 - ws)
    else:
        executed = macs
    return _count(macs, executed, w_levels, x_levels, n, inputs, table)


def _total(rows: Sequence[Mapping[str, float | None]]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for key in COUNTS:
        values = [r[key] for r in rows]
        out[key] = None if any(v is None for v in values) else float(sum(values))
    out["resting_fraction"] = out["resting"] / out["macs"] if out["macs"] else None
    return out


def run_costs(records: Sequence[Mapping[str, Any]], layer_shapes: Mapping[str, Shape] | None = None,
              table: EnergyTable | None = None) -> dict[str, Any]:
    """Per layer and in total, for every scheme of ``SCHEMES``: the operation counts and energy of the network
    whose layer records (one epoch, in network order) are ``records``; ``layer_shapes`` (``shapes(config)``)
    gives the bytes of activations moved and the padded taps (without it those, and the energy, are None).
    ``energy_vs_full_precision`` is each scheme's energy / the full-precision one's."""
    table = table or EnergyTable()
    layer_shapes = layer_shapes or {}
    layers = []
    for r in records:
        shape = layer_shapes.get(r["layer"])
        w_levels, x_levels = _levels(r)
        layers.append({
            "layer": r["layer"], "kind": r.get("kind"), "type": layer_type(r), "macs": r["macs"],
            "padded_macs": None if shape is None else shape.padded_macs,
            "input_values": None if shape is None else shape.input_values,
            "num_weights": r["num_weights"], "weight_levels": w_levels, "input_levels": x_levels,
            "weight_bits": _bits(w_levels), "input_bits": _bits(x_levels),
            "weight_sparsity": r.get("weight_sparsity"), "activation_sparsity": r.get("activation_sparsity"),
            "events": r["events"],
        })
    schemes = []
    for s in SCHEMES:
        rows = [_scheme_layer(s.name, i, r, layer_shapes.get(r["layer"]), table) for i, r in enumerate(records)]
        schemes.append({"name": s.name, "label": s.label, "assumption": s.assumption, "total": _total(rows),
                        "layers": [{"layer": r["layer"], **row} for r, row in zip(records, rows, strict=True)]})
    fp = next(s for s in schemes if s["name"] == "full_precision")["total"]["energy_pj"]
    for s in schemes:
        e = s["total"]["energy_pj"]
        s["total"]["energy_vs_full_precision"] = e / fp if e is not None and fp else None
    return {"layers": layers, "schemes": schemes, "energy_table": table.model_dump()}
