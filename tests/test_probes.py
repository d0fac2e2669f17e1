import itertools

import torch
import torch.nn.functional as F

from gxnor_core import DiscreteConv2d, DiscreteLinear, DiscreteSpace, build_model, validate_config
from gxnor_core.probes import gate_events, probe


def _ternary(shape, gen, p_zero=0.4):
    v = torch.randint(-1, 2, shape, generator=gen).float()
    keep = torch.rand(shape, generator=gen) > p_zero
    return v * keep


def _brute_force_conv_events(x, w, stride, padding):
    n, c_in, h, wd = x.shape
    c_out, _, k, _ = w.shape
    xp = F.pad(x, (padding,) * 4)  # padded zeros never open a gate
    h_out = (h + 2 * padding - k) // stride + 1
    w_out = (wd + 2 * padding - k) // stride + 1
    events = [0] * n
    for b, o, i, j in itertools.product(range(n), range(c_out), range(h_out), range(w_out)):
        for c, u, v in itertools.product(range(c_in), range(k), range(k)):
            xv = float(xp[b, c, i * stride + u, j * stride + v])
            if xv != 0 and float(w[o, c, u, v]) != 0:
                events[b] += 1
    return events


def test_conv_gate_events_equal_a_brute_force_count():
    gen = torch.Generator().manual_seed(0)
    for stride, padding in [(1, 0), (1, 1), (2, 1)]:
        layer = DiscreteConv2d(3, 4, 3, DiscreteSpace(1), padding=padding, stride=stride)
        layer.state.copy_(torch.randint(0, 3, layer.state.shape, generator=gen))
        w = layer.space.value(layer.state)
        x = _ternary((2, 3, 6, 6), gen)
        got = gate_events(layer, x, w).tolist()
        assert got == _brute_force_conv_events(x, w, stride, padding)


def test_fc_gate_events_equal_a_brute_force_count():
    gen = torch.Generator().manual_seed(1)
    layer = DiscreteLinear(7, 5, DiscreteSpace(1))
    layer.state.copy_(torch.randint(0, 3, layer.state.shape, generator=gen))
    w = layer.space.value(layer.state)
    x = _ternary((3, 7), gen)
    expected = [sum(1 for o in range(5) for i in range(7) if x[b, i] != 0 and w[o, i] != 0) for b in range(3)]
    assert gate_events(layer, x, w).tolist() == expected


def test_probe_records_are_exact_and_consistent():
    cfg = validate_config({"dataset": {"name": "mnist5k"}, "model": {"arch": "mnist_cnn", "width": 0.25}})
    torch.manual_seed(0)
    model = build_model(cfg)
    x = torch.rand(300, 1, 28, 28) * 2 - 1
    recs = probe(model, x)
    assert recs["conv1"]["input_is_real"] and recs["conv1"]["activation_levels"] is None
    for name, rec in recs.items():
        assert sum(rec["weight_states"]) == rec["num_weights"]
        assert rec["weight_sparsity"] == rec["weight_states"][1] / rec["num_weights"]
        assert 0 <= rec["gate_event_rate"] <= 1
        assert abs(rec["events"] - rec["gate_event_rate"] * rec["macs"]) < 1e-6 * rec["macs"]
        if name != "conv1":
            n_in = sum(rec["activation_levels"])
            if rec["kind"] == "fc":  # every input element of every probe sample is counted once
                assert n_in == 300 * model.weight_layers()[name].in_features
            assert rec["activation_sparsity"] == rec["activation_levels"][1] / n_in


def test_probing_consumes_no_randomness_and_leaves_batchnorm_untouched():
    cfg = validate_config({"model": {"hidden": [64, 64]}})
    model = build_model(cfg).train()
    x = torch.randn(50, 1, 8, 8)
    bn_before = {k: v.clone() for k, v in model.state_dict().items()}
    rng_before = torch.get_rng_state()
    probe(model, x)
    assert torch.equal(torch.get_rng_state(), rng_before)
    for k, v in model.state_dict().items():
        assert torch.equal(v, bn_before[k]), k
    assert model.training  # mode restored
