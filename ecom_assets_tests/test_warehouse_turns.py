"""warehouse_turns: one `ecom-assets run` at a time per ECOM_HOME, a pool wait that says who holds the
slot, and a watch that frees a step waiting on a holder that died."""

from __future__ import annotations

import os
import threading
import time

import pytest

from ecom_assets.orphan_runs import HOST_TAG, PID_TAG
from ecom_assets.processes import HOST
from ecom_assets.resources import WAREHOUSE_POOL
from ecom_assets.warehouse_turns import one_run_at_a_time, pool_holders, wait_for_pool, watching_pool
from ecom_assets_tests.pool_runs import dead_pid, pool, pooled_instance, started_run


@pytest.fixture
def pooled():
    with pooled_instance() as instance:
        yield instance


def test_a_second_run_waits_for_the_first_and_names_it(paths):
    messages: list[str] = []
    entered = threading.Event()

    def second() -> None:
        with one_run_at_a_time(paths, messages.append, poll_seconds=0.05):
            entered.set()

    with one_run_at_a_time(paths, lambda _: None):
        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.5)
        assert not entered.is_set()
    thread.join(timeout=5)
    assert entered.is_set()
    assert messages and f"pid {os.getpid()}" in messages[0] and "Ctrl-C stops" in messages[0]


def test_the_pool_wait_returns_once_an_orphan_is_recovered(pooled):
    orphan = started_run(pooled, tags={HOST_TAG: HOST, PID_TAG: str(dead_pid())})
    messages: list[str] = []
    wait_for_pool(pooled, WAREHOUSE_POOL, messages.append, poll_seconds=0.05)
    assert len(messages) == 1 and orphan.run_id[:8] in messages[0] and "which is gone" in messages[0]


def test_the_pool_wait_names_a_live_holder_until_it_ends(pooled):
    holder = started_run(pooled, tags={HOST_TAG: HOST, PID_TAG: str(os.getpid())})
    messages: list[str] = []
    release = threading.Timer(0.5, pooled.event_log_storage.free_concurrency_slots_for_run, [holder.run_id])
    release.start()
    started = time.monotonic()
    wait_for_pool(pooled, WAREHOUSE_POOL, messages.append, poll_seconds=0.05)
    assert 0.4 < time.monotonic() - started < 5
    assert len(messages) == 1 and f"taken by run {holder.run_id[:8]} (ingest_landing_file) STARTED" in messages[0]


def test_the_watch_recovers_a_holder_that_dies_while_a_step_waits(pooled):
    orphan = started_run(pooled, tags={HOST_TAG: HOST, PID_TAG: str(dead_pid())})
    run_id = started_run(pooled, tags={HOST_TAG: HOST, PID_TAG: str(os.getpid())}, holds_slot=False).run_id
    storage = pooled.event_log_storage
    assert not storage.claim_concurrency_slot(WAREHOUSE_POOL, run_id, "silver_events").is_claimed  # queued
    messages: list[str] = []
    with watching_pool(pooled, run_id, WAREHOUSE_POOL, messages.append, poll_seconds=0.05):
        deadline = time.monotonic() + 5
        while pool_holders(pool(pooled)) != [run_id] and time.monotonic() < deadline:
            time.sleep(0.05)
    assert pool_holders(pool(pooled)) == [run_id]  # the slot went to the waiting step
    assert any(orphan.run_id[:8] in m and "which is gone" in m for m in messages), messages
