import math

import pytest
import torch

from gxnor_core import DiscreteSpace, dst_update
from gxnor_core.dst import dst_apply, dst_update_torch


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("N", [0, 1, 2, 7])
def test_dst_never_leaves_the_space(N):
    space = DiscreteSpace(N, 1.0)
    g = _gen()
    idx = torch.randint(0, space.num_states, (50_000,), generator=g).to(space.index_dtype)
    for scale in (1e-3, 0.3, 5.0, 1e6):
        dw = torch.randn(50_000, generator=g) * scale
        dst_update(idx, dw, space, m=3.0, generator=g)
        assert idx.dtype == space.index_dtype
        assert int(idx.min()) >= 0 and int(idx.max()) <= space.max_index


def test_whole_steps_move_deterministically():
    space = DiscreteSpace(3, 1.0)  # Δz = 0.25, states 0..8
    idx = torch.full((6,), 4, dtype=space.index_dtype)
    dw = torch.tensor([0.25, -0.5, 0.75, -1.0, 2.0, -3.0])  # κ = 1, -2, 3, -4, 8→clip, -12→clip
    for seed in range(5):
        out = dst_update(idx.clone(), dw, space, m=3.0, generator=_gen(seed))
        assert out.tolist() == [5, 2, 7, 0, 8, 0]


def test_zero_proposal_never_moves():
    space = DiscreteSpace(1)
    idx = torch.randint(0, 3, (10_000,), generator=_gen()).to(torch.int8)
    before = idx.clone()
    moves = dst_apply(idx, torch.zeros(10_000), space, m=100.0, generator=_gen(1))
    assert moves == 0 and torch.equal(idx, before)


@pytest.mark.parametrize("m", [0.5, 3.0, 10.0])
@pytest.mark.parametrize("frac", [0.05, 0.3, 0.7])
@pytest.mark.parametrize("direction", [1, -1])
def test_transition_frequency_is_tanh_of_m_nu(m, frac, direction):
    space = DiscreteSpace(2, 1.0)  # Δz = 0.5
    n = 200_000
    idx = torch.full((n,), 2, dtype=torch.int8)
    dw = torch.full((n,), direction * frac * space.step)
    dst_update(idx, dw, space, m=m, generator=_gen(7))
    moved = (idx != 2)
    assert torch.all(idx[moved] == 2 + direction)  # never more than the one extra step
    p = math.tanh(m * frac)
    tolerance = 5 * math.sqrt(p * (1 - p) / n) + 1e-4
    assert float(moved.float().mean()) == pytest.approx(p, abs=tolerance)


def test_same_generator_state_gives_the_same_result_and_cpu_kernel_equals_torch_ops():
    space = DiscreteSpace(1)
    idx0 = torch.randint(0, 3, (100_003,), generator=_gen()).to(torch.int8)
    dw = torch.randn(100_003, generator=_gen(5)) * 0.4
    a = dst_update(idx0.clone(), dw, space, 3.0, _gen(11))
    b = dst_update(idx0.clone(), dw, space, 3.0, _gen(11))
    c = dst_update(idx0.clone(), dw, space, 3.0, _gen(12))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    seed = int(torch.randint(0, 2**32, (1,), generator=_gen(11), dtype=torch.int64))
    ref, moves = dst_update_torch(idx0.clone(), dw, space, 3.0, seed)
    assert torch.equal(a, ref)
    assert moves == int((ref.long() - idx0.long()).abs().sum())


def test_dst_refuses_float_states():
    with pytest.raises(TypeError):
        dst_update(torch.zeros(3), torch.zeros(3), DiscreteSpace(1), 3.0)


@pytest.mark.parametrize("N", [1, 2, 7])
@pytest.mark.parametrize("n", [1, 7, 8, 9, 15, 16, 17, 31, 33, 1000, 65_541])
def test_every_cpu_kernel_equals_the_torch_ops_to_the_bit(N, n):
    """The plain loop and the blocks of eight and sixteen written in IR, reading the table by loads or by a
    gather (``dst.KERNELS``), give the torch ops' states and moves: sizes around both block widths, int8 and
    int16 states, proposals from a ten-thousandth of a step (training's: the kernels skip the table for most
    blocks) to many steps."""
    import numpy as np

    from gxnor_core import dst

    space = DiscreteSpace(N, 1.0)
    g = _gen(n + N)
    idx0 = torch.randint(0, space.num_states, (n,), generator=g).to(space.index_dtype)
    for scale in (1e-4, 1e-2, 0.4, 3.0):
        dw = torch.randn(n, generator=g) * scale * space.step
        seed = 1234567 + n
        ref, moves = dst_update_torch(idx0.clone(), dw, space, 3.0, seed)
        for name, kernel in dst.KERNELS.items():
            idx = idx0.clone()
            got = kernel(idx.numpy(), dw.numpy(), np.float32(1.0 / space.step), dst._interval_table(3.0), seed,
                         space.max_index)
            assert torch.equal(idx, ref) and got == moves, (name, scale)


@pytest.mark.parametrize("m", [1e-41, 1e-40, 1e-30, 1e-6, 0.5, 3.0, 50.0, 100.0])
def test_the_cap_that_lets_the_kernels_skip_the_table_is_above_every_interpolated_probability(m):
    """The CPU kernels read interval j's table entry only where u ≤ (j + 1)·τ₁·_CAP_MARGIN (``dst._CAP_MARGIN``),
    which is exact only if every u < p is under that cap: u is 0 or at least 2⁻²⁴, so p ≤ cap is needed wherever
    p > 2⁻²⁴ (and cap ≥ 0 everywhere).  p grows with x inside an interval (its rise is ≥ 0), so its largest value
    is at the last float32 x below j + 1: computed in float32 as the kernels do, for every interval of the
    table, over config's range of m (0 < m ≤ 100; the smallest have a subnormal τ₁, or one that rounds to 0)."""
    import numpy as np

    from gxnor_core import dst

    table = dst._interval_table(m)
    L = table.size // 2
    j = np.arange(L)
    x = np.nextafter((j + 1).astype(np.float32), np.float32(0))
    p = table[2 * j] + (x - j.astype(np.float32)) * table[2 * j + 1]
    cap = (j + 1).astype(np.float32) * (table[1] * np.float32(dst._CAP_MARGIN))
    assert p.dtype == cap.dtype == np.float32
    assert (cap >= 0).all()
    assert ((p <= cap) | (p <= np.float32(2.0**-24))).all(), int(np.argmax((p > cap) & (p > 2.0**-24)))


def test_a_uniform_number_of_zero_moves_a_weight_even_where_the_cap_rounds_to_zero():
    """m = 10⁻⁴¹: τ₁ rounds to 0 in float32 (so the cap is 0) while later table entries stay positive; weight 0
    of seed 0 draws u = 0 (its hash input is 0), which is under p — every kernel moves it, as the torch ops do."""
    import numpy as np

    from gxnor_core import dst

    m, space = 1e-41, DiscreteSpace(1, 1.0)
    table = dst._interval_table(m)
    assert table[1] == 0 and table[2 * 16000] > 0
    idx0 = torch.ones(16, dtype=space.index_dtype)
    dw = torch.full((16,), 0.99 * space.step)
    ref, moves = dst_update_torch(idx0.clone(), dw, space, m, 0)
    assert moves >= 1
    for name, kernel in dst.KERNELS.items():
        idx = idx0.clone()
        got = kernel(idx.numpy(), dw.numpy(), np.float32(1.0 / space.step), table, 0, space.max_index)
        assert torch.equal(idx, ref) and got == moves, name


def test_proposals_that_are_not_finite_leave_every_state_in_the_space_alike_on_every_path():
    """NaN, ±inf and κ beyond any integer type: no read outside the table, states stay in the space, and both
    CPU kernels and the torch ops agree (κ clamped to ±(max_index + 1): a NaN proposal moves its weight to
    state 0, an infinite or huge one to the end it points to).  27 weights: three blocks of eight and a tail
    of 3, one block of sixteen and a tail of 11."""
    import numpy as np

    from gxnor_core import dst

    space = DiscreteSpace(2, 1.0)
    dw = torch.tensor([float("nan"), float("inf"), -float("inf"), 1e30, -1e30, 3e9, 0.25, -0.0, 0.5] * 3)
    idx0 = torch.full(dw.shape, 2, dtype=space.index_dtype)
    ref, ref_moves = dst_update_torch(idx0.clone(), dw, space, 3.0, 99)
    assert ref.tolist()[:6] == [0, 4, 0, 4, 0, 4]
    for name, kernel in dst.KERNELS.items():
        idx = idx0.clone()
        moves = kernel(idx.numpy(), dw.numpy(), np.float32(1.0 / space.step), dst._interval_table(3.0), 99,
                       space.max_index)
        assert torch.equal(idx, ref) and moves == ref_moves, name


def test_the_dst_kernel_is_the_fastest_measured(monkeypatch):
    """``_kernel`` times every kernel and keeps the fastest: each one, with the others slowed by 2 ms a call,
    is the one chosen."""
    import time

    from gxnor_core import dst

    def slowed(kernel):
        def run(*args):
            time.sleep(0.002)
            return kernel(*args)
        return run

    real = dict(dst.KERNELS)
    try:
        for fast in real:
            kernels = {name: (k if name == fast else slowed(k)) for name, k in real.items()}
            monkeypatch.setattr(dst, "KERNELS", kernels)
            dst._kernel.cache_clear()
            assert dst._kernel() is kernels[fast]
    finally:
        dst._kernel.cache_clear()  # later tests measure the real kernels
