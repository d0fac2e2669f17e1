"""bench.sse_load judges its targets from the measured windows: each verdict turns on its own figure."""

import copy

from bench.sse_load import verdicts

PHASE = {"p99_ms": 120.0, "5xx": 0, "errors": 0, "healthz": {"p99_ms": 5.0, "max_ms": 9.0}}
RESULT = {"before": dict(PHASE), "loaded": dict(PHASE, p99_ms=140.0), "after_0_5s": dict(PHASE, p99_ms=131.0),
          "after_5_10s": dict(PHASE),
          "viewers": {"viewers": 1000, "open": 1000, "missing": 0, "delivery_max_s": 0.7}}


def changed(path: tuple, value) -> dict:
    result = copy.deepcopy(RESULT)
    target = result
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return verdicts(result)


def test_a_run_within_every_target_meets_them_all():
    assert verdicts(RESULT) == dict.fromkeys(verdicts(RESULT), True)


def test_each_target_fails_on_its_own_figure():
    cases = {("loaded", "p99_ms"): (250.0, "read_p99_loaded"),
             ("loaded", "healthz", "max_ms"): (100.0, "healthz_loaded"),
             ("viewers", "missing"): (1, "every_epoch_within_2s"),
             ("viewers", "open"): (999, "every_epoch_within_2s"),
             ("viewers", "delivery_max_s"): (2.01, "every_epoch_within_2s"),
             ("after_5_10s", "5xx"): (1, "zero_5xx"),
             ("before", "errors"): (2, "zero_5xx"),
             ("after_0_5s", "p99_ms"): (132.1, "recovered_0_5s")}  # 10 % over the 120 ms before viewers
    for path, (value, name) in cases.items():
        met = changed(path, value)
        assert not met[name], path
        assert all(v for k, v in met.items() if k != name), path
