"""warehouse_lock: a writer waits, sleeping, while another process holds the warehouse file, says
whom it waits for, and names that process when it gives up."""

from __future__ import annotations

import logging
import subprocess
import sys
import time

import dagster as dg
import duckdb
import pytest
from dagster_duckdb import DuckDBResource

from ecom_assets.lakehouse.warehouse_lock import WarehouseLocked, connect
from ecom_assets.resources import build_resources

HOLD = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
"""


@pytest.fixture
def database(tmp_path) -> str:
    path = str(tmp_path / "warehouse.duckdb")
    duckdb.connect(path).close()
    return path


def hold(database: str, seconds: float) -> subprocess.Popen:
    """Another process reading the warehouse, as an analyst's notebook or the app does."""
    reader = subprocess.Popen([sys.executable, "-c", HOLD, database, str(seconds)], stdout=subprocess.PIPE, text=True)
    assert reader.stdout.readline().strip() == "holding"
    return reader


def test_a_writer_gives_up_naming_the_process_that_holds_the_lock(database):
    reader = hold(database, 60)
    messages: list[str] = []
    try:
        cpu, wall = time.process_time(), time.monotonic()
        with pytest.raises(WarehouseLocked) as raised:
            connect(database, {}, timeout_seconds=2, log=messages.append, report_every_seconds=1)
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    finally:
        reader.kill()
        reader.wait()
    assert f"locked by pid {reader.pid} ({sys.executable} -c" in str(raised.value)
    assert "ECOM_WAREHOUSE_LOCK_TIMEOUT_SECONDS" in str(raised.value)
    assert 2 <= wall < 5
    assert cpu < 0.5 * wall  # it sleeps between attempts: no busy spin
    assert len(messages) >= 2 and f"waiting for the warehouse lock held by pid {reader.pid}" in messages[0]


def test_a_writer_proceeds_once_the_reader_is_done(database):
    reader = hold(database, 1.0)
    messages: list[str] = []
    try:
        started = time.monotonic()
        con = connect(database, {}, timeout_seconds=30, log=messages.append)
        con.execute("CREATE TABLE t AS SELECT 1 AS x")
        con.close()
    finally:
        reader.kill()
        reader.wait()
    assert 0.5 < time.monotonic() - started < 10
    assert len(messages) == 1


def test_other_errors_are_not_waited_on(tmp_path):
    with pytest.raises(duckdb.Error):
        connect(str(tmp_path / "warehouse.duckdb"), {"memory_limit": "plenty"}, timeout_seconds=30, log=print)


def test_a_step_says_at_info_that_it_waits_and_fails_naming_the_holder(paths, instance, monkeypatch):
    """Through the pipeline's resource: the wait is in the run's log, the timeout is a setting."""
    monkeypatch.setenv("ECOM_WAREHOUSE_LOCK_TIMEOUT_SECONDS", "2")
    warehouse = build_resources(paths)["duckdb"]
    with warehouse.get_connection():
        pass  # the file exists
    reader = hold(str(paths.warehouse), 60)

    @dg.asset
    def writer(duckdb: DuckDBResource) -> None:
        with duckdb.get_connection() as con:
            con.execute("CREATE TABLE t AS SELECT 1 AS x")

    try:
        result = dg.materialize([writer], resources={"duckdb": warehouse}, instance=instance, raise_on_error=False)
    finally:
        reader.kill()
        reader.wait()
    assert not result.success
    infos = [e.user_message for e in instance.all_logs(result.run_id) if e.level == logging.INFO]
    assert any(f"waiting for the warehouse lock held by pid {reader.pid}" in m for m in infos), infos
    (failure,) = result.get_step_failure_events()
    error = failure.step_failure_data.error
    while error.cls_name != "WarehouseLocked" and error.cause is not None:
        error = error.cause
    assert error.cls_name == "WarehouseLocked" and f"still locked by pid {reader.pid}" in error.message
