"""MaxPool2x2 is nn.MaxPool2d(2) bit for bit: values, indices, gradients, and a training run's every state."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gxnor_core.config import validate_config
from gxnor_core.data import load_dataset
from gxnor_core.dst import DSTOptimizer
from gxnor_core.models import build_model
from gxnor_core.pooling import MaxPool2x2, _pool_with_indices, max_pool2x2

SHAPES = [(3, 4, 8, 8), (2, 3, 7, 9), (1, 1, 2, 2), (5, 2, 3, 5), (4, 16, 24, 24)]


def _inputs(shape, kind: str, gen: torch.Generator) -> torch.Tensor:
    if kind == "ties":  # few distinct values: most windows hold their maximum more than once
        return torch.randint(-2, 3, shape, generator=gen).float()
    x = torch.randn(shape, generator=gen)
    if kind == "nan":
        x[x > 1.2] = float("nan")
        x[x < -1.2] = float("-inf")
    return x


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", ["random", "ties", "nan"])
def test_values_indices_and_gradients_are_pytorchs(shape, kind):
    gen = torch.Generator().manual_seed(sum(shape))
    x = _inputs(shape, kind, gen)
    ref, ref_idx = F.max_pool2d(x, 2, return_indices=True)
    out, idx = _pool_with_indices(x)
    assert torch.equal(idx, ref_idx)
    assert torch.equal(out.isnan(), ref.isnan()) and torch.equal(out.nan_to_num(), ref.nan_to_num())

    grad = torch.randn(ref.shape, generator=gen)
    grad[grad > 1.0] = -0.0  # PyTorch's backward adds to a zero: the input gradient holds +0.0 there
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    F.max_pool2d(a, 2).backward(grad)
    max_pool2x2(b).backward(grad)
    assert torch.equal(a.grad, b.grad) and torch.equal(a.grad.signbit(), b.grad.signbit())


def test_inputs_it_does_not_handle_go_to_pytorch():
    for x in (torch.randn(2, 3, 6, 6, dtype=torch.float64), torch.randn(2, 3, 6, 6).half(),
              torch.randn(0, 3, 6, 6)):  # other dtypes, an empty batch
        assert torch.equal(max_pool2x2(x), F.max_pool2d(x, 2)) and max_pool2x2(x).dtype == x.dtype
    with pytest.raises(RuntimeError, match="too small"):  # H < 2: PyTorch's own error
        max_pool2x2(torch.randn(2, 3, 1, 6))
    assert isinstance(MaxPool2x2(), nn.MaxPool2d) and MaxPool2x2().kernel_size == 2


def test_channels_last_input_without_grad_and_its_gradient_are_pytorchs():
    """A channels-last input (made contiguous for the numba pass), the no-grad path, and its input gradient."""
    gen = torch.Generator().manual_seed(3)
    strided = torch.randint(-2, 3, (2, 6, 6, 4), generator=gen).float().permute(0, 3, 1, 2)
    with torch.no_grad():
        assert torch.equal(MaxPool2x2()(strided), F.max_pool2d(strided, 2))
    a, b = strided.clone().requires_grad_(), strided.detach().requires_grad_()
    grad = torch.randn(2, 4, 3, 3, generator=gen)
    F.max_pool2d(a, 2).backward(grad)
    max_pool2x2(b).backward(grad)
    assert torch.equal(a.grad, b.grad)


def _train_steps(pool_cls, steps: int = 6) -> dict[str, torch.Tensor]:
    cfg = validate_config({"dataset": {"name": "mnist5k"}, "model": {"arch": "mnist_cnn", "width": 0.25},
                           "train": {"batch_size": 50}})
    data = load_dataset(cfg.dataset)
    torch.manual_seed(0)
    model = build_model(cfg, data.input_shape)
    for block in model.blocks.values():
        for i, module in enumerate(block):
            if isinstance(module, nn.MaxPool2d):
                block[i] = pool_cls()
    opt = DSTOptimizer(model, cfg.dst.optimizer, cfg.train.lr, cfg.dst.m, torch.Generator().manual_seed(1))
    model.train()
    for b in range(steps):
        x, y = data.train_x[b * 50:(b + 1) * 50], data.train_y[b * 50:(b + 1) * 50]
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_a_network_trains_to_the_same_states_with_either_pool():
    """DST states, BN statistics and parameters after several steps: every bit equal (a difference in one
    gradient would move a state through DST's thresholds, or change a BN parameter)."""
    mine, theirs = _train_steps(MaxPool2x2), _train_steps(lambda: nn.MaxPool2d(2))
    assert mine.keys() == theirs.keys()
    for key in mine:
        assert torch.equal(mine[key], theirs[key]), key
