"""Exported models: a trained GXNOR network as a small, versioned binary file (``.gxn``, docs/EXPORT.md).

What an export keeps, per layer (the network is the model's blocks: weight layer → [max-pool] → BN → [φ]):

- the weights as trits (−1, 0, +1), packed 5 to a byte (3^5 = 243 ≤ 256: 1.6 bits per weight);
- for the first layer, whose input is real-valued (pixels), the BatchNorm parameters in float32 and φ's
  (N, r): the engine runs it with the model's own float ops;
- for every other hidden layer — an XNOR layer, whose pre-BN output is H·s with s an integer sum of
  {−1, 0, 1} products — BatchNorm followed by the ternary φ folded into per-channel integer thresholds:
  φ(BN(H·s)) is a monotone step function of s, so with u = flip·s it is [u ≥ hi] − [u ≤ lo];
- for the output layer, its BatchNorm in float32 (the last scale: logits = BN(H·s)).

The thresholds are not derived from a formula: export evaluates the model's own BatchNorm and φ modules on
every reachable sum s ∈ [−fan_in, fan_in], laid out as the model lays out that layer's output, and reads the
steps off the result.  So the engine reproduces what PyTorch computes, rounding included.

The reader never unpickles: a fixed header (magic, version, lengths, SHA-256 of everything else), a JSON
description and raw little-endian arrays.  A truncated, tampered or wrong-version file raises FormatError.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .config import validate_config
from .data import DATASETS
from .layers import DiscreteConv2d, DiscreteLinear, StepActivation
from .models import GXNORNet
from .train import load_model

MAGIC = b"\x89GXNOR\r\n"  # PNG-style: a non-ASCII first byte and CR LF catch text-mode transfers
VERSION = 1
_HEADER = struct.Struct("<8sIIQ32s")  # magic, version, JSON length, payload length, SHA-256
HEADER_SIZE = _HEADER.size
_HASHED_PREFIX = HEADER_SIZE - 32  # the header fields before the digest are covered by it too
MAX_JSON = 16 << 20
TRITS_PER_BYTE = 5
_POW3 = np.array([1, 3, 9, 27, 81], dtype=np.uint8)
_DTYPES = {"f4": np.dtype("<f4"), "i4": np.dtype("<i4"), "i1": np.dtype("i1")}


class FormatError(ValueError):
    """A ``.gxn`` file that cannot be read: not one, another version, truncated, or altered."""


class ExportError(ValueError):
    """A network this format cannot hold (not ternary, multi-level, latent weights, …)."""


def pack_trits(trits: np.ndarray) -> bytes:
    """Trits t ∈ {−1, 0, 1}, 5 per byte: byte = Σ_i (t_i + 1)·3^i over 5 consecutive trits (the last group
    padded with 0 trits)."""
    flat = trits.reshape(-1).astype(np.int16) + 1
    pad = (-flat.size) % TRITS_PER_BYTE
    digits = np.concatenate([flat, np.ones(pad, dtype=np.int16)]).reshape(-1, TRITS_PER_BYTE).astype(np.uint8)
    return (digits * _POW3).sum(1, dtype=np.uint16).astype(np.uint8).tobytes()


_UNPACK = np.array([[(b // 3 ** i) % 3 - 1 for i in range(TRITS_PER_BYTE)] for b in range(243)], dtype=np.int8)


def unpack_trits(data: bytes, count: int) -> np.ndarray:
    """The ``count`` trits (int8) of ``pack_trits`` output; FormatError for a byte no packing produces."""
    raw = np.frombuffer(data, dtype=np.uint8)
    if raw.size != -(-count // TRITS_PER_BYTE):
        raise FormatError(f"packed weights hold {raw.size} bytes, {count} weights need {-(-count // 5)}")
    if raw.size and int(raw.max()) >= 243:
        raise FormatError("packed weights hold a byte ≥ 243, which no 5-trit group packs to")
    return _UNPACK[raw].reshape(-1)[:count]


# ---------------------------------------------------------------------------------------------------- writing


def _trits(layer: nn.Module) -> np.ndarray:
    """The layer's weights as trits: state index n ↦ value −H + n·Δz ↦ −1, 0, +1 (N = 1) or −1, +1 (N = 0)."""
    state = layer.state.to(torch.int64).numpy()
    return (state - 1 if layer.space.N == 1 else 2 * state - 1).astype(np.int8)


def _shapes(model: GXNORNet, input_shape: tuple[int, ...]) -> dict[str, tuple[tuple, tuple]]:
    """Per block: (its weight layer's input shape, its BatchNorm's input shape), for one sample."""
    seen: dict[str, tuple] = {}
    hooks = []
    for name, block in model.blocks.items():
        bn = next(m for m in block if isinstance(m, nn.modules.batchnorm._BatchNorm))
        hooks.append(block[0].register_forward_hook(
            lambda m, inp, out, name=name: seen.__setitem__(name, (tuple(inp[0].shape[1:]),))))
        hooks.append(bn.register_forward_hook(
            lambda m, inp, out, name=name: seen.__setitem__(name, (*seen[name], tuple(inp[0].shape[1:])))))
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_shape))
    finally:
        for h in hooks:
            h.remove()
    return seen


def _parts(block: nn.Sequential) -> tuple[nn.Module, bool, nn.Module, StepActivation | None]:
    layer, rest = block[0], list(block)[1:]
    pool = bool(rest) and isinstance(rest[0], nn.MaxPool2d)
    if pool:
        if (rest[0].kernel_size, rest[0].stride, rest[0].padding) not in ((2, 2, 0),):
            raise ExportError("only 2×2 max-pooling with stride 2 is supported")
        rest = rest[1:]
    bn = rest[0]
    act = rest[1] if len(rest) > 1 else None
    return layer, pool, bn, act


def fold_thresholds(bn: nn.Module, act: StepActivation, H: float, fan_in: int,
                    bn_input: tuple[int, ...]) -> dict[str, np.ndarray]:
    """φ(BN(H·s)) for every integer s ∈ [−fan_in, fan_in] as three per-channel arrays (flip, lo, hi): with
    u = flip·s the output is [u ≥ hi] − [u ≤ lo].  BN and φ are the model's own modules, evaluated on the
    candidates placed as the model's tensors place them (channel-major images of the layer's output size, or
    rows of features), so the arithmetic is PyTorch's own; ExportError if the result is not monotone in s."""
    channels = bn_input[0]
    per_map = math.prod(bn_input[1:]) if len(bn_input) > 1 else 1
    s = torch.arange(-fan_in, fan_in + 1, dtype=torch.int64)
    values = s.to(torch.float32) * torch.tensor(H, dtype=torch.float32)
    rows = -(-s.numel() // per_map)
    padded = torch.cat([values, values[-1:].expand(rows * per_map - s.numel())])
    out = []
    chunk = max(1, (4 << 20) // (channels * per_map))  # at most ~4 M values at a time
    with torch.no_grad():
        for r0 in range(0, rows, chunk):
            part = padded[r0 * per_map:(r0 + chunk) * per_map].view(-1, 1, *bn_input[1:])
            x = part.expand(part.shape[0], channels, *bn_input[1:]).contiguous()
            y = act(bn(x))
            out.append(y.transpose(0, 1).reshape(channels, -1))
    phi = torch.cat(out, 1)[:, :s.numel()].round().to(torch.int8)  # (channels, candidates), values in {-1, 0, 1}
    steps = phi[:, 1:].to(torch.int16) - phi[:, :-1].to(torch.int16)
    rising, falling = (steps >= 0).all(1), (steps <= 0).all(1)
    if not bool((rising | falling).all()):
        bad = int((~(rising | falling)).nonzero()[0])
        raise ExportError(f"φ(BN(x)) of channel {bad} is not monotone in x; its BatchNorm state is not finite")
    flip = torch.where(rising, 1, -1).to(torch.int8)
    u = flip[:, None].to(torch.int64) * s[None, :]  # u ascending where flip = 1, descending where flip = -1
    big = fan_in + 1
    lo = torch.where(phi == -1, u, torch.full_like(u, -big)).max(1).values
    hi = torch.where(phi == 1, u, torch.full_like(u, big)).min(1).values
    return {"flip": flip.numpy(), "lo": lo.to(torch.int32).numpy(), "hi": hi.to(torch.int32).numpy()}


def _bn_arrays(bn: nn.Module) -> dict[str, np.ndarray]:
    return {k: getattr(bn, attr).detach().to(torch.float32).numpy() for k, attr in
            (("bn_weight", "weight"), ("bn_bias", "bias"), ("bn_mean", "running_mean"), ("bn_var", "running_var"))}


def config_refusal(config: Any) -> tuple[str, str] | None:
    """Why the network of a validated ``config`` cannot be exported in this format version — (the config
    field, what it is and why), e.g. ``("weights.N", "is 2: …")`` — or None.  The one rule the CLI, the
    API (which names ``config.<field>`` in its 422) and ``export_model`` apply (docs/EXPORT.md, "What can be
    exported")."""
    w, a = config.weights, config.activations
    for name, part in (("weights", w), ("activations", a)):
        if not part.discrete:
            return f"{name}.discrete", "is false: a full-precision network has no XNOR layers to export"
    for name, part in (("weights", w), ("activations", a)):
        if part.N > 1:
            return (f"{name}.N", f"is {part.N}: format version {VERSION} holds binary or ternary networks only "
                    "(N ≤ 1); multi-level networks run with PyTorch (gxnor_core.load_model)")
    if w.training != "dst":
        return ("weights.training", f"is {w.training}: latent-weight networks carry a float scale per layer, so "
                "their sums are not integers; only networks whose weights are integer DST states are exported")
    if config.model.arch == "mlp" and not config.model.hidden:
        return "model.hidden", "is empty: the only layer sees the real input, so there is no XNOR layer"
    return None


def _check_exportable(model: GXNORNet, config: Any) -> None:
    if (refused := config_refusal(config)) is not None:
        raise ExportError(" ".join(refused))
    for name, layer in model.weight_layers().items():  # a stored checkpoint whose network its config disowns
        if not isinstance(layer, DiscreteLinear | DiscreteConv2d):
            raise ExportError(f"layer {name} is {type(layer).__name__}: only networks whose weights are integer "
                              "DST states (weights.training: dst) are exported")


def export_model(model: GXNORNet, config: Any, input_shape: tuple[int, ...], source: dict | None = None) -> bytes:
    """The ``.gxn`` bytes of ``model`` (built from ``config`` for inputs of ``input_shape``, C×H×W)."""
    _check_exportable(model, config)
    model = model.eval()
    shapes = _shapes(model, input_shape)
    H = float(config.weights.H)
    arrays: list[tuple[str, np.ndarray | bytes]] = []
    layers = []
    names = list(model.blocks)
    for i, (name, block) in enumerate(model.blocks.items()):
        layer, pool, bn, act = _parts(block)
        in_shape, bn_input = shapes[name]
        conv = isinstance(layer, DiscreteConv2d)
        trits = _trits(layer)
        fan_in = int(np.prod(trits.shape[1:]))
        role = "real_input" if i == 0 else ("output" if i == len(names) - 1 else "xnor")
        entry: dict[str, Any] = {
            "name": name, "kind": "conv" if conv else "fc", "role": role,
            "in_shape": list(in_shape), "out_shape": list(bn_input), "weight_shape": list(trits.shape),
            "pool": pool, "bn_eps": float(bn.eps), "arrays": {},
        }
        if conv:
            entry.update(padding=int(layer.padding), stride=int(layer.stride))
        if role == "output" and conv:
            raise ExportError("the output layer is a convolution; format version 1 expects a fully connected one")
        own = {"weights": pack_trits(trits)}
        if role == "xnor":
            own.update(fold_thresholds(bn, act, H, fan_in, bn_input))
        else:
            own.update(_bn_arrays(bn))
        for key, value in own.items():
            arrays.append((f"{name}.{key}", value))
            entry["arrays"][key] = f"{name}.{key}"
        layers.append(entry)

    payload, index = io.BytesIO(), {}
    for key, value in arrays:
        data = value if isinstance(value, bytes) else np.ascontiguousarray(value).tobytes()
        index[key] = {"offset": payload.tell(), "length": len(data),
                      **({"dtype": "trits", "count": _count(layers, key)} if isinstance(value, bytes) else
                         {"dtype": value.dtype.str.lstrip("<|="), "shape": list(value.shape)})}
        payload.write(data)
        payload.write(b"\0" * (-payload.tell() % 8))  # 8-byte aligned arrays
    meta = {
        "format": "gxnor-model", "version": VERSION,
        "input_shape": list(input_shape),
        "weights": {"N": config.weights.N, "H": H},
        "activations": {"N": config.activations.N, "r": float(config.activations.r)},
        "classes": layers[-1]["weight_shape"][0],
        "layers": layers, "arrays": index,
        "source": {"config": config.model_dump(mode="json"), **(source or {})},
    }
    return _assemble(json.dumps(meta, separators=(",", ":")).encode(), payload.getvalue())


def _count(layers: list[dict], key: str) -> int:
    name = key.rsplit(".", 1)[0]
    shape = next(entry["weight_shape"] for entry in layers if entry["name"] == name)
    return math.prod(shape)


def _assemble(meta: bytes, payload: bytes) -> bytes:
    prefix = _HEADER.pack(MAGIC, VERSION, len(meta), len(payload), b"\0" * 32)[:_HASHED_PREFIX]
    digest = hashlib.sha256(prefix + meta + payload).digest()
    return prefix + digest + meta + payload


def export_checkpoint(checkpoint: bytes, source: dict | None = None) -> bytes:
    """The ``.gxn`` bytes of a checkpoint file's network (a latest checkpoint or a best-validation model; read
    with ``weights_only=True``: no code in a checkpoint runs)."""
    try:
        ckpt = torch.load(io.BytesIO(checkpoint), map_location="cpu", weights_only=True)
        model = load_model(io.BytesIO(checkpoint))
    except Exception as exc:  # noqa: BLE001 - any unreadable input is the user's file, reported in one line
        first = (str(exc).splitlines() or [""])[0][:200]
        raise ExportError(f"not a GXNOR checkpoint ({type(exc).__name__}: {first})") from None
    config = validate_config(ckpt["config"])
    src = {"epoch": ckpt.get("epoch"), "best_epoch": (ckpt.get("selection") or {}).get("best_epoch"),
           **(source or {})}
    return export_model(model, config, DATASETS[config.dataset.name].input_shape, src)


# ---------------------------------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class ExportedModel:
    """A read ``.gxn`` file: its JSON description (``meta``) and its arrays by ``LAYER.KEY`` name (weights
    unpacked to int8 trits, thresholds int8/int32, BatchNorm float32)."""

    meta: dict
    arrays: dict[str, np.ndarray]
    size: int

    def layer_arrays(self, name: str) -> dict[str, np.ndarray]:
        entry = next(e for e in self.meta["layers"] if e["name"] == name)
        return {key: self.arrays[ref] for key, ref in entry["arrays"].items()}


def read_model(source: str | Path | bytes) -> ExportedModel:
    """Read and verify a ``.gxn`` file (a path or its bytes); FormatError says what is wrong with it."""
    data = Path(source).read_bytes() if isinstance(source, str | Path) else bytes(source)
    if len(data) < HEADER_SIZE:
        if not MAGIC.startswith(data[:len(MAGIC)]) or not data:
            raise FormatError("not a GXNOR model file (no .gxn header)")
        raise FormatError(f"truncated: {len(data)} bytes, shorter than the {HEADER_SIZE}-byte header")
    magic, version, meta_len, payload_len, digest = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise FormatError("not a GXNOR model file (bad magic bytes)")
    if version != VERSION:
        raise FormatError(f"format version {version} is not supported: this reader reads version {VERSION}")
    expected = HEADER_SIZE + meta_len + payload_len
    if len(data) < expected:
        raise FormatError(f"truncated: {len(data)} bytes of the {expected} the header announces")
    if len(data) > expected:
        raise FormatError(f"{len(data) - expected} unexpected bytes after the end of the model")
    if hashlib.sha256(data[:_HASHED_PREFIX] + data[HEADER_SIZE:]).digest() != digest:
        raise FormatError("checksum mismatch: the file was altered or damaged after it was written")
    if meta_len > MAX_JSON:
        raise FormatError(f"description of {meta_len} bytes exceeds {MAX_JSON}")
    try:
        meta = json.loads(data[HEADER_SIZE:HEADER_SIZE + meta_len])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"unreadable description: {exc}") from None
    payload = memoryview(data)[HEADER_SIZE + meta_len:]
    return ExportedModel(meta, _arrays(meta, payload), len(data))


def _arrays(meta: Any, payload: memoryview) -> dict[str, np.ndarray]:
    """The arrays the description indexes, each checked against the payload's bounds and its layer's shape."""
    try:
        index = meta["arrays"]
        out = {}
        for key, spec in index.items():
            start, length = int(spec["offset"]), int(spec["length"])
            if start < 0 or length < 0 or start + length > len(payload):
                raise FormatError(f"array {key} lies outside the payload")
            chunk = bytes(payload[start:start + length])
            if spec["dtype"] == "trits":
                out[key] = unpack_trits(chunk, int(spec["count"]))
                continue
            dtype = _DTYPES.get(spec["dtype"])
            shape = tuple(int(n) for n in spec["shape"])
            if dtype is None or length != dtype.itemsize * math.prod(shape):
                raise FormatError(f"array {key}: {length} bytes do not hold {spec['dtype']} {list(shape)}")
            out[key] = np.frombuffer(chunk, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))
        for entry in meta["layers"]:
            for ref in entry["arrays"].values():
                if ref not in out:
                    raise FormatError(f"layer {entry['name']} names a missing array {ref}")
            if out[entry["arrays"]["weights"]].size != math.prod(entry["weight_shape"]):
                raise FormatError(f"layer {entry['name']}: weight count does not match its shape")
        return out
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        if isinstance(exc, FormatError):
            raise
        raise FormatError(f"malformed description ({type(exc).__name__}: {exc})") from None
