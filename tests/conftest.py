from pathlib import Path

import pytest
import torch

TESTS = Path(__file__).resolve().parent
# Whole folders of slow tests: a browser, real `gxnor` processes, PostgreSQL and Redis. Slow tests elsewhere
# carry @pytest.mark.slow themselves. `pytest -m "not slow"` is the fast lane (README, Development).
SLOW_FOLDERS = {"browser", "integration", "faults"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if SLOW_FOLDERS & set(item.path.relative_to(TESTS).parts[:-1]):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _deterministic_threads():
    """Tests compare results bit for bit: keep torch's thread count fixed."""
    torch.set_num_threads(2)
    yield
