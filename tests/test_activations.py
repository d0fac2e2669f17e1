"""Every registered window is tested the moment it is registered."""

import math

import numpy as np
import pytest
import torch

from gxnor_core import ACTIVATION_PRESETS, WINDOWS, MultiStepActivation, quantize_activation
from gxnor_core.activations import OVERLAPS, reference_code_activation

# The windows of docs/METHOD.md §2, written out independently of the library (unit step height).
CLOSED_FORM = {
    "rect": lambda u, a: np.where(np.abs(u) <= a, 1 / (2 * a), 0.0),
    "tri": lambda u, a: np.maximum(0.0, a - np.abs(u)) / a**2,
    "gauss": lambda u, a: np.exp(-(u**2) / (2 * a**2)) / (math.sqrt(2 * math.pi) * a),
    "exp": lambda u, a: np.exp(-np.abs(u) / a) / (2 * a),
}
# Each window's mass at u ≤ -s (its CDF at -s, s ≥ 0): what the paper's form leaves out of a step's window.
LEFT_TAIL = {
    "rect": lambda s, a: max(0.0, a - s) / (2 * a),
    "tri": lambda s, a: max(0.0, a - s) ** 2 / (2 * a**2),
    "gauss": lambda s, a: 0.5 * math.erfc(s / (a * math.sqrt(2))),
    "exp": lambda s, a: 0.5 * math.exp(-s / a),
}
# (N, r, a): r < a, where the windows of the steps at ±r overlap, and r ≥ a, where (for rect and tri) they do not.
CASES = [(0, 0.0, 1.0), (1, 0.5, 0.5), (1, 0.2, 0.6), (1, 0.0, 0.3), (2, 0.3, 0.4), (3, 0.1, 0.2),
         (1, 1.0, 0.5), (2, 0.75, 0.25)]


def closed_form_forward(x: np.ndarray, N: int, r: float) -> np.ndarray:
    if N == 0:
        return np.where(x >= 0, 1.0, -1.0)
    K = 2 ** (N - 1)
    da = 1.0 / K
    levels = np.zeros_like(x)
    for k in range(K):  # one level per step passed: steps at r + k·Δa
        levels += (np.abs(x) > r + k * da)
    return np.sign(x) * da * levels


def closed_form_derivative(x: np.ndarray, N: int, r: float, a: float, window: str, overlap: str) -> np.ndarray:
    """paper: Σ_k h·g(|x| - s_k); sum: Σ_k h·(g(x - s_k) + g(x + s_k)), the windows at the signed steps."""
    g = CLOSED_FORM[window]
    if N == 0:
        return 2.0 * g(x, a)
    K = 2 ** (N - 1)
    da = 1.0 / K
    d = np.zeros_like(x)
    for k in range(K):
        s = r + k * da
        d += da * (g(np.abs(x) - s, a) if overlap == "paper" else g(x - s, a) + g(x + s, a))
    return d


def test_all_method_windows_are_registered():
    assert set(WINDOWS) == set(CLOSED_FORM)
    for w in WINDOWS.values():
        assert "g(u)" in w.tensor.__doc__  # the equation lives in the docstring


@pytest.mark.parametrize("window", sorted(WINDOWS))
@pytest.mark.parametrize("N,r,a", CASES)
def test_forward_matches_the_step_function(window, N, r, a):
    x = torch.linspace(-3, 3, 6001)
    y = quantize_activation(x, N=N, r=r, a=a, window=window)
    expected = closed_form_forward(x.double().numpy(), N, r)
    np.testing.assert_array_equal(y.numpy(), expected.astype(np.float32))


@pytest.mark.parametrize("overlap", OVERLAPS)
@pytest.mark.parametrize("window", sorted(WINDOWS))
@pytest.mark.parametrize("N,r,a", CASES)
def test_backward_equals_the_window_formula(window, N, r, a, overlap):
    x = (torch.rand(20000, generator=torch.Generator().manual_seed(1)) * 6 - 3).requires_grad_()
    quantize_activation(x, N=N, r=r, a=a, window=window, overlap=overlap).sum().backward()
    expected = closed_form_derivative(x.detach().double().numpy(), N, r, a, window, overlap)
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-5, atol=1e-6)
    # the torch ops (every device but the CPU) give the same closed form
    torch_ops = MultiStepActivation(N, r, a, window, overlap).derivative(x.detach())
    np.testing.assert_allclose(torch_ops.numpy(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("overlap", OVERLAPS)
@pytest.mark.parametrize("window", sorted(WINDOWS))
@pytest.mark.parametrize("N,r,a", CASES)
def test_cpu_kernel_and_torch_ops_agree(window, N, r, a, overlap):
    act = MultiStepActivation(N, r, a, window, overlap)
    x = torch.randn(5000, generator=torch.Generator().manual_seed(2)) * 2
    y, d = act.forward_and_derivative(x, want_d=True)
    assert torch.equal(y, act.forward(x))
    torch.testing.assert_close(d, act.derivative(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("r", [0.0, 0.25, 0.4])
def test_rect_below_a_paper_form_is_one_over_2a_and_the_sum_doubles_it_near_zero(r):
    """r < a, rect: the paper's φ' is 1/(2a) on r - a ≤ |x| ≤ r + a and never more; the summed form is 1/a on
    |x| < a - r (both windows), 1/(2a) further out to r + a."""
    a = 0.5
    x = torch.linspace(-1.5, 1.5, 3001)  # steps of 1e-3, off the edges at ±(a - r) and ±(r + a) by ≥ 2.5e-4
    x = x[((x.abs() - (a - r)).abs() > 2e-4) & ((x.abs() - (r + a)).abs() > 2e-4)].contiguous()
    inner, window = x.abs() < a - r, x.abs() <= r + a
    for overlap, near_zero in (("paper", 1 / (2 * a)), ("sum", 1 / a)):
        for d in (MultiStepActivation(1, r, a, "rect", overlap).forward_and_derivative(x, want_d=True)[1],
                  MultiStepActivation(1, r, a, "rect", overlap).derivative(x)):
            assert torch.all(d[inner] == near_zero), overlap
            assert torch.all(d[window & ~inner] == 1 / (2 * a)) and torch.all(d[~window] == 0), overlap


@pytest.mark.parametrize("window", ["rect", "tri"])
def test_overlap_changes_nothing_when_r_is_at_least_a(window):
    x = torch.randn(5000, generator=torch.Generator().manual_seed(4)) * 2
    for N, r, a in [(1, 1.0, 0.5), (1, 0.5, 0.5), (2, 0.75, 0.25)]:
        paper, summed = (MultiStepActivation(N, r, a, window, o).forward_and_derivative(x, want_d=True)[1]
                         for o in ("paper", "sum"))
        assert torch.equal(paper, summed), (N, r, a)


def test_the_paper_form_is_the_default():
    assert MultiStepActivation().overlap == "paper"
    x = torch.tensor([0.0, 0.1], requires_grad=True)
    quantize_activation(x, N=1, r=0.0, a=0.5).sum().backward()
    assert x.grad.tolist() == [1.0, 1.0]  # 1/(2a), not the summed 2·1/(2a)


@pytest.mark.parametrize("window", sorted(WINDOWS))
@pytest.mark.parametrize("a", [0.1, 0.5, 2.0])
def test_each_window_integrates_to_the_step_height(window, a):
    u = np.linspace(-60 * a, 60 * a, 1_200_001)
    area = np.trapezoid(WINDOWS[window].tensor(torch.from_numpy(u), a).numpy(), u)
    assert area == pytest.approx(1.0, abs=1e-4)
    v = (u[::1000] + 1e-4 * math.pi).astype(np.float32)  # off the windows' edges
    scalar = np.array([WINDOWS[window].scalar(x, np.float32(a)) for x in v])
    np.testing.assert_allclose(scalar, CLOSED_FORM[window](v.astype(np.float64), np.float32(a)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("overlap", OVERLAPS)
@pytest.mark.parametrize("window", sorted(WINDOWS))
@pytest.mark.parametrize("N,r,a", CASES)
def test_derivative_integrates_to_the_total_jump(window, N, r, a, overlap):
    """The summed form integrates to the jump from -1 to +1; the paper's form leaves out, for each step, the
    part of its window beyond x = 0 (what the mirror term would add), twice (x < 0 and x > 0)."""
    x = torch.linspace(-40, 40, 800_001, dtype=torch.float32)
    d = MultiStepActivation(N, r, a, window, overlap).derivative(x).double().numpy()
    missing = 0.0
    if overlap == "paper" and N > 0:
        K = 2 ** (N - 1)
        missing = 2 * sum(LEFT_TAIL[window](r + k / K, a) / K for k in range(K))
    assert np.trapezoid(d, x.double().numpy()) == pytest.approx(2.0 - missing, abs=2e-3)


def test_binary_rect_a1_is_the_bnn_straight_through_estimator():
    x = torch.tensor([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5], requires_grad=True)
    y = quantize_activation(x, N=0, a=1.0, window="rect")
    y.sum().backward()
    assert y.tolist() == [-1, -1, -1, 1, 1, 1, 1]
    assert x.grad.tolist() == [0, 1, 1, 1, 1, 1, 0]


def test_reference_preset_reproduces_the_reference_code_activation():
    x = (torch.rand(50000, generator=torch.Generator().manual_seed(3)) * 5 - 2.5).requires_grad_()
    x_ref = x.detach().clone().requires_grad_()
    y = quantize_activation(x, **ACTIVATION_PRESETS["reference"])
    y_ref = reference_code_activation(x_ref)
    y.sum().backward()
    y_ref.sum().backward()
    assert torch.equal(y, y_ref)
    assert torch.equal(x.grad, x_ref.grad)
    inside = (x.detach().abs() >= 0.5) & (x.detach().abs() <= 1.5)
    assert torch.all(x.grad[inside] == 1) and torch.all(x.grad[~inside] == 0)
