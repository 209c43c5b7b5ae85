"""The script to beat: landing files -> sessions and users in plain DuckDB, as written in an afternoon.

    python bench/plain_duckdb_baseline.py LANDING_FILE... --db out.duckdb [--threads 2] [--gap-minutes 30] [--lake]

What it does, and nothing more: one typed `read_csv` of the REES46-format files (as `ecom-assets generate`
writes them, or as the real export ships), exact duplicate lines dropped with `SELECT DISTINCT`, 30-minute
sessionization with LAG (a user's next event starts a new session when it comes more than 30 minutes after
the previous one: the rule of lakehouse/sql/gold_fact_user_sessions.sql) and one row per user (first and
last seen, sessions, events, purchases, revenue), into a fresh DuckDB file.

What it does not do, and the project does: keep every raw line (bronze), quarantine unparseable or
implausible lines with a reason, account for every line of every file, ingest one file at a time and
incrementally, run data checks, record lineage and metadata in Dagster. `bench/bench_landing_to_gold.py`
times it next to the project's landing -> gold on the same files.

`--lake`: the same three tables written into a DuckLake (a SQLite catalog at `--db`, Parquet files beside it,
the project's storage, docs/storage.md) instead of DuckDB's own file format: what the storage alone costs.

`--least-work`: not the baseline but a lower bound for the project. The events step becomes the least the
issue's load asks for, done in the cheapest way DuckDB knows: one typed `read_csv` that stores its rejected
lines (`store_rejects`, what a quarantine would read), repeats found by a hash of each row (as silver finds
them) and kept once, and an event date column to partition by. No bronze, no line numbers, no checks, no
accounting, no Dagster: whatever the project does beyond this costs more than this.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import duckdb

REES46_COLUMNS = {
    "event_time": "TIMESTAMP",  # '2019-10-01 00:00:00 UTC', see timestampformat
    "event_type": "VARCHAR",
    "product_id": "BIGINT",
    "category_id": "VARCHAR",
    "category_code": "VARCHAR",
    "brand": "VARCHAR",
    "price": "DOUBLE",
    "user_id": "BIGINT",
    "user_session": "VARCHAR",
}

EVENTS_SQL = """
CREATE TABLE events AS
SELECT DISTINCT *
FROM read_csv($files, header = true, columns = $columns, timestampformat = '%Y-%m-%d %H:%M:%S UTC')
"""

# `--least-work`'s events: the hash of every row, the (few) hashes seen twice, then each row once.
LEAST_WORK_PARSE_SQL = """
CREATE TEMP TABLE parsed AS
SELECT *, hash(*COLUMNS(* EXCLUDE (filename))) AS row_hash
FROM read_csv($files, header = true, columns = $columns, timestampformat = '%Y-%m-%d %H:%M:%S UTC',
              store_rejects = true, filename = true)
"""
LEAST_WORK_DEDUPLICATE_SQL = """
CREATE TEMP TABLE repeated AS SELECT row_hash FROM parsed GROUP BY row_hash HAVING count(*) > 1;
CREATE TABLE events AS
SELECT * EXCLUDE (row_hash), CAST(event_time AS DATE) AS event_date
FROM parsed WHERE row_hash NOT IN (SELECT row_hash FROM repeated)
UNION ALL
SELECT DISTINCT * EXCLUDE (row_hash), CAST(event_time AS DATE) AS event_date
FROM parsed WHERE row_hash IN (SELECT row_hash FROM repeated);
"""

SESSIONS_SQL = """
CREATE TABLE sessions AS
WITH flagged AS (
    SELECT *,
           CASE WHEN event_time - lag(event_time) OVER (PARTITION BY user_id ORDER BY event_time)
                     <= to_minutes(CAST($gap AS BIGINT)) THEN 0 ELSE 1 END AS starts_session
    FROM events
),
numbered AS (
    SELECT *, sum(starts_session) OVER (PARTITION BY user_id ORDER BY event_time
                                        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS session_number
    FROM flagged
)
SELECT user_id,
       session_number,
       min(event_time)                                              AS session_start,
       max(event_time)                                              AS session_end,
       count(*)                                                     AS events,
       count(*) FILTER (WHERE event_type = 'purchase')              AS purchases,
       coalesce(sum(price) FILTER (WHERE event_type = 'purchase'), 0) AS revenue
FROM numbered
GROUP BY user_id, session_number
"""

USERS_SQL = """
CREATE TABLE dim_users AS
SELECT user_id,
       min(session_start) AS first_seen,
       max(session_end)   AS last_seen,
       count(*)           AS sessions,
       sum(events)        AS events,
       sum(purchases)     AS purchases,
       sum(revenue)       AS revenue
FROM sessions
GROUP BY user_id
"""


def attach_lake(con: duckdb.DuckDBPyConnection, catalog: Path) -> None:
    """The DuckLake at ``catalog`` (created when missing; Parquet files in ``<catalog>.files/``), attached and
    in use, as the project attaches its own (lakehouse/lake.py)."""
    from ecom_assets.lakehouse.lake import create_catalog, extension_file

    if not catalog.exists():
        create_catalog(catalog)
    for name in ("sqlite_scanner", "ducklake"):
        con.execute(f"LOAD '{extension_file(name)}'")
    con.execute(f"ATTACH 'ducklake:sqlite:{catalog}' AS lake (DATA_PATH '{catalog}.files/')")
    con.execute("USE lake")


def build(
    files: list[Path], db: Path, threads: int = 2, gap_minutes: int = 30, lake: bool = False, least_work: bool = False
) -> dict[str, float]:
    """Build events, sessions and dim_users into a new DuckDB file at ``db`` (a new DuckLake catalog with
    ``lake``; the events of ``least_work``, module docstring); return seconds per step."""
    if db.exists():
        raise FileExistsError(f"{db} exists: the baseline writes a fresh database")
    timings: dict[str, float] = {}
    with duckdb.connect(":memory:" if lake else str(db), config={"threads": threads}) as con:
        con.execute("SET enable_progress_bar = false")
        if lake:
            attach_lake(con, db)
        for name, sql, params in (
            ("events", EVENTS_SQL, {"files": [str(f) for f in files], "columns": REES46_COLUMNS}),
            ("sessions", SESSIONS_SQL, {"gap": gap_minutes}),
            ("dim_users", USERS_SQL, None),
        ):
            start = time.perf_counter()
            if name == "events" and least_work:  # parameters go with one statement only
                con.execute(LEAST_WORK_PARSE_SQL, params)
                con.execute(LEAST_WORK_DEDUPLICATE_SQL)
            else:
                con.execute(sql, params)
            timings[name] = time.perf_counter() - start
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", type=Path, help="REES46-format .csv or .csv.gz files")
    parser.add_argument("--db", type=Path, required=True, help="the DuckDB file to create")
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads (the project's default: 2)")
    parser.add_argument("--gap-minutes", type=int, default=30, help="session gap (the project's default: 30)")
    parser.add_argument("--lake", action="store_true", help="write into a new DuckLake at --db (the project's storage)")
    parser.add_argument("--least-work", action="store_true", help="the project's lower bound (module docstring)")
    args = parser.parse_args()
    timings = build(args.files, args.db, args.threads, args.gap_minutes, args.lake, args.least_work)
    with duckdb.connect(":memory:" if args.lake else str(args.db), read_only=not args.lake) as con:
        if args.lake:
            attach_lake(con, args.db)
        for table in timings:
            rows = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            print(f"{table:<10} {rows:>12,} rows  {timings[table]:7.2f} s")


if __name__ == "__main__":
    main()
