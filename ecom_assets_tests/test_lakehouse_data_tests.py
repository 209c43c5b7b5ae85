"""lakehouse.data_tests: every data test finds the rows planted to break it (a check that cannot fail
checks nothing)."""

from __future__ import annotations

import re

import duckdb
import pytest

from ecom_assets.lakehouse.data_tests import ALL_FILES, DATA_TESTS, find_violations, line_number_unique_in_file
from ecom_assets.lakehouse.warehouse import ensure_schema
from ecom_assets.resources import build_resources


@pytest.mark.parametrize("test", DATA_TESTS, ids=lambda t: f"{t.table}/{t.name}")
def test_each_check_can_fail(paths, test):
    """Every check finds the rows planted to break it (a check that cannot fail checks nothing)."""
    with build_resources(paths)["duckdb"].get_connection() as con:
        ensure_schema(con)
        _plant_violation(con, test)
        found = find_violations(con, test)
    assert found.count > 0
    assert found.sample_markdown != "_none_"
    assert found.scope == (ALL_FILES if test.per_file else "")


@pytest.mark.parametrize("test", [t for t in DATA_TESTS if t.per_file], ids=lambda t: f"{t.table}/{t.name}")
def test_file_level_checks_look_at_one_file(paths, test):
    """Given a landing file, a file-level test reads that file's rows only: the rows planted in a.csv
    break a.csv's check, not b.csv's."""
    with build_resources(paths)["duckdb"].get_connection() as con:
        ensure_schema(con)
        _plant_violation(con, test)
        found = find_violations(con, test, source_file="a.csv")
        elsewhere = find_violations(con, test, source_file="b.csv")
    assert found.count > 0 and found.scope == "a.csv"
    assert elsewhere.count == 0 and elsewhere.scope == "b.csv"


def _plant_violation(con, test) -> None:
    """Create the tables a check reads with rows that break exactly its rule."""
    table = test.table
    if test.name == "landing_files_accepted":
        con.execute(
            "INSERT INTO bronze.landing_files (source_file, status, message, ingested_at) "
            "VALUES ('empty.csv', 'rejected', 'empty file', now())"
        )
        return
    if test.name == "accounting_balances":
        con.execute(
            "INSERT INTO bronze.events (source_file, source_format, line_number, raw_line, ingested_at) "
            "VALUES ('a.csv', 'rees46', 2, 'x', now())"
        )
        return
    if test.name == "silver_up_to_date":  # a bronze load that silver has not routed
        con.execute(
            "INSERT INTO bronze.landing_files (source_file, status, ingested_at, load_id) "
            "VALUES ('a.csv', 'accepted', now(), 'load-2')"
        )
        con.execute("INSERT INTO silver.routed_files VALUES ('a.csv', 'load-1', now())")
        return
    if test.name == "sessions_cover_every_event":
        con.execute("CREATE OR REPLACE TABLE silver.events AS SELECT 1 AS user_id")
        con.execute("CREATE OR REPLACE TABLE gold.fact_user_sessions AS SELECT 0 AS events")
        return
    # Two identical rows break uniqueness; nulls, negatives and odd values break the rest.
    bad = {
        "source_file": "'a.csv'",  # the planted rows belong to one landing file
        "price": -1.0,
        "event_type": "'click'",
        "session_end": "TIMESTAMP '2019-01-01'",
        "session_start": "TIMESTAMP '2019-01-02'",
        "days_since_last_session": -1,
    }
    columns = sorted({*_check_columns(test), *(["source_file"] if test.per_file else [])})
    select = ", ".join(f"{bad.get(c, 'NULL')} AS {c}" for c in columns)
    con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT {select} FROM range(2)")


def _check_columns(test) -> list[str]:
    sql = test.offending_rows_sql
    words = set(re.findall(r"\b([a-z_]+)\b", sql))
    known = {
        "source_file",
        "line_number",
        "event_time",
        "event_type",
        "user_id",
        "item_id",
        "price",
        "session_id",
        "session_start",
        "session_end",
        "experiment_group",
        "first_seen",
        "last_seen",
        "days_since_last_session",
    }
    return sorted(words & known)


@pytest.mark.parametrize(
    ("lines", "unique"),
    [
        (list(range(2, 5000)), True),  # a file's lines, dense
        ([], True),  # the file has no rows
        ([*range(2, 5000), 4321], False),  # one line twice
        ([*range(2, 5000), None], False),  # a line without a number: the GROUP BY decides
        ([2, 10**12], False),  # too sparse for a bitmap: the GROUP BY decides, and finds nothing
    ],
    ids=["dense", "empty", "repeat", "null", "sparse"],
)
def test_the_line_number_bitmap_proves_uniqueness_only_when_it_holds(lines, unique):
    """The bitmap that spares the unique_source_line checks their GROUP BY answers True only when every line
    number of the file occurs once; lines of another file (the same numbers) do not count."""
    con = duckdb.connect()
    con.execute("CREATE TABLE events (source_file VARCHAR, line_number BIGINT)")
    con.executemany("INSERT INTO events VALUES (?, ?)", [("a.csv", n) for n in lines] + [("b.csv", 7), ("b.csv", 7)])
    assert line_number_unique_in_file(con, "events", "line_number", "a.csv") is unique
