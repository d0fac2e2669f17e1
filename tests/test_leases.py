"""Leases, fencing and the reaper, in-process on a real SQLite file."""

import threading
import time

import pytest
from sqlalchemy import select, update

from app.db import migrate, session_scope
from app.models import EpochMetric, Run
from app.reaper import reap
from app.runs import create_run, default_team_id
from app.settings import Settings
from gxnor_core import validate_config
from worker.runner import execute_run


class Recorder:
    """Stands in for the broker only: remembers which run ids were (re)sent."""

    def __init__(self):
        self.sent = []

    def send_task(self, name, args, queue=None):
        self.sent.append(args[0])


@pytest.fixture()
def settings(tmp_path):
    s = Settings(data_dir=tmp_path / "data", progress_interval_s=0.05, lease_seconds=1.0)
    s.ensure_dirs()
    migrate(s.db_url)
    return s


def new_run(settings, epochs=3, batch_size=20, **cfg):
    config = validate_config({"model": {"hidden": [64]}, "train": {"epochs": epochs, "batch_size": batch_size},
                              **cfg})
    with session_scope(settings.db_url) as s:
        return create_run(s, config, default_team_id(s)).id


def run_row(settings, run_id):
    with session_scope(settings.db_url) as s:
        return s.get(Run, run_id)


def epochs_of(settings, run_id):
    with session_scope(settings.db_url) as s:
        return list(s.scalars(select(EpochMetric.epoch).where(EpochMetric.run_id == run_id)
                              .order_by(EpochMetric.epoch)))


@pytest.mark.slow
def test_a_presumed_dead_attempt_is_fenced_off_and_the_next_one_resumes(settings):
    run_id = new_run(settings, epochs=40, batch_size=100)  # 15 batches an epoch: each writes progress
    outcomes = {}
    first = threading.Thread(target=lambda: outcomes.__setitem__("first", execute_run(run_id, settings)))
    first.start()
    while len(epochs_of(settings, run_id)) < 2:
        time.sleep(0.01)
    # Pretend its worker was presumed dead (a long GC pause, a network partition): the run is requeued
    # exactly as the reaper does it, and a second worker claims it while the first still trains.
    with session_scope(settings.db_url) as s:
        s.execute(update(Run).where(Run.id == run_id).values(status="queued", lease_expires_at=None))
    assert execute_run(run_id, settings) == "succeeded"
    first.join()
    assert outcomes["first"] == "lost"  # its next write was rejected: it stopped
    row = run_row(settings, run_id)
    assert (row.status, row.attempt, row.epochs_done) == ("succeeded", 2, 40)
    assert epochs_of(settings, run_id) == list(range(1, 41))  # none twice, none missing


def test_a_redelivered_message_for_a_running_run_does_nothing(settings):
    run_id = new_run(settings, epochs=30, batch_size=100)
    t = threading.Thread(target=execute_run, args=(run_id, settings))
    t.start()
    while run_row(settings, run_id).status != "running":
        time.sleep(0.01)
    assert execute_run(run_id, settings) == "skipped"
    t.join()
    assert run_row(settings, run_id).attempt == 1
    assert epochs_of(settings, run_id) == list(range(1, 31))


def test_the_reaper_requeues_lapsed_leases_only(settings):
    dead, live = new_run(settings), new_run(settings)
    with session_scope(settings.db_url) as s:
        s.execute(update(Run).where(Run.id == dead).values(status="running", attempt=1, lease_expires_at=1.0))
        s.execute(update(Run).where(Run.id == live).values(status="running", attempt=1,
                                                           lease_expires_at=time.time() + 60))
    broker = Recorder()
    assert reap(settings, broker) == [dead] and broker.sent == [dead]
    assert run_row(settings, dead).status == "queued" and run_row(settings, live).status == "running"
    assert execute_run(dead, settings) == "succeeded"  # resumed by the next worker
    assert run_row(settings, dead).attempt == 2


def test_the_reaper_leaves_live_leases_alone(settings):
    run_id = new_run(settings, epochs=30)
    t = threading.Thread(target=execute_run, args=(run_id, settings))
    t.start()
    deadline = time.time() + 3  # three lease lengths: the heartbeat keeps renewing it
    while t.is_alive() and time.time() < deadline:
        assert reap(settings, Recorder()) == []
        time.sleep(0.1)
    t.join()
    assert run_row(settings, run_id).status == "succeeded"


def test_a_run_that_loses_its_worker_every_time_fails_after_its_budget(settings):
    run_id = new_run(settings)
    broker = Recorder()
    for attempt in (1, 2, 3):
        # A worker claims it and dies at once (as an out-of-memory kill would).
        with session_scope(settings.db_url) as s:
            s.execute(update(Run).where(Run.id == run_id).values(
                status="running", attempt=attempt, lease_expires_at=0.0))
        reap(settings, broker)
    row = run_row(settings, run_id)
    assert row.status == "failed" and "gave up" in row.error and row.attempt == 3
    assert broker.sent == [run_id, run_id]  # requeued twice, then given up
    assert execute_run(run_id, settings) == "skipped"


def test_warm_shutdown_hands_the_run_back_without_spending_its_budget(settings):
    run_id = new_run(settings, epochs=20, batch_size=100)  # the check below reads the database every batch
    stop = threading.Event()

    def stop_after_two_epochs():
        if len(epochs_of(settings, run_id)) >= 2:
            stop.set()
        return stop.is_set()

    assert execute_run(run_id, settings, should_shutdown=stop_after_two_epochs) == "requeue"
    row = run_row(settings, run_id)
    assert (row.status, row.attempt, row.max_attempts, row.lease_expires_at) == ("queued", 1, 4, None)
    assert execute_run(run_id, settings) == "succeeded"
    assert epochs_of(settings, run_id) == list(range(1, 21))
