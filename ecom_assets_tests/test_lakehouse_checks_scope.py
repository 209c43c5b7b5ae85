"""Bronze and silver checks cost what their landing file costs: in a file's ingest run they look only at
that file's rows, so a violation planted in one file's rows fails that file's checks and not another
file's; a check run without a partition (alone, from the UI) still sees every file."""

from __future__ import annotations

import dagster as dg

from ecom_assets.assets import bronze, silver
from ecom_assets.definitions import build_definitions
from ecom_assets.lakehouse.data_tests import ALL_FILES, DATA_TESTS
from ecom_assets.partitions import landing_files
from ecom_assets_tests.conftest import land

BAD, GOOD = "rees46_quirks.csv", "retailrocket_quirks.csv"
# What the rows planted in BAD break (every file-level test but the catalog ones).
PLANTED = {
    ("bronze/events", "unique_source_line"),
    ("silver/events", "accounting_balances"),
    ("silver/events", "not_null_keys"),
    ("silver/events", "accepted_event_types"),
    ("silver/events", "unique_source_line"),
    ("silver/events", "no_negative_prices"),
}
INGEST_CHECKS = {
    dg.AssetCheckKey(dg.AssetKey(t.table.split(".")), t.name)
    for t in DATA_TESTS
    if t.table in ("bronze.events", "silver.events")
}


def _plant_in_bad_file(monkeypatch) -> None:
    """The ingest of BAD leaves broken rows of BAD (as a buggy load would): a bronze line landed twice,
    and a second, wrong copy of its first event."""
    load_bronze, load_silver = bronze.load_bronze, silver.load_silver

    def bronze_with_a_repeated_line(con, path, **kwargs):
        report = load_bronze(con, path, **kwargs)
        if path.name == BAD:
            con.execute(
                "INSERT INTO bronze.events SELECT * FROM bronze.events WHERE source_file = ? "
                "ORDER BY line_number DESC LIMIT 1",
                [BAD],
            )
        return report

    def silver_with_a_wrong_event(con, source_file):
        report = load_silver(con, source_file)
        if source_file == BAD:
            con.execute(
                "INSERT INTO silver.events BY NAME SELECT * REPLACE "
                "(NULL AS user_id, 'click' AS event_type, -1.0 AS price) "
                "FROM silver.events WHERE source_file = ? ORDER BY line_number LIMIT 1",
                [source_file],
            )
        return report

    monkeypatch.setattr(bronze, "load_bronze", bronze_with_a_repeated_line)
    monkeypatch.setattr(silver, "load_silver", silver_with_a_wrong_event)


def _evaluations(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    return {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}


def _failed(result: dg.ExecuteInProcessResult) -> set[tuple[str, str]]:
    return {key for key, e in _evaluations(result).items() if not e.passed}


def _scope(result: dg.ExecuteInProcessResult, key: tuple[str, str]) -> str:
    return _evaluations(result)[key].metadata["scope"].value


def test_a_violation_in_one_file_fails_its_own_run_only(paths, instance, monkeypatch):
    land(paths, BAD, GOOD)
    _plant_in_bad_file(monkeypatch)
    instance.add_dynamic_partitions(landing_files.name, [BAD, GOOD])
    job = build_definitions(paths).resolve_job_def("ingest_landing_file")
    bad = job.execute_in_process(partition_key=BAD, instance=instance, raise_on_error=False)
    good = job.execute_in_process(partition_key=GOOD, instance=instance, raise_on_error=False)

    assert _failed(bad) == PLANTED
    assert _failed(good) == set()  # BAD's rows are in the tables, but GOOD's checks do not read them
    assert good.success
    assert _scope(bad, ("silver/events", "not_null_keys")) == BAD
    assert _scope(good, ("silver/events", "not_null_keys")) == GOOD
    # The accounting's evidence is the run's file's balance.
    verified = _evaluations(good)[("silver/events", "accounting_balances")].metadata["verified"].value
    assert GOOD in verified and BAD not in verified

    # The checks alone (as the UI runs them): for a file, that file's rows; without a partition, all files.
    checks_only = job.get_subset(asset_selection=set(), asset_check_selection=INGEST_CHECKS)
    good_alone = checks_only.execute_in_process(partition_key=GOOD, instance=instance, raise_on_error=False)
    assert _failed(good_alone) == set()
    everything = checks_only.execute_in_process(instance=instance, raise_on_error=False)
    assert _failed(everything) == PLANTED
    assert _scope(everything, ("silver/events", "accounting_balances")) == ALL_FILES
    verified = _evaluations(everything)[("silver/events", "accounting_balances")].metadata["verified"].value
    assert GOOD in verified and BAD in verified
