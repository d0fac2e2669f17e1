import pytest
import torch


@pytest.fixture(autouse=True)
def _deterministic_threads():
    """Tests compare results bit for bit: keep torch's thread count fixed."""
    torch.set_num_threads(2)
    yield
