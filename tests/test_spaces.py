import pytest
import torch

from gxnor_core import DiscreteSpace


@pytest.mark.parametrize("N,expected", [
    (0, [-1.0, 1.0]),
    (1, [-1.0, 0.0, 1.0]),
    (2, [-1.0, -0.5, 0.0, 0.5, 1.0]),
])
def test_states_are_evenly_spaced_in_minus_h_h(N, expected):
    space = DiscreteSpace(N, 1.0)
    assert space.states.tolist() == expected
    assert space.num_states == 2**N + 1


@pytest.mark.parametrize("N", range(9))
def test_index_and_value_round_trip_and_dtype(N):
    space = DiscreteSpace(N, 0.5)
    idx = torch.arange(space.num_states, dtype=space.index_dtype)
    assert torch.equal(space.index(space.value(idx)), idx)
    assert space.index_dtype == (torch.int8 if N <= 6 else torch.int16)
    assert space.step == pytest.approx(1.0 / 2**N)


def test_index_moves_to_the_nearest_state_and_clips():
    space = DiscreteSpace(1, 2.0)
    x = torch.tensor([-5.0, -1.2, -0.9, 0.2, 0.99, 1.01, 7.0])
    assert space.value(space.index(x)).tolist() == [-2.0, -2.0, 0.0, 0.0, 0.0, 2.0, 2.0]


def test_invalid_spaces_are_rejected():
    with pytest.raises(ValueError):
        DiscreteSpace(9)
    with pytest.raises(ValueError):
        DiscreteSpace(1, 0.0)


@pytest.mark.parametrize("N", range(9))
def test_the_compiled_values_are_the_torch_ops_to_the_bit(N):
    """A large CPU state tensor takes ``value``'s compiled loop: every state of the space, at scales whose steps
    round in float32, gives the torch ops' bits (float32 n·Δz, then − H)."""
    from gxnor_core import spaces

    g = torch.Generator().manual_seed(N)
    for H in [1.0, 0.5, 0.3, 3.3, 1e-3, 0.7071, *torch.rand(8, generator=g).mul(5).add(1e-3).tolist()]:
        space = DiscreteSpace(N, H)
        every = torch.arange(space.num_states, dtype=space.index_dtype)
        idx = every.repeat(spaces.COMPILED_VALUES // space.num_states + 1).reshape(-1, 1)  # a compiled-size tensor
        got = space.value(idx)
        want = torch.mul(idx, space.step).to(torch.float32).sub_(space.H)
        assert idx.numel() >= spaces.COMPILED_VALUES and got.shape == idx.shape and got.dtype == torch.float32
        assert torch.equal(got.view(torch.int32), want.view(torch.int32)), H
