"""warehouse_lock: a writer waits, sleeping, while another process writes the lake, says whom it
waits for, and names that process when it gives up. Readers never wait."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
from dagster_duckdb import DuckDBResource

from ecom_assets.lakehouse.lake import lake_lock_file
from ecom_assets.lakehouse.warehouse_lock import WarehouseLocked, held
from ecom_assets.resources import build_resources

HOLD = """
import sys, time
from pathlib import Path
from ecom_assets.lakehouse.warehouse_lock import held
with held(Path(sys.argv[1]), timeout_seconds=30, log=print):
    print("holding", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def hold(lock_file: Path, seconds: float) -> subprocess.Popen:
    """Another process writing the lake, as a run does."""
    writer = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(lock_file), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout.readline().strip() == "holding"
    return writer


def test_a_writer_gives_up_naming_the_process_that_holds_the_lock(tmp_path):
    lock_file = tmp_path / "lake.lock"
    writer = hold(lock_file, 60)
    messages: list[str] = []
    try:
        cpu, wall = time.process_time(), time.monotonic()
        with (
            pytest.raises(WarehouseLocked) as raised,
            held(lock_file, timeout_seconds=2, log=messages.append, report_every_seconds=1),
        ):
            pass
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    finally:
        writer.kill()
        writer.wait()
    assert f"being written by pid {writer.pid} ({sys.executable} -c" in str(raised.value)
    assert "ECOM_WAREHOUSE_LOCK_TIMEOUT_SECONDS" in str(raised.value)
    assert 2 <= wall < 5
    assert cpu < 0.5 * wall  # it sleeps between attempts: no busy spin
    assert len(messages) >= 2 and f"waiting for the warehouse write lock held by pid {writer.pid}" in messages[0]


def test_a_writer_proceeds_once_the_other_is_done_and_a_killed_holder_frees_the_lock(tmp_path):
    lock_file = tmp_path / "lake.lock"
    writer = hold(lock_file, 1.0)
    messages: list[str] = []
    started = time.monotonic()
    with held(lock_file, timeout_seconds=30, log=messages.append):
        waited = time.monotonic() - started
    writer.wait()
    assert 0.5 < waited < 10
    assert len(messages) == 1
    killed = hold(lock_file, 60)
    killed.kill()
    killed.wait()
    with held(lock_file, timeout_seconds=2, log=messages.append):
        pass  # the kernel dropped the dead process's lock


def test_the_lock_is_reentrant_in_a_thread(tmp_path):
    lock_file = tmp_path / "lake.lock"
    with held(lock_file, timeout_seconds=1, log=print), held(lock_file, timeout_seconds=1, log=print):
        assert lock_file.read_text().split()[0].isdigit()


def test_a_reader_is_never_blocked_by_a_writer(paths):
    warehouse = build_resources(paths)["duckdb"]
    with warehouse.get_connection() as con:
        con.execute("CREATE TABLE gold.t AS SELECT 1 AS x")
    writer = hold(lake_lock_file(paths.lake_catalog), 60)
    try:
        started = time.monotonic()
        with warehouse.read_connection() as con:
            assert con.execute("SELECT x FROM gold.t").fetchall() == [(1,)]
        assert time.monotonic() - started < 10
    finally:
        writer.kill()
        writer.wait()


def test_a_reader_of_a_home_with_no_warehouse_is_told_what_to_run(paths):
    with pytest.raises(FileNotFoundError, match="ecom-assets run"), build_resources(paths)["duckdb"].read_connection():
        pass


def test_a_step_says_at_info_that_it_waits_and_fails_naming_the_holder(paths, instance, monkeypatch):
    """Through the pipeline's resource: the wait is in the run's log, the timeout is a setting."""
    monkeypatch.setenv("ECOM_WAREHOUSE_LOCK_TIMEOUT_SECONDS", "2")
    warehouse = build_resources(paths)["duckdb"]
    writer = hold(lake_lock_file(paths.lake_catalog), 60)

    @dg.asset
    def a_writer(duckdb: DuckDBResource) -> None:
        with duckdb.get_connection() as con:
            con.execute("CREATE TABLE gold.t AS SELECT 1 AS x")

    try:
        result = dg.materialize([a_writer], resources={"duckdb": warehouse}, instance=instance, raise_on_error=False)
    finally:
        writer.kill()
        writer.wait()
    assert not result.success
    infos = [e.user_message for e in instance.all_logs(result.run_id) if e.level == logging.INFO]
    assert any(f"waiting for the warehouse write lock held by pid {writer.pid}" in m for m in infos), infos
    (failure,) = result.get_step_failure_events()
    error = failure.step_failure_data.error
    while error.cls_name != "WarehouseLocked" and error.cause is not None:
        error = error.cause
    assert error.cls_name == "WarehouseLocked" and f"being written by pid {writer.pid}" in error.message


def test_expiring_snapshots_deletes_the_files_of_rewritten_tables_and_keeps_the_data(paths, instance):
    from ecom_assets.definitions import build_definitions
    from ecom_assets.lakehouse import lake

    warehouse = build_resources(paths)["duckdb"]
    data = lake.lake_data_path(warehouse.database_path)
    with warehouse.get_connection() as con:
        for rows in (100_000, 200_000, 300_000):  # each rewrite leaves the previous files behind
            con.execute(f"CREATE OR REPLACE TABLE gold.t AS SELECT range AS x FROM range({rows})")
        rewritten = lake.data_bytes(data)
        lake.expire_old_snapshots(con, keep_hours=0)
        assert lake.data_bytes(data) < rewritten / 2
        assert con.execute("SELECT count(*) FROM gold.t").fetchone()[0] == 300_000
    job = build_definitions(paths).resolve_job_def("maintain_lake")
    assert job.execute_in_process(instance=instance).success
