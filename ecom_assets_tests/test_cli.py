"""cli: `ecom-assets run` exits non-zero with a message that says what failed or what to do, and
stops at once on Ctrl-C or SIGTERM while it waits for its turn at the warehouse."""

from __future__ import annotations

import signal
import subprocess
import time

import dagster as dg

from ecom_assets.cli import INTERRUPTED, main
from ecom_assets.one_shot import init_dagster_home
from ecom_assets.orphan_runs import HOST_TAG, PID_TAG
from ecom_assets.processes import HOST
from ecom_assets.resources import WAREHOUSE_POOL
from ecom_assets_tests.cli_process import CliProcess
from ecom_assets_tests.conftest import land
from ecom_assets_tests.pool_runs import dead_pid, started_run


def test_run_reports_a_failed_step_and_exits_non_zero(paths, monkeypatch, capsys):
    land(paths, "rees46_quirks.csv")
    monkeypatch.setenv("ECOM_DUCKDB_MEMORY_LIMIT", "plenty")  # not a size: DuckDB refuses to open
    assert main(["run"]) == 1
    assert "FAILED" in capsys.readouterr().err


def test_run_without_files_says_what_to_do(paths, capsys):
    assert main(["run"]) == 2
    assert "ecom-assets generate" in capsys.readouterr().err


def test_init_home_fails_the_runs_a_killed_process_left(paths, capsys):
    """`make dev` starts with `init-home`: after a reboot, the daemon's runs must not wait for ever."""
    init_dagster_home(paths)
    with dg.DagsterInstance.get() as instance:
        instance.event_log_storage.initialize_concurrency_limit_to_default(WAREHOUSE_POOL)
        run = started_run(instance, tags={HOST_TAG: HOST, PID_TAG: str(dead_pid())})
    assert main(["init-home"]) == 0
    assert f"run {run.run_id[:8]} (ingest_landing_file) was left STARTED" in capsys.readouterr().err
    with dg.DagsterInstance.get() as instance:
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE


def test_a_run_waiting_for_the_warehouse_says_so_and_stops_on_sigterm(paths):
    """Another live process's run holds the warehouse slot: `ecom-assets run` says who it waits for,
    sleeps meanwhile, and ends promptly on SIGTERM, as on Ctrl-C (it used to spin and ignore both)."""
    land(paths, "rees46_quirks.csv")
    init_dagster_home(paths)  # dagster.yaml: the warehouse pool has one slot
    holder = subprocess.Popen(["sleep", "300"])
    waiting = None
    try:
        with dg.DagsterInstance.get() as instance:
            instance.event_log_storage.initialize_concurrency_limit_to_default(WAREHOUSE_POOL)
            run = started_run(instance, tags={HOST_TAG: HOST, PID_TAG: str(holder.pid)})
        waiting = CliProcess("run")
        line = waiting.wait_for("waiting for a slot of the 'warehouse' pool", timeout=90)
        assert f"taken by run {run.run_id[:8]} (ingest_landing_file) STARTED" in line and "Ctrl-C stops" in line
        cpu = waiting.cpu_seconds()
        time.sleep(2)
        assert waiting.cpu_seconds() - cpu < 0.5  # sleeps while it waits
        sent = time.monotonic()
        waiting.process.send_signal(signal.SIGTERM)
        assert waiting.finish(timeout=15) == INTERRUPTED
        assert time.monotonic() - sent < 5
        assert "interrupted (SIGTERM): stopped" in waiting.output
        with dg.DagsterInstance.get() as instance:  # the live holder's run is left alone
            assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED
    finally:
        holder.kill()
        holder.wait()
        if waiting is not None:
            waiting.kill()
