"""Probes (docs/METHOD.md §4): weight states, activation levels, sparsity and exact gate events per layer.

A probe runs the network in eval mode under no_grad on a fixed batch, so it
consumes no random numbers and leaves BatchNorm statistics untouched.

Gate events (docs/METHOD.md §4): a multiply-accumulate whose weight and input are both
non-zero opens the gate of a gated XNOR.  Counted exactly:

    conv:  events = Σ conv2d(1[x≠0], 1[w≠0])   (same stride/padding; padding adds none)
    fc:    events = Σ 1[x≠0] · 1[W≠0]ᵀ
    gate-event rate = events / dense MACs
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from .layers import DiscreteConv2d, StepActivation, has_states, layer_weight
from .metrics import network_metrics
from .models import GXNORNet

PROBE_CHUNK = 128


def dense_macs(layer: nn.Module, in_shape: torch.Size, out_shape: torch.Size) -> int:
    """Dense MACs per sample: conv C_out·H_out·W_out·C_in·k², fc in·out."""
    if isinstance(layer, DiscreteConv2d | nn.Conv2d):
        k = layer.kernel_size if isinstance(layer.kernel_size, int) else layer.kernel_size[0]
        c_out, h_out, w_out = out_shape[1:]
        return int(c_out * h_out * w_out * in_shape[1] * k * k)
    return int(in_shape[-1] * out_shape[-1])


def gate_events(layer: nn.Module, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Gate events of each sample of x (float64 vector of length batch)."""
    gx = (x != 0).to(torch.float32)
    gw = (w != 0).to(torch.float32)
    if isinstance(layer, DiscreteConv2d | nn.Conv2d):
        stride = layer.stride if isinstance(layer.stride, int) else layer.stride[0]
        padding = layer.padding if isinstance(layer.padding, int) else layer.padding[0]
        per_out = F.conv2d(gx, gw, stride=stride, padding=padding)
    else:
        per_out = gx @ gw.t()
    return per_out.flatten(1).sum(1, dtype=torch.float64)


@torch.no_grad()
def probe(model: GXNORNet, x: torch.Tensor) -> OrderedDict[str, dict]:
    """Per-layer records on the probe batch x (weights, activations, gate events, MACs).

    The fields ``epoch``, ``transitions``, ``transition_matrix`` and ``moves`` are the
    trainer's to add.
    """
    was_training = model.training
    model.eval()
    layers = model.weight_layers()
    sources = model.input_activations()
    stats = {name: {"events": 0.0, "zeros": 0, "numel": 0, "levels": None, "macs": 0} for name in layers}
    captured: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    hooks = [
        layer.register_forward_hook(lambda mod, inp, out, name=name: captured.__setitem__(name, (inp[0], out)))
        for name, layer in layers.items()
    ]
    try:
        weights = {name: layer_weight(layer) for name, layer in layers.items()}
        for start in range(0, x.shape[0], PROBE_CHUNK):
            captured.clear()
            model(x[start:start + PROBE_CHUNK])
            for name, layer in layers.items():
                inp, out = captured[name]
                s = stats[name]
                s["events"] += float(gate_events(layer, inp, weights[name]).sum())
                s["zeros"] += int((inp == 0).sum())
                s["numel"] += inp.numel()
                s["macs"] = dense_macs(layer, inp.shape, out.shape)
                src = sources[name]
                if src is not None and src.act is not None:
                    counts = _level_counts(inp, src)
                    s["levels"] = counts if s["levels"] is None else [a + b for a, b in zip(s["levels"], counts)]
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)

    n = x.shape[0]
    records: OrderedDict[str, dict] = OrderedDict()
    for name, layer in layers.items():
        s = stats[name]
        discrete = has_states(layer)
        w = weights[name]
        records[name] = {
            "layer": name,
            "kind": "conv" if isinstance(layer, DiscreteConv2d | nn.Conv2d) else "fc",
            "input_is_real": sources[name] is None or sources[name].act is None,
            "num_weights": w.numel(),
            "weight_states": (torch.bincount(layer.state.view(-1).to(torch.int64),
                                             minlength=layer.space.num_states).tolist()
                              if discrete else None),
            "weight_sparsity": float((w == 0).sum()) / w.numel(),
            "activation_levels": s["levels"],
            "activation_sparsity": s["zeros"] / max(s["numel"], 1),
            "macs": s["macs"],
            "events": s["events"] / n,
            "gate_event_rate": (s["events"] / n) / s["macs"] if s["macs"] else 0.0,
        }
    return records


def _level_counts(x: torch.Tensor, act: StepActivation) -> list[int]:
    phi = act.act
    if phi.N == 0:
        return torch.bincount((x > 0).view(-1).to(torch.int64), minlength=2).tolist()
    k = torch.round(x / phi.delta).to(torch.int64).view(-1) + phi.K
    return torch.bincount(k, minlength=2 * phi.K + 1).tolist()


def aggregate(records: dict[str, dict]) -> dict[str, float | None]:
    """Network-level figures of one epoch's layer records: every epoch metric of the catalog that aggregates
    layers (gxnor_core.metrics, ``over_layers``) — weight sparsity weighted by weights; activation sparsity
    weighted by dense MACs (*ours*: the hardware-relevant weighting); gate-event rate = Σ events / Σ dense
    MACs; transition rate = Σ transitions / number of discrete weights."""
    return network_metrics(records.values())
