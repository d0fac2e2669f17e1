"""The training loop: read it top to bottom.  Everything else plugs in through a Reporter."""

from __future__ import annotations

import math
import time
from typing import Any

import torch
import torch.nn.functional as F

from ._malloc import keep_freed_memory, release_freed_memory
from .config import ExperimentConfig, validate_config
from .data import DataSplits, load_dataset
from .dst import DSTOptimizer, optimizer_state_bytes
from .integer_forward import integer_forward_on
from .latent import LatentOptimizer
from .layers import has_states
from .metrics import summarize
from .models import GXNORNet, build_model, count_weights
from .probes import aggregate, probe

CHECKPOINT_FORMAT = "gxnor-checkpoint/1"
PROBE_SIZE = 500
EVAL_CHUNK = 1000
# Within-epoch loss points (``Reporter.batch_loss``): at most this many per epoch, and per run (docs/METRICS.md).
BATCH_POINTS_PER_EPOCH = 50
BATCH_POINTS_PER_RUN = 2000


class Reporter:
    """Where a run's results go.  Override what you need; every hook is optional.

    Order per run: ``start`` once, then per epoch many ``progress`` calls and
    ``should_stop`` checks between batches, then one ``epoch`` with the epoch's
    metrics, layer records and checkpoint, all of which belong together.
    """

    def resume_from(self) -> dict | None:
        """A checkpoint (as saved by ``epoch``) to continue from, or None to start fresh."""
        return None

    def start(self, info: dict) -> None:
        """Static facts of the run: layers, weight and MAC counts, device."""

    def progress(self, epoch: int, fraction: float) -> None:
        """Called after every batch; epoch is 1-based, fraction of it done in (0, 1]."""

    def batch_loss(self, epoch: int, fraction: float, loss: float, samples: int) -> None:
        """A within-epoch loss point, after the batches ``batch_point_ends`` names: ``loss`` is the mean training
        loss over the ``samples`` of the batches since the previous point of this epoch, which end at
        ``fraction`` of it.  Called before that batch's ``progress``."""

    def should_stop(self) -> bool:
        """Checked between batches: True cancels the run, keeping what was recorded."""
        return False

    def epoch(self, metrics: dict, layers: list[dict], checkpoint: dict) -> None:
        """One finished epoch: run-level metrics, per-layer records and the checkpoint state."""


def schedule_factor(cfg: ExperimentConfig, epoch: int) -> float:
    """The learning-rate schedule (docs/CONFIG.md, ``train``) as a factor on the first epoch's rate, for
    the 0-based ``epoch`` of ``E = train.epochs``:

        exponential   (lr_final/lr)^(e/(E-1))                 e = epoch; 1 when E = 1
        multistep     the same × milestone_factor^#{milestones ≤ epoch}

    With ``zero_lr_first_epoch`` (the reference code's) epoch 0 has factor 0 and the decay runs over the
    remaining epochs (e = epoch - 1 of E - 1); milestones still count the epoch itself, as the reference
    code's ``epoch == 1000`` does.
    """
    t = cfg.train
    e, span = epoch, t.epochs
    if t.zero_lr_first_epoch:
        if epoch == 0:
            return 0.0
        e, span = epoch - 1, t.epochs - 1
    factor = 1.0 if span <= 1 else (t.lr_final / t.lr) ** (e / (span - 1))
    if t.schedule == "multistep":
        factor *= t.milestone_factor ** sum(m <= epoch for m in t.milestones)
    return factor


def batch_point_ends(n_batches: int, epochs: int) -> frozenset[int]:
    """The batches (1-based) after which an epoch reports a loss point: ``k = min(BATCH_POINTS_PER_EPOCH,
    BATCH_POINTS_PER_RUN // epochs, n_batches)`` ends spread evenly, the last batch always one, so each point
    merges the adjacent batches since the previous one.  None when ``k < 2``: one point would only repeat the
    epoch's ``train_loss``.  Bounded so, a run never reports more than BATCH_POINTS_PER_RUN points, and reading
    the loss (a device sync on a GPU) happens at most ``k`` times an epoch, not once a batch."""
    k = min(BATCH_POINTS_PER_EPOCH, BATCH_POINTS_PER_RUN // max(epochs, 1), n_batches)
    if k < 2:
        return frozenset()
    return frozenset(math.ceil((i + 1) * n_batches / k) for i in range(k))


def lr_at(cfg: ExperimentConfig, epoch: int) -> float:
    """The DST proposals' learning rate (a full-precision network's float parameters: ``lr_float_at``)."""
    return cfg.train.lr * schedule_factor(cfg, epoch)


def lr_float_at(cfg: ExperimentConfig, epoch: int) -> float:
    """The float parameters' learning rate (BatchNorm γ/β, float weights): ``lr_float`` (null: ``lr``) on the
    same schedule."""
    t = cfg.train
    return (t.lr if t.lr_float is None else t.lr_float) * schedule_factor(cfg, epoch)


def loss_fn(name: str, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if name == "squared_hinge":
        target = F.one_hot(y, out.shape[1]).to(out.dtype).mul_(2).sub_(1)  # 2·onehot - 1
        return F.relu(1.0 - target * out).square().mean()
    return F.cross_entropy(out, y)


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device is 'cuda' but no CUDA device is available")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@torch.no_grad()
def evaluate(model: GXNORNet, x: torch.Tensor, y: torch.Tensor, loss: str) -> tuple[float, float]:
    """(mean loss, error fraction) in eval mode."""
    if x.shape[0] == 0:
        return math.nan, math.nan
    model.eval()
    total_loss = torch.zeros((), dtype=torch.float64, device=x.device)
    wrong = torch.zeros((), dtype=torch.int64, device=x.device)
    for s in range(0, x.shape[0], EVAL_CHUNK):
        out = model(x[s:s + EVAL_CHUNK])
        yb = y[s:s + EVAL_CHUNK]
        total_loss += loss_fn(loss, out, yb).double() * yb.shape[0]
        wrong += (out.argmax(1) != yb).sum()
    return float(total_loss) / x.shape[0], int(wrong) / x.shape[0]


def _to(data: DataSplits, device: torch.device) -> DataSplits:
    return DataSplits(*(getattr(data, f).to(device) for f in data.__dataclass_fields__))


def model_and_optimizer(cfg: ExperimentConfig, input_shape: tuple[int, ...], device: torch.device | str,
                        gen_dst: torch.Generator) -> tuple[GXNORNet, DSTOptimizer | LatentOptimizer]:
    """A run's network, built after seeding torch with ``train.seed``, its XNOR layers' forward on the integer
    kernels as ``train.integer_forward`` says (same values, faster), and its optimizer: float shadow weights for
    ``weights.training: latent``, else DST over integer states (its moves drawn from ``gen_dst``)."""
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg, input_shape).to(device)
    model.set_integer_forward(integer_forward_on(cfg.train.integer_forward, device))
    if cfg.weights.training == "latent":
        return model, LatentOptimizer(model, cfg.dst.optimizer, cfg.train.lr)
    return model, DSTOptimizer(model, cfg.dst.optimizer, cfg.train.lr, cfg.dst.m, gen_dst)


def train(config: ExperimentConfig | dict, reporter: Reporter | None = None) -> dict[str, Any]:
    """Train one run; returns its status, epochs completed, summary (``gxnor_core.metrics.summarize`` after the
    last epoch: ``test_error`` is the test error at the best epoch; last-epoch figures are None when this call
    trained no epoch) and network size.  Resumes exactly from ``reporter.resume_from()``.  While it trains, the
    process keeps the heap memory it frees (else an epoch re-faults tens of thousands of pages; gxnor_core._malloc),
    and hands it back at the end."""
    cfg = validate_config(config)
    keep_freed_memory()
    try:
        return _train(cfg, reporter or Reporter())
    finally:
        release_freed_memory()


def _train(cfg: ExperimentConfig, rep: Reporter) -> dict[str, Any]:
    device = resolve_device(cfg.train.device)
    data = _to(load_dataset(cfg.dataset), device)

    gen_data = torch.Generator().manual_seed(cfg.train.seed)  # batch order (CPU generator)
    gen_dst = torch.Generator().manual_seed(cfg.train.seed + 1)  # DST transitions, restarts
    model, opt = model_and_optimizer(cfg, data.input_shape, device, gen_dst)
    latent = cfg.weights.training == "latent"
    restarts = None if latent else cfg.dst.restart_patience  # the restart moves DST states: none to move here
    discrete = model.quantized_layers()
    layer_names = [n for n, m in model.weight_layers().items() if m in discrete]

    sel = {"best_epoch": None, "best_val_error": math.inf, "test_error_at_best": None,
           "best_test_error": math.inf, "since_best": 0}
    best_states: list[torch.Tensor] | None = None
    start_epoch = 0
    ckpt = rep.resume_from()
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        gen_data.set_state(ckpt["rng"]["data"])
        gen_dst.set_state(ckpt["rng"]["dst"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        sel = dict(ckpt["selection"])
        best_states = ckpt.get("best_states")
        start_epoch = ckpt["epoch"]

    probe_x = (data.val_x if data.val_x.shape[0] else data.test_x)[:PROBE_SIZE]
    n_train, bs = data.train_x.shape[0], cfg.train.batch_size
    n_batches = max(1, n_train // bs)  # reference code: the last partial batch is dropped
    point_ends = batch_point_ends(n_batches, cfg.train.epochs)
    rep.start({
        "device": str(device),
        "layers": list(model.weight_layers()),
        "discrete_layers": layer_names,
        "num_weights": count_weights(model),
        "num_discrete_weights": sum(m.num_weights for m in discrete),
        "train_samples": n_train, "val_samples": data.val_x.shape[0],
        "test_samples": data.test_x.shape[0], "batches_per_epoch": n_batches,
        "start_epoch": start_epoch,
    })

    status, completed = "succeeded", start_epoch
    metrics: dict | None = None  # the last finished epoch's (for the summary)
    for epoch in range(start_epoch, cfg.train.epochs):
        t0 = time.perf_counter()
        lr = lr_at(cfg, epoch)
        opt.set_lr(lr, lr_float_at(cfg, epoch))
        start_states = [m.state.clone() for m in discrete]
        perm = torch.randperm(n_train, generator=gen_data).to(device)
        model.train()
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        wrong = torch.zeros((), dtype=torch.int64, device=device)
        seen = 0
        point_loss, point_seen = 0.0, 0  # loss_sum and seen at the previous loss point
        for b in range(n_batches):
            if rep.should_stop():
                status = "cancelled"
                break
            idx = perm[b * bs:(b + 1) * bs]
            xb, yb = data.train_x[idx], data.train_y[idx]
            out = model(xb)
            loss = loss_fn(cfg.train.loss, out, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_sum += loss.detach().double() * yb.shape[0]
            wrong += (out.detach().argmax(1) != yb).sum()
            seen += yb.shape[0]
            if b + 1 in point_ends:
                total = float(loss_sum)
                rep.batch_loss(epoch + 1, (b + 1) / n_batches, (total - point_loss) / (seen - point_seen),
                               seen - point_seen)
                point_loss, point_seen = total, seen
            rep.progress(epoch + 1, (b + 1) / n_batches)
        if status == "cancelled":
            break
        train_seconds = time.perf_counter() - t0

        val_loss, val_error = evaluate(model, data.val_x, data.val_y, cfg.train.loss)
        test_loss, test_error = evaluate(model, data.test_x, data.test_y, cfg.train.loss)
        records = probe(model, probe_x)
        moves = opt.take_moves()
        for name, layer, before, n_moves in zip(layer_names, discrete, start_states, moves):
            s = layer.space.num_states
            pair = before.view(-1).to(torch.int64) * s + layer.state.view(-1).to(torch.int64)
            matrix = torch.bincount(pair, minlength=s * s).view(s, s)
            records[name].update(
                transitions=int(matrix.sum() - matrix.diagonal().sum()),
                transition_matrix=matrix.tolist(),
                moves=int(n_moves),
            )
        for name, rec in records.items():
            rec["epoch"] = epoch + 1
            if name not in layer_names:
                rec.update(transitions=None, transition_matrix=None, moves=None)

        select_on = val_error if not math.isnan(val_error) else test_error
        improved = select_on < sel["best_val_error"]
        if improved:
            sel.update(best_epoch=epoch + 1, best_val_error=select_on,
                       test_error_at_best=test_error, since_best=0)
            if restarts:
                best_states = [m.state.clone() for m in discrete]
        else:
            sel["since_best"] += 1
        sel["best_test_error"] = min(sel["best_test_error"], test_error)
        if restarts and best_states and sel["since_best"] >= restarts:
            _random_restart(discrete, best_states, gen_dst)
            sel["since_best"] = 0

        metrics = {
            "epoch": epoch + 1,
            "train_loss": float(loss_sum) / max(seen, 1),
            "train_error": int(wrong) / max(seen, 1),
            "val_loss": val_loss, "val_error": val_error,
            "test_loss": test_loss, "test_error": test_error,
            "lr": lr,
            "epoch_seconds": time.perf_counter() - t0,
            "samples_per_second": seen / train_seconds if train_seconds > 0 else 0.0,
            **aggregate(records),
            "persistent_bytes_per_weight": persistent_bytes_per_weight(model, opt),
        }
        checkpoint = {
            "format": CHECKPOINT_FORMAT,
            "config": cfg.model_dump(mode="json"),
            "epoch": epoch + 1,
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "rng": {"data": gen_data.get_state(), "dst": gen_dst.get_state(),
                    "torch": torch.get_rng_state()},
            "selection": dict(sel),
            "best_states": best_states,
        }
        rep.epoch(metrics, list(records.values()), checkpoint)
        completed = epoch + 1

    return {
        "status": status,
        "epochs_completed": completed,
        # the run summary, as the service stores it (gxnor_core.metrics: every run metric of the catalog)
        **summarize(metrics, sel),
        "num_weights": count_weights(model),
        "num_discrete_weights": sum(m.num_weights for m in discrete),
        "persistent_bytes_per_discrete_weight": (
            opt.persistent_bytes() / max(1, sum(m.num_weights for m in discrete)) if discrete else None
        ),
    }


def persistent_bytes_per_weight(model: GXNORNet, opt: DSTOptimizer | LatentOptimizer) -> float:
    """Bytes kept from one step to the next for the weights of every weight layer / their number: integer
    states (DST), float shadow weights (latent) or float weights (full precision), plus the optimizer's
    per-weight state for each (for DST, its state for the proposals)."""
    floats = [m.weight for m in model.weight_layers().values() if not has_states(m)]
    float_bytes = sum(w.numel() * w.element_size() for w in floats) + optimizer_state_bytes(opt.base, floats)
    return (opt.persistent_bytes() + float_bytes) / count_weights(model)


def _random_restart(layers, best_states, generator: torch.Generator) -> None:
    """The reference code's restart (dead code there, *ours* to enable): every weight jumps,
    with probability 0.8, from its best-epoch state to a uniformly random state, else
    returns to its best-epoch state."""
    for layer, best in zip(layers, best_states):
        jump = torch.rand(best.shape, generator=generator) < 0.8
        rand = torch.randint(0, layer.space.num_states, best.shape, generator=generator)
        layer.state.copy_(torch.where(jump.to(best.device), rand.to(best.device, best.dtype), best))


def load_model(checkpoint_path: str) -> GXNORNet:
    """The network of a checkpoint, in eval mode on the CPU (inputs as docs/METHOD.md §5 says)."""
    ckpt = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{checkpoint_path} is not a GXNOR checkpoint")
    cfg = validate_config(ckpt["config"])
    model = build_model(cfg)
    model.load_state_dict(ckpt["model"])
    return model.eval()
