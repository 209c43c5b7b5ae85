"""A landing file's life after its first load (issue 11, items 8 and 9): copies under another name,
files that vanish or are retracted, re-landing, and a run stopped between the bronze and silver steps."""

from __future__ import annotations

import shutil

import dagster as dg
import pytest

from ecom_assets import run_summary
from ecom_assets.definitions import build_definitions
from ecom_assets.lakehouse.data_tests import DATA_TESTS, find_violations
from ecom_assets.lakehouse.ingest import load_bronze, load_silver
from ecom_assets.lakehouse.warehouse import ensure_schema
from ecom_assets.partitions import landing_files
from ecom_assets.resources import build_resources
from ecom_assets_tests.conftest import FIXTURES, ingest, land, query

REES = "rees46_quirks.csv"
COPY = "rees46_quirks (1).csv"
ACCOUNTING = next(t for t in DATA_TESTS if t.name == "accounting_balances")
PENDING = next(t for t in DATA_TESTS if t.name == "silver_up_to_date")


@pytest.fixture
def con(paths):
    with build_resources(paths)["duckdb"].get_connection() as connection:
        ensure_schema(connection)
        yield connection


def land_file(con, paths, name):
    load_bronze(con, paths.landing / name)
    return load_silver(con, name)


def counts(con, name) -> tuple[int, int, int, int]:
    return con.execute(
        "SELECT (SELECT count(*) FROM bronze.events WHERE source_file = $f), "
        "(SELECT count(*) FROM silver.events WHERE source_file = $f), "
        "(SELECT count(*) FROM silver.events_duplicates WHERE source_file = $f), "
        "(SELECT count(*) FROM silver.events_quarantine WHERE source_file = $f)",
        {"f": name},
    ).fetchone()


def test_a_copy_under_another_name_is_all_duplicates_and_takes_over_when_the_first_is_retracted(con, paths):
    land(paths, REES)
    shutil.copy(FIXTURES / REES, paths.landing / COPY)
    assert land_file(con, paths, REES).events == 4
    report = land_file(con, paths, COPY)
    # Valid lines of the copy are duplicates of the first file's events; its bad lines are quarantined.
    assert (report.events, report.duplicates, report.quarantined) == (0, 5, 9)
    assert report.duplicates_of_other_files == 4
    targets = "SELECT DISTINCT duplicate_of_file FROM silver.events_duplicates WHERE source_file = ? ORDER BY 1"
    assert query_all(con, targets, COPY) == [COPY, REES]
    assert find_violations(con, ACCOUNTING).count == 0
    # Retract the first file: the copy's events come back from duplicates, none is lost.
    with pytest.raises(ValueError, match="still in the landing folder"):
        load_bronze(con, paths.landing / REES, retract=True)
    (paths.landing / REES).unlink()
    assert load_bronze(con, paths.landing / REES, retract=True).status == "retracted"
    report = load_silver(con, REES)
    assert report.rerouted == [COPY]
    assert counts(con, REES) == (0, 0, 0, 0)
    assert counts(con, COPY) == (14, 4, 1, 9)
    assert find_violations(con, ACCOUNTING).count == 0


def test_relanding_the_first_copy_with_other_content_reroutes_the_duplicates(con, paths):
    land(paths, REES)
    shutil.copy(FIXTURES / REES, paths.landing / COPY)
    land_file(con, paths, REES)
    land_file(con, paths, COPY)
    (paths.landing / REES).write_text((FIXTURES / REES).read_text().splitlines()[0] + "\n")  # header only now
    load_bronze(con, paths.landing / REES)
    assert load_silver(con, REES).rerouted == [COPY]
    assert counts(con, COPY)[1] == 4
    assert query_all(con, "SELECT count(*) FROM silver.events") == [4]


def query_all(con, sql, *params):
    return [r[0] if len(r) == 1 else r for r in con.execute(sql, list(params)).fetchall()]


def test_a_run_stopped_between_bronze_and_silver_is_pending_not_unbalanced(con, paths):
    land(paths, REES)
    land_file(con, paths, REES)
    # The file is re-landed with one line fewer, and only the bronze step runs (the run is killed).
    lines = (FIXTURES / REES).read_bytes().splitlines(keepends=True)
    (paths.landing / REES).write_bytes(b"".join(lines[:-1]))
    load_bronze(con, paths.landing / REES)
    bronze, events, duplicates, quarantined = counts(con, REES)
    assert bronze != events + duplicates + quarantined  # a reader sees the difference ...
    assert find_violations(con, ACCOUNTING).count == 0  # ... which is not reported as lost
    assert find_violations(con, PENDING).first_keys == [REES]
    assert any("silver pending" in line for line in run_summary.landing_file_problems(con, paths.landing))
    load_silver(con, REES)  # the next run's silver step
    assert find_violations(con, PENDING).count == 0
    bronze, events, duplicates, quarantined = counts(con, REES)
    assert bronze == events + duplicates + quarantined == 13


def test_unbalanced_lines_of_a_routed_load_are_still_caught(con, paths):
    land(paths, REES)
    land_file(con, paths, REES)
    con.execute("DELETE FROM silver.events WHERE source_file = ? AND line_number = 2", [REES])
    assert find_violations(con, ACCOUNTING).first_keys == [REES]


def test_a_vanished_file_is_reported_by_a_check_and_the_summary_then_retracted_by_a_run(paths, instance):
    land(paths, REES, "retailrocket_quirks.csv")
    assert all(r.success for r in ingest(paths, instance))
    (paths.landing / REES).unlink()
    job = build_definitions(paths).resolve_job_def("ingest_landing_file")
    result = job.execute_in_process(partition_key="retailrocket_quirks.csv", instance=instance)
    (present,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "landing_files_present"]
    assert not present.passed and present.severity == dg.AssetCheckSeverity.WARN
    assert REES in present.description and "retract" in present.description
    with build_resources(paths)["duckdb"].get_connection() as con:
        summary = run_summary.highlights(con, paths)
    assert any(REES in line and "gone from" in line and "14 lines" in line for line in summary), summary
    # Rows stay until retracted: run config on the bronze asset, in the UI's launchpad or here.
    assert query(paths, "SELECT count(*) FROM silver.events WHERE source_file = ?", [REES]) == [(4,)]
    retract = {"ops": {"bronze__events": {"config": {"retract": True}}}}
    result = job.execute_in_process(partition_key=REES, instance=instance, run_config=retract)
    assert result.success
    assert all(e.passed for e in result.get_asset_check_evaluations() if e.severity == dg.AssetCheckSeverity.ERROR)
    assert query(paths, "SELECT count(*) FROM bronze.events WHERE source_file = ?", [REES]) == [(0,)]
    assert query(paths, "SELECT count(*) FROM silver.events WHERE source_file = ?", [REES]) == [(0,)]
    assert query(paths, "SELECT status FROM bronze.landing_files WHERE source_file = ?", [REES]) == [("retracted",)]
    instance.delete_dynamic_partition(landing_files.name, REES)
    with build_resources(paths)["duckdb"].get_connection() as con:
        assert not any(REES in line for line in run_summary.landing_file_problems(con, paths.landing))
