"""The cart-abandonment features per day of sessions: only the days whose sessions were rebuilt.

A row's features read its own session's events and its user's earlier sessions, so a day's rows
change when that day's sessions are rebuilt (`gold.session_days_built`), and a later day's rows can
change with them (its users' history). A refresh therefore recomputes the suffix of days from the
earliest day rebuilt since the features last saw it; the daily run rebuilds yesterday's and today's
sessions, so it computes two days. Rows of earlier days are kept, but their split (test, validation,
train: by session start against the data's end) moves with the data's end, a cheap update.

`gold.cart_feature_days_built` records when each day was computed and by what recipe (the SQL text
and the horizon): a new recipe recomputes every day. No Dagster import.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path

import duckdb

from ecom_assets.lakehouse.warehouse import load_sql, run_sql_file, table_exists, transaction
from ecom_assets.ml import SQL

CART_SQL = SQL / "gold_cart_session_features.sql"
TABLE, DAYS_TABLE = "gold.cart_session_features", "gold.cart_feature_days_built"

_DAYS_DDL = f"""CREATE TABLE IF NOT EXISTS {DAYS_TABLE} (
    session_date DATE      NOT NULL,
    recipe       VARCHAR   NOT NULL,
    built_at     TIMESTAMP NOT NULL
)"""

# The split of a row from its session start and the data's end (the day after the last busy day of sessions).
_SPLIT = """CASE WHEN session_start >= data_end - to_days(CAST($horizon_days AS INTEGER)) THEN 'test'
     WHEN session_start >= data_end - to_days(CAST(2 * $horizon_days AS INTEGER)) THEN 'validation'
     ELSE 'train' END"""


_NEVER = dt.datetime(9999, 1, 1)  # the end of an open range (and the start of an empty one)


@dataclass
class DayRefresh:
    first_day: dt.date | None  # the first day computed (every later day too); None: none
    rows_built: int
    resplit: int  # kept rows whose split moved
    everything: bool


def _recipe(sql_text: str, horizon_days: int) -> str:
    return hashlib.sha256(f"{sql_text}\nhorizon_days={horizon_days}".encode()).hexdigest()[:16]


def refresh_cart_session_features(
    con: duckdb.DuckDBPyConnection, horizon_days: int, sql: Path = CART_SQL, everything: bool = False
) -> DayRefresh:
    """Bring gold.cart_session_features up to date with the sessions: recompute the days from the
    earliest one rebuilt since it was computed (or new), keep the earlier days' rows and move their
    split along. `everything`: recompute every day (and replace the table)."""
    built_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)  # before reading: a later rebuild is newer
    current = _recipe(load_sql(sql), horizon_days)
    con.execute(_DAYS_DDL)
    recipes = {r[0] for r in con.execute(f"SELECT DISTINCT recipe FROM {DAYS_TABLE}").fetchall()}
    everything = everything or not table_exists(con, TABLE) or not recipes or recipes != {current}
    if everything:  # every day the sessions were built for, those left without a session included
        first = con.execute(
            "SELECT least((SELECT min(session_date) FROM gold.session_days_built), "
            "(SELECT min(session_date) FROM gold.fact_user_sessions))"
        ).fetchone()[0]
    else:  # the earliest session day built after the features saw it, or never seen by them
        first = con.execute(
            f"""SELECT min(s.session_date)
                FROM (SELECT session_date, max(built_at) AS built_at FROM gold.session_days_built GROUP BY 1) AS s
                LEFT JOIN {DAYS_TABLE} AS f USING (session_date)
                WHERE f.built_at IS NULL OR f.built_at < s.built_at"""
        ).fetchone()[0]
    start = dt.datetime.combine(first, dt.time()) if first else _NEVER
    params = {"horizon_days": horizon_days, "built_at": built_at, "range_start": start, "range_end": _NEVER}
    run_sql_file(con, sql, params)
    rows = con.execute("SELECT count(*) FROM csf_rows").fetchone()[0]
    resplit = 0
    with transaction(con):
        if everything:
            con.execute(f"CREATE OR REPLACE TABLE {TABLE} AS SELECT * FROM csf_rows")
            con.execute(f"DELETE FROM {DAYS_TABLE}")
        elif first is not None:
            con.execute(f"DELETE FROM {TABLE} WHERE session_start >= ?", [start])
            con.execute(f"INSERT INTO {TABLE} BY NAME SELECT * FROM csf_rows")
        if first is not None:
            con.execute(f"DELETE FROM {DAYS_TABLE} WHERE session_date >= ?", [first])
            con.execute(
                f"INSERT INTO {DAYS_TABLE} SELECT DISTINCT session_date, ?, ? FROM gold.session_days_built "
                "WHERE session_date >= ?",
                [current, built_at, first],
            )
        if not everything:  # the data's end moved: so do the splits of the days kept
            split = _SPLIT.replace("$horizon_days", str(int(horizon_days)))
            resplit = con.execute(
                f"""UPDATE {TABLE} SET dataset = {split}
                    FROM (SELECT max(data_end) AS data_end FROM csf_bounds) AS b
                    WHERE dataset <> {split}"""
            ).fetchone()[0]
    con.execute("DROP TABLE csf_rows")
    con.execute("DROP TABLE IF EXISTS csf_bounds")
    return DayRefresh(first, rows, resplit, everything)
