"""Every registered window is tested the moment it is registered."""

import math

import numpy as np
import pytest
import torch

from gxnor_core import ACTIVATION_PRESETS, WINDOWS, MultiStepActivation, quantize_activation
from gxnor_core.activations import reference_code_activation

# The windows of docs/METHOD.md §2, written out independently of the library (unit step height).
CLOSED_FORM = {
    "rect": lambda u, a: np.where(np.abs(u) <= a, 1 / (2 * a), 0.0),
    "tri": lambda u, a: np.maximum(0.0, a - np.abs(u)) / a**2,
    "gauss": lambda u, a: np.exp(-(u**2) / (2 * a**2)) / (math.sqrt(2 * math.pi) * a),
    "exp": lambda u, a: np.exp(-np.abs(u) / a) / (2 * a),
}
CASES = [(0, 0.0, 1.0), (1, 0.5, 0.5), (1, 0.2, 0.6), (1, 0.0, 0.3), (2, 0.3, 0.4), (3, 0.1, 0.2)]


def closed_form_forward(x: np.ndarray, N: int, r: float) -> np.ndarray:
    if N == 0:
        return np.where(x >= 0, 1.0, -1.0)
    K = 2 ** (N - 1)
    da = 1.0 / K
    levels = np.zeros_like(x)
    for k in range(K):  # one level per step passed: steps at r + k·Δa
        levels += (np.abs(x) > r + k * da)
    return np.sign(x) * da * levels


def closed_form_derivative(x: np.ndarray, N: int, r: float, a: float, window: str) -> np.ndarray:
    g = CLOSED_FORM[window]
    if N == 0:
        return 2.0 * g(x, a)
    K = 2 ** (N - 1)
    da = 1.0 / K
    d = np.zeros_like(x)
    for k in range(K):
        s = r + k * da
        d += da * (g(x - s, a) + g(x + s, a))
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


@pytest.mark.parametrize("window", sorted(WINDOWS))
@pytest.mark.parametrize("N,r,a", CASES)
def test_backward_equals_the_window_formula(window, N, r, a):
    x = (torch.rand(20000, generator=torch.Generator().manual_seed(1)) * 6 - 3).requires_grad_()
    quantize_activation(x, N=N, r=r, a=a, window=window).sum().backward()
    expected = closed_form_derivative(x.detach().double().numpy(), N, r, a, window)
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("window", sorted(WINDOWS))
@pytest.mark.parametrize("N,r,a", CASES)
def test_cpu_kernel_and_torch_ops_agree(window, N, r, a):
    act = MultiStepActivation(N, r, a, window)
    x = torch.randn(5000, generator=torch.Generator().manual_seed(2)) * 2
    y, d = act.forward_and_derivative(x, want_d=True)
    assert torch.equal(y, act.forward(x))
    torch.testing.assert_close(d, act.derivative(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("window", sorted(WINDOWS))
@pytest.mark.parametrize("a", [0.1, 0.5, 2.0])
def test_each_window_integrates_to_the_step_height(window, a):
    u = np.linspace(-60 * a, 60 * a, 1_200_001)
    area = np.trapezoid(WINDOWS[window].tensor(torch.from_numpy(u), a).numpy(), u)
    assert area == pytest.approx(1.0, abs=1e-4)
    v = (u[::1000] + 1e-4 * math.pi).astype(np.float32)  # off the windows' edges
    scalar = np.array([WINDOWS[window].scalar(x, np.float32(a)) for x in v])
    np.testing.assert_allclose(scalar, CLOSED_FORM[window](v.astype(np.float64), np.float32(a)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("window", sorted(WINDOWS))
@pytest.mark.parametrize("N,r,a", CASES)
def test_derivative_integrates_to_the_total_jump(window, N, r, a):
    x = torch.linspace(-40, 40, 800_001, dtype=torch.float32)
    d = MultiStepActivation(N, r, a, window).derivative(x).double().numpy()
    assert np.trapezoid(d, x.double().numpy()) == pytest.approx(2.0, abs=2e-3)  # from -1 to +1


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
