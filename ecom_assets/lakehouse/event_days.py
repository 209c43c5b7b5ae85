"""Day partitions: which days of events a load changed, which session days are stale, and building
a range of session days. No Dagster import.

A landing file is the unit of arrival (bronze and silver are loaded per file); a day of events is
the unit of recompute downstream. A monthly export touches ~30 days, a daily file one, a late file
an old one: silver records the days each load changed (`silver.changed_days`), and the session days
to rebuild are those days and the day on either side (a session crosses midnight; whether a day's
first event continues one depends on the evening before).
"""

from __future__ import annotations

import datetime as dt

import duckdb

from ecom_assets.lakehouse import SQL
from ecom_assets.lakehouse.warehouse import run_sql_file, transaction

# A fingerprint of a file's rows per day: a day whose rows a load did not alter is not "changed".
_DAY_FINGERPRINTS = """
SELECT CAST(event_time AS DATE) AS event_date, count(*) AS n,
       bit_xor(hash(event_time, event_type, user_id, session_id, item_id, category_id, category, brand,
                    price, transaction_id, line_number)) AS fingerprint
FROM silver.events WHERE source_file = ? AND event_time IS NOT NULL GROUP BY 1"""


def fingerprint_days(con: duckdb.DuckDBPyConnection, source_file: str, into: str) -> None:
    """The file's per-day fingerprints now, into the temporary table `into` (before a load)."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE {into} AS {_DAY_FINGERPRINTS}", [source_file])


def record_changed_days(con: duckdb.DuckDBPyConnection, source_file: str, before: str, at: dt.datetime) -> int:
    """Append to silver.changed_days the days whose rows of `source_file` differ from `before`."""
    fingerprint_days(con, source_file, "days_after")
    changed = con.execute(
        f"""INSERT INTO silver.changed_days
            SELECT ?, coalesce(a.event_date, b.event_date), ?
            FROM days_after AS a FULL JOIN {before} AS b USING (event_date)
            WHERE a.n IS DISTINCT FROM b.n OR a.fingerprint IS DISTINCT FROM b.fingerprint""",
        [source_file, at],
    ).fetchone()[0]
    con.execute(f"DROP TABLE IF EXISTS {before}")
    con.execute("DROP TABLE IF EXISTS days_after")
    return changed


def stale_session_days(con: duckdb.DuckDBPyConnection, first_day: dt.date, last_day: dt.date) -> list[dt.date]:
    """Session days in [first_day, last_day] that silver changed (or changed beside) since they were built."""
    rows = con.execute(
        """WITH touched AS (
               SELECT event_date + CAST(k AS INTEGER) AS session_date, max(changed_at) AS changed_at
               FROM silver.changed_days, (VALUES (-1), (0), (1)) AS offsets(k)
               GROUP BY 1
           ),
           built AS (SELECT session_date, max(built_at) AS built_at FROM gold.session_days_built GROUP BY 1)
           SELECT t.session_date
           FROM touched AS t LEFT JOIN built AS b USING (session_date)
           WHERE (b.built_at IS NULL OR b.built_at < t.changed_at)
             AND t.session_date BETWEEN ? AND ?
           ORDER BY 1""",
        [first_day, last_day],
    ).fetchall()
    return [r[0] for r in rows]


def partition_range_tags(start: dt.date, end: dt.date) -> dict[str, str]:
    """The run tags of one run over the day partitions [start, end) (a single-run backfill)."""
    return {
        "dagster/asset_partition_range_start": start.isoformat(),
        "dagster/asset_partition_range_end": (end - dt.timedelta(days=1)).isoformat(),
    }


def forget_built_days(con: duckdb.DuckDBPyConnection) -> None:
    """Every session day with events becomes stale: a full refresh rebuilds them all."""
    con.execute("DELETE FROM gold.session_days_built")


def day_ranges(days: list[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """Consecutive days as [start, end) ranges: one run per range recomputes them in one pass."""
    ranges: list[tuple[dt.date, dt.date]] = []
    for day in sorted(set(days)):
        if ranges and ranges[-1][1] == day:
            ranges[-1] = (ranges[-1][0], day + dt.timedelta(days=1))
        else:
            ranges.append((day, day + dt.timedelta(days=1)))
    return ranges


def stage_sessions(con: duckdb.DuckDBPyConnection, start: dt.datetime, end: dt.datetime, gap_minutes: int) -> int:
    """The sessions starting in [start, end), into the temporary table staged_sessions; their count."""
    params = {"range_start": start, "range_end": end, "session_gap_minutes": gap_minutes}
    run_sql_file(con, SQL / "gold_fact_user_sessions.sql", params)
    return con.execute("SELECT count(*) FROM staged_sessions").fetchone()[0]


def publish_sessions(con: duckdb.DuckDBPyConnection, start: dt.datetime, end: dt.datetime, built_at) -> None:
    """Swap staged_sessions in for the range's sessions and mark its days built, in one transaction:
    a reader sees the range's old sessions or its new ones."""
    days = [(start + dt.timedelta(days=i)).date() for i in range((end - start).days)]
    with transaction(con):
        con.execute("DELETE FROM gold.fact_user_sessions WHERE session_start >= ? AND session_start < ?", [start, end])
        con.execute("INSERT INTO gold.fact_user_sessions BY NAME SELECT * FROM staged_sessions")
        con.execute("DELETE FROM gold.session_days_built WHERE session_date >= ? AND session_date < ?", [start, end])
        con.executemany("INSERT INTO gold.session_days_built VALUES (?, ?)", [[d, built_at] for d in days])
