"""The whole graph on generated data: every table built, every check green, nothing lost, idempotent."""

from __future__ import annotations

import re

import pytest

from ecom_assets.lakehouse.data_tests import DATA_TESTS, find_violations
from ecom_assets.cli import main
from ecom_assets.definitions import build_definitions
from ecom_assets.one_shot import highlights, run_pipeline, warehouse_summary
from ecom_assets.resources import build_resources
from ecom_assets.lakehouse.warehouse import ensure_schema
from ecom_assets_tests.conftest import land, query

KEY_COLUMNS = {
    "bronze.events": {"source_file", "line_number", "raw_line"},
    "silver.events": {"event_time", "user_id", "session_id", "item_id", "event_type", "price", "brand",
                      "category", "transaction_id", "source_file"},
    "silver.events_quarantine": {"source_file", "line_number", "raw_line", "reason"},
    "gold.fact_user_sessions": {"session_id", "user_id", "session_start", "session_end", "duration_seconds",
                                "views", "carts", "removes", "purchases", "revenue", "experiment_group"},
    "gold.dim_users": {"user_id", "first_seen", "last_seen", "sessions", "lifetime_value",
                       "days_since_last_session"},
    "gold.user_item_interactions": {"user_id", "item_id", "views", "carts", "purchases"},
}


def _columns(paths, table):
    schema, name = table.split(".")
    return {r[0] for r in query(paths, "SELECT column_name FROM information_schema.columns "
                                       "WHERE table_schema = ? AND table_name = ?", [schema, name])}


def test_every_table_is_built_with_its_key_columns(built):
    assert built.outcome.ok, built.outcome
    for table, columns in KEY_COLUMNS.items():
        assert columns <= _columns(built.paths, table), table
        assert query(built.paths, f"SELECT count(*) FROM {table}")[0][0] > 0, table


def test_every_asset_check_ran_and_passed(built):
    assert not built.outcome.failed_checks and not built.outcome.warnings
    defs = build_definitions(built.paths)
    declared = {key for checks in defs.asset_checks or [] for key in checks.check_keys}
    evaluated = set()
    for key in declared:
        latest = built.instance.event_log_storage.get_latest_asset_check_execution_by_key([key]).get(key)
        assert latest is not None, f"{key} never ran"
        evaluation = latest.event.dagster_event.event_specific_data  # AssetCheckEvaluation
        assert evaluation.passed, f"{key}: {evaluation.description}"
        evaluated.add(key)
    assert evaluated == declared


def test_nothing_is_lost_per_file(built):
    rows = query(built.paths, """
        SELECT b.source_file, b.n, s.n, d.n, q.n FROM
          (SELECT source_file, count(*) n FROM bronze.events GROUP BY 1) b
          JOIN (SELECT source_file, count(*) n FROM silver.events GROUP BY 1) s USING (source_file)
          JOIN (SELECT source_file, count(*) n FROM silver.events_duplicates GROUP BY 1) d USING (source_file)
          JOIN (SELECT source_file, count(*) n FROM silver.events_quarantine GROUP BY 1) q USING (source_file)
        ORDER BY 1""")
    assert [r[0] for r in rows] == ["2019-Nov.csv", "2019-Oct.csv"]
    for _, bronze, silver, duplicates, quarantined in rows:
        assert bronze == silver + duplicates + quarantined
        assert duplicates > 0 and quarantined > 0  # the generator plants both


def test_sessions_are_recovered_and_split_by_arm(built):
    multi_event, groups = query(built.paths, """
        SELECT avg((events > 1)::INT), count(DISTINCT experiment_group) FROM gold.fact_user_sessions""")[0]
    assert multi_event > 0.7
    assert groups == 2


def test_materializing_again_changes_no_counts(built):
    before = warehouse_summary(built.paths)
    outcome = run_pipeline(built.paths, built.instance, log=lambda _: None)
    assert outcome.ok
    assert warehouse_summary(built.paths) == before


@pytest.mark.parametrize("test", DATA_TESTS, ids=lambda t: f"{t.table}/{t.name}")
def test_each_check_can_fail(paths, test):
    """Every check finds the rows planted to break it (a check that cannot fail checks nothing)."""
    with build_resources(paths)["duckdb"].get_connection() as con:
        ensure_schema(con)
        _plant_violation(con, test)
        found = find_violations(con, test)
    assert found.count > 0
    assert found.sample_markdown != "_none_"


def _plant_violation(con, test) -> None:
    """Create the tables a check reads with rows that break exactly its rule."""
    table = test.table
    if test.name == "landing_files_accepted":
        con.execute("INSERT INTO bronze.landing_files (source_file, status, message, ingested_at) "
                    "VALUES ('empty.csv', 'rejected', 'empty file', now())")
        return
    if test.name == "accounting_balances":
        con.execute("INSERT INTO bronze.events VALUES ('a.csv', 'rees46', 2, 'x', now())")
        return
    if test.name == "sessions_cover_every_event":
        con.execute("CREATE OR REPLACE TABLE silver.events AS SELECT 1 AS user_id")
        con.execute("CREATE OR REPLACE TABLE gold.fact_user_sessions AS SELECT 0 AS events")
        return
    # Two identical rows break uniqueness; nulls, negatives and odd values break the rest.
    bad = {
        "price": -1.0, "event_type": "'click'", "session_end": "TIMESTAMP '2019-01-01'",
        "session_start": "TIMESTAMP '2019-01-02'", "days_since_last_session": -1,
    }
    columns = _check_columns(test)
    select = ", ".join(f"{bad.get(c, 'NULL')} AS {c}" for c in columns)
    con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT {select} FROM range(2)")


def _check_columns(test) -> list[str]:
    sql = test.offending_rows_sql
    words = set(re.findall(r"\b([a-z_]+)\b", sql))
    known = {"source_file", "line_number", "event_time", "event_type", "user_id", "item_id", "price",
             "session_id", "session_start", "session_end", "experiment_group", "first_seen", "last_seen",
             "days_since_last_session"}
    return sorted(words & known)


def test_run_reports_a_failed_step_and_exits_non_zero(paths, monkeypatch, capsys):
    land(paths, "rees46_quirks.csv")
    monkeypatch.setenv("ECOM_DUCKDB_MEMORY_LIMIT", "plenty")  # not a size: DuckDB refuses to open
    assert main(["run"]) == 1
    assert "FAILED" in capsys.readouterr().err


def test_run_without_files_says_what_to_do(paths, capsys):
    assert main(["run"]) == 2
    assert "ecom-assets generate" in capsys.readouterr().err


def test_the_run_summary_names_the_verdict_the_models_and_the_files(built):
    lines = highlights(built.paths)
    assert lines[0].startswith("A/B test: ") and "conversion" in lines[0]
    assert any(line.startswith("purchase model (production v") for line in lines)
    assert any(line.startswith("cart-abandonment model (production v") for line in lines)
    assert any("predicted_purchase.parquet" in line for line in lines)
    assert any("purchase_drift_" in line for line in lines)
