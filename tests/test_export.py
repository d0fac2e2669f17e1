"""The ``.gxn`` model format (gxnor_core.export, docs/EXPORT.md): packing, folding, reading back, and refusing
every file it did not write.  (``gxnor export`` and ``gxnor infer``: tests/test_cli.py.)"""

from __future__ import annotations

import hashlib
import json
import struct

import numpy as np
import pytest
import torch

from gxnor_core import build_model, validate_config
from gxnor_core.activations import MultiStepActivation
from gxnor_core.config import WeightConfig
from gxnor_core.data import DATASETS
from gxnor_core.export import (
    HEADER_SIZE,
    MAGIC,
    VERSION,
    ExportError,
    FormatError,
    _assemble,
    export_model,
    fold_thresholds,
    pack_trits,
    read_model,
    unpack_trits,
)
from gxnor_core.layers import StepActivation

SMALL = {"model": {"hidden": [24, 13]}}


def randomized(config: dict, seed: int = 0):
    """A network of config with random weight states and random BatchNorm state (negative γ included), so every
    kind of threshold occurs."""
    cfg = validate_config(config)
    model = build_model(cfg).eval()
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=g) * 4)
            m.running_var.copy_(torch.rand(c, generator=g) * 20 + 0.05)
            m.weight.data.copy_(torch.randn(c, generator=g))
            m.bias.data.copy_(torch.randn(c, generator=g))
    for layer in model.discrete_layers():
        layer.state.copy_(torch.randint(0, layer.space.num_states, layer.state.shape, generator=g))
    return cfg, model


def exported(config: dict = SMALL, seed: int = 0) -> bytes:
    cfg, model = randomized(config, seed)
    return export_model(model, cfg, DATASETS[cfg.dataset.name].input_shape, {"note": "test"})


@pytest.mark.parametrize("n", [0, 1, 4, 5, 6, 999, 1000])
def test_trits_pack_five_to_a_byte_and_unpack_to_themselves(n):
    trits = np.random.default_rng(n).integers(-1, 2, n).astype(np.int8)
    packed = pack_trits(trits)
    assert len(packed) == -(-n // 5)
    assert np.array_equal(unpack_trits(packed, n), trits)
    if n:
        assert max(packed) < 243
        with pytest.raises(FormatError, match="243"):
            unpack_trits(bytes([243]) + packed[1:], n)


def test_an_export_reads_back_as_the_networks_weights_and_batchnorm():
    cfg, model = randomized(SMALL)
    data = export_model(model, cfg, (1, 8, 8), {"run_id": 7})
    got = read_model(data)
    assert got.meta["version"] == VERSION and got.meta["input_shape"] == [1, 8, 8] and got.meta["classes"] == 10
    assert got.meta["source"]["run_id"] == 7 and got.meta["source"]["config"] == cfg.model_dump(mode="json")
    assert [e["role"] for e in got.meta["layers"]] == ["real_input", "xnor", "output"]
    for entry, (name, block) in zip(got.meta["layers"], model.blocks.items(), strict=True):
        arrays = got.layer_arrays(name)
        assert np.array_equal(arrays["weights"].reshape(entry["weight_shape"]), block[0].state.numpy() - 1)
        # at rest 5 weights to a byte: 1.6 bits per weight
        assert got.meta["arrays"][f"{name}.weights"]["length"] == -(-block[0].state.numel() // 5)
        if entry["role"] != "xnor":
            assert np.array_equal(arrays["bn_var"], block[1].running_var.numpy())
            assert np.array_equal(arrays["bn_weight"], block[1].weight.detach().numpy())


@pytest.mark.parametrize("N,r", [(1, 0.5), (1, 0.0), (0, 0.5)])
def test_folded_thresholds_reproduce_batchnorm_then_phi_for_every_reachable_sum(N, r):
    bn = torch.nn.BatchNorm1d(6, eps=1e-4).eval()
    with torch.no_grad():
        bn.running_mean.copy_(torch.tensor([0.0, 3.0, -2.0, 0.5, 1.0, 0.0]))
        bn.running_var.copy_(torch.tensor([1.0, 4.0, 0.3, 2.0, 9.0, 1.0]))
        bn.weight.copy_(torch.tensor([1.0, -0.7, 2.0, 0.0, -3.0, 1e-6]))  # negative γ flips; γ = 0 is constant
        bn.bias.copy_(torch.tensor([0.1, 0.2, -0.4, -0.9, 0.0, 0.6]))
    act = StepActivation(MultiStepActivation(N, r))
    fan_in = 40
    t = fold_thresholds(bn, act, 1.0, fan_in, (6,))
    s = torch.arange(-fan_in, fan_in + 1)
    expected = act(bn(s.to(torch.float32)[:, None].expand(-1, 6).contiguous())).to(torch.int64)
    u = s[:, None] * torch.from_numpy(t["flip"]).to(torch.int64)
    got = (u >= torch.from_numpy(t["hi"])).to(torch.int64) - (u <= torch.from_numpy(t["lo"])).to(torch.int64)
    assert torch.equal(got, expected)
    assert list(t["flip"][[1, 4]]) == [-1, -1]


def _with_header(data: bytes, **fields) -> bytes:
    magic, version, meta_len, payload_len, digest = struct.unpack_from("<8sIIQ32s", data)
    values = {"magic": magic, "version": version, "meta_len": meta_len, "payload_len": payload_len,
              "digest": digest, **fields}
    return struct.pack("<8sIIQ32s", *values.values()) + data[HEADER_SIZE:]


def test_truncated_wrong_version_tampered_and_foreign_files_fail_with_a_clear_error(tmp_path):
    data = exported()
    for cut in (0, 5, HEADER_SIZE - 1, HEADER_SIZE, HEADER_SIZE + 10, len(data) // 2, len(data) - 1):
        with pytest.raises(FormatError) as err:
            read_model(data[:cut])
        assert ("truncated" in str(err.value) or "not a GXNOR model" in str(err.value)), (cut, err.value)
    with pytest.raises(FormatError, match="truncated: 100 bytes of the"):
        read_model(data[:100])
    with pytest.raises(FormatError, match="format version 2 is not supported: this reader reads version 1"):
        read_model(_with_header(data, version=2))
    with pytest.raises(FormatError, match="bad magic"):
        read_model(b"PK\x03\x04" + data[4:])
    with pytest.raises(FormatError, match="not a GXNOR model"):
        read_model(torch.nn.Linear(2, 2).state_dict().__repr__().encode()[:20])
    with pytest.raises(FormatError, match="unexpected bytes after the end"):
        read_model(data + b"\0")
    # One flipped bit anywhere after the magic and version — header lengths, description, arrays — is caught.
    rng = np.random.default_rng(0)
    for pos in [16, 30, HEADER_SIZE + 3, *rng.integers(HEADER_SIZE, len(data), 20)]:
        tampered = bytearray(data)
        tampered[pos] ^= 1 << int(rng.integers(8))
        with pytest.raises(FormatError, match="checksum mismatch|truncated|unexpected bytes"):
            read_model(bytes(tampered))
    path = tmp_path / "m.gxn"
    path.write_bytes(data)
    assert read_model(path).size == len(data)


def test_a_well_checksummed_file_with_a_bad_description_is_refused_not_trusted():
    meta_len = struct.unpack_from("<I", exported(), 12)[0]
    data = exported()
    meta, payload = json.loads(data[HEADER_SIZE:HEADER_SIZE + meta_len]), data[HEADER_SIZE + meta_len:]
    first = next(iter(meta["arrays"]))
    for change, message in [
        (lambda m: m["arrays"][first].update(offset=10**9), "outside the payload"),
        (lambda m: m["arrays"][first].update(count=7), "packed weights hold"),
        (lambda m: m["layers"][0]["arrays"].update(weights="nope"), "missing array"),
        (lambda m: m.pop("layers"), "malformed description"),
    ]:
        bad = json.loads(json.dumps(meta))
        change(bad)
        with pytest.raises(FormatError, match=message):
            read_model(_assemble(json.dumps(bad).encode(), payload))
    with pytest.raises(FormatError, match="unreadable description"):
        read_model(_assemble(b"\xff{", payload))
    assert hashlib.sha256(data[:24] + data[HEADER_SIZE:]).digest() == data[24:HEADER_SIZE]
    assert data.startswith(MAGIC)


@pytest.mark.parametrize("config,message", [
    ({"weights": {"discrete": False}}, "weights.discrete is false"),
    ({"activations": {"discrete": False}}, "activations.discrete is false"),
    ({"weights": {"N": 2}}, "weights.N is 2"),
    ({"activations": {"N": 2}}, "activations.N is 2"),
    ({"model": {"hidden": []}}, "model.hidden is empty"),
])
def test_networks_the_format_cannot_hold_are_refused_with_the_reason(config, message):
    cfg = validate_config({**SMALL, **config})
    with pytest.raises(ExportError, match=message):
        export_model(build_model(cfg), cfg, (1, 8, 8))


@pytest.mark.skipif("training" not in WeightConfig.model_fields, reason="no latent-weight training here")
def test_latent_weight_networks_are_refused():
    cfg = validate_config({**SMALL, "weights": {"training": "latent"}})
    with pytest.raises(ExportError, match="integer DST states"):
        export_model(build_model(cfg), cfg, (1, 8, 8))
