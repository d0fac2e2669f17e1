import contextlib
import io
import logging
import os
import subprocess
import threading
import warnings
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
    """Tests compare results bit for bit: keep torch's thread count fixed — at one: two test processes share
    the machine's cores with the servers and workers they start, and a second thread per process only waited
    at every parallel region's barrier for a descheduled partner (an in-process digits epoch took 7–13 s with
    two threads on a loaded 2-core machine, 0.1 s with one)."""
    torch.set_num_threads(1)
    yield


@pytest.fixture()
def gxnor_here():
    """``gxnor ARGS`` run in this process, answered as ``subprocess.run`` answers for the real command (exit
    status, stdout, stderr — where warnings, and logged warnings, land as they would there) without the seconds
    each new interpreter spends loading PyTorch.  Each command group keeps tests of the real process too."""
    from gxnor_cli import main

    def run(*args, cwd=None) -> subprocess.CompletedProcess:
        out, err, here, env = io.StringIO(), io.StringIO(), os.getcwd(), dict(os.environ)
        umask = os.umask(0o022)  # (read it; the service commands set theirs, and their GXNOR_* variables)
        os.umask(umask)
        logged = logging.StreamHandler(err)  # what Python's last-resort handler would print
        logged.setLevel(logging.WARNING)
        command = threading.get_ident()  # not a test server's thread in this process
        logged.addFilter(lambda record: record.thread == command)
        logging.getLogger().addHandler(logged)
        try:
            os.chdir(cwd or here)
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
                    warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("default")  # then an interpreter's default filters (each added in front)
                for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
                    warnings.simplefilter("ignore", category)
                try:
                    code = main([str(a) for a in args])
                except SystemExit as exc:  # argparse's usage errors
                    code = exc.code
        finally:
            os.chdir(here)
            os.umask(umask)
            os.environ.clear()
            os.environ.update(env)
            logging.getLogger().removeHandler(logged)
        err.writelines(warnings.formatwarning(w.message, w.category, w.filename, w.lineno, w.line) for w in caught)
        return subprocess.CompletedProcess(["gxnor", *args], code or 0, out.getvalue(), err.getvalue())

    return run
