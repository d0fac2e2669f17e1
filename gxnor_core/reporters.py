"""A reporter that writes a run into a directory: JSONL metrics, layer records, checkpoints (latest and best)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import torch

from .train import Reporter


def json_safe(value):
    """JSON has no NaN/inf: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value


def best_model(checkpoint: dict) -> dict | None:
    """The model part of an epoch's checkpoint when that epoch is the best-validation one so far, else None.

    The trainer's model selection (``checkpoint["selection"]``) names the best epoch; when it is this one,
    the network's integer weight states and BatchNorm state are what an export should read.  The result
    keeps the checkpoint format (``gxnor_core.load_model`` reads it) but drops the optimizer and random
    state: it is a model to use, not a training state to resume."""
    if checkpoint["selection"].get("best_epoch") != checkpoint["epoch"]:
        return None
    keep = ("format", "config", "epoch", "model", "selection")
    return {k: checkpoint[k] for k in keep}


def save_checkpoint(state: dict, path: Path) -> None:
    """Write atomically: a crash mid-write never leaves a torn checkpoint behind."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


class DirectoryReporter(Reporter):
    """``DIR/metrics.jsonl``, ``DIR/layers.jsonl``, ``DIR/checkpoint.pt`` (the latest epoch's, to resume from),
    ``DIR/best.pt`` (the best-validation epoch's model, ``best_model``), ``DIR/summary.json``.

    With ``resume=True`` it continues from ``DIR/checkpoint.pt`` and drops any
    JSONL lines of epochs after the checkpoint, so the files match the state.
    """

    def __init__(self, out_dir: str | Path, resume: bool = False):
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.checkpoint_path = self.dir / "checkpoint.pt"
        self.best_path = self.dir / "best.pt"
        self._resume = resume
        self.stop_requested = False
        if not resume:
            for name in ("metrics.jsonl", "layers.jsonl", "summary.json", "best.pt"):
                (self.dir / name).unlink(missing_ok=True)

    def resume_from(self) -> dict | None:
        if not self._resume:
            return None
        if not self.checkpoint_path.is_file():
            raise FileNotFoundError(f"no checkpoint to resume from: {self.checkpoint_path}")
        ckpt = torch.load(self.checkpoint_path, map_location="cpu", weights_only=True)
        for name in ("metrics.jsonl", "layers.jsonl"):
            path = self.dir / name
            if path.is_file():
                keep = [ln for ln in path.read_text().splitlines() if json.loads(ln)["epoch"] <= ckpt["epoch"]]
                path.write_text("".join(ln + "\n" for ln in keep))
        return ckpt

    def should_stop(self) -> bool:
        return self.stop_requested

    def epoch(self, metrics: dict, layers: list[dict], checkpoint: dict) -> None:
        save_checkpoint(checkpoint, self.checkpoint_path)
        if (best := best_model(checkpoint)) is not None:
            save_checkpoint(best, self.best_path)
        with open(self.dir / "layers.jsonl", "a") as f:
            for rec in layers:
                f.write(json.dumps(json_safe(rec)) + "\n")
        with open(self.dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(json_safe(metrics)) + "\n")

    def finish(self, summary: dict) -> None:
        (self.dir / "summary.json").write_text(json.dumps(json_safe(summary), indent=2) + "\n")
