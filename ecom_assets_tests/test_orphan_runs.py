"""orphan_runs: a run whose process is gone is marked failed and gives back its pool slot; a run
whose process still runs is left alone; the next `ecom-assets run` does this before it waits."""

from __future__ import annotations

import os

import dagster as dg
import pytest
from dagster._core.events import EngineEventData

from ecom_assets.definitions import build_definitions
from ecom_assets.one_shot import ingest_landing_files
from ecom_assets.orphan_runs import HOST_TAG, PID_TAG, recover_orphan_runs
from ecom_assets.processes import HOST
from ecom_assets.warehouse_turns import pool_holders
from ecom_assets_tests.conftest import land
from ecom_assets_tests.pool_runs import dead_pid, pool, pooled_instance, started_run


@pytest.fixture
def pooled():
    with pooled_instance() as instance:
        yield instance


def test_a_run_of_a_dead_process_is_marked_failed_and_its_slot_freed(pooled):
    pid = dead_pid()
    run = started_run(pooled, tags={HOST_TAG: HOST, PID_TAG: str(pid), "dagster/partition": "2019-Oct.csv"})
    assert pool_holders(pool(pooled)) == [run.run_id]

    (recovered,) = recover_orphan_runs(pooled)

    assert recovered.run.run_id == run.run_id and recovered.pid == pid
    assert f"run {run.run_id[:8]} (ingest_landing_file, 2019-Oct.csv) was left STARTED by process {pid}" in (
        recovered.describe()
    )
    assert pooled.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
    failure = pooled.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records
    assert f"pid {pid}" in failure[0].event_log_entry.dagster_event.message
    assert pool_holders(pool(pooled)) == [] and not pool(pooled).claimed_slots
    assert recover_orphan_runs(pooled) == []  # nothing left to do


def test_the_pid_dagster_logs_identifies_a_run_without_tags(pooled):
    """Runs the daemon launched carry no tags of ours: the executor's engine event names the pid."""
    pid = dead_pid()
    run = started_run(pooled)
    pooled.report_engine_event(
        f"Executing steps in process (pid: {pid})", run, EngineEventData.in_process(pid, ["bronze__events"])
    )
    assert [r.pid for r in recover_orphan_runs(pooled)] == [pid]
    assert pooled.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE


def test_a_run_whose_process_still_runs_keeps_its_slot(pooled):
    live = started_run(pooled, tags={HOST_TAG: HOST, PID_TAG: str(os.getpid())})
    unknown = started_run(pooled, holds_slot=False)  # no pid recorded anywhere: cannot be judged
    assert recover_orphan_runs(pooled) == []
    for run in (live, unknown):
        assert pooled.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED
    assert [s.run_id for s in pool(pooled).claimed_slots] == [live.run_id]


def test_a_slot_kept_by_a_finished_run_is_freed(pooled):
    run = started_run(pooled, tags={HOST_TAG: HOST, PID_TAG: str(os.getpid())})
    pooled.report_run_failed(run, "marked failed from the UI")
    (recovered,) = recover_orphan_runs(pooled)
    assert recovered.pid is None and "had ended (FAILURE) but still held pool slots" in recovered.describe()
    assert pool_holders(pool(pooled)) == []


def test_the_next_run_recovers_a_killed_runs_slot_and_finishes(paths, pooled):
    """Before the fix the ingest below waited forever at its first step ("Step blocked by limit")."""
    land(paths, "rees46_quirks.csv")
    orphan = started_run(pooled, tags={HOST_TAG: HOST, PID_TAG: str(dead_pid())})
    messages: list[str] = []
    defs = build_definitions(paths)

    ((_, result),) = list(ingest_landing_files(defs, pooled, sorted(paths.landing.iterdir()), messages.append))

    assert result.success
    assert pooled.get_run_by_id(orphan.run_id).status == dg.DagsterRunStatus.FAILURE
    assert any(f"run {orphan.run_id[:8]}" in m and "which is gone" in m for m in messages), messages
    assert pool_holders(pool(pooled)) == []
    assert result.dagster_run.tags[PID_TAG] == str(os.getpid())  # the next recovery can judge this run
