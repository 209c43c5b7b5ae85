"""Data tests as plain data: each names a table and one SQL query that selects the offending rows.

The Dagster checks (`ecom_assets.checks`) run them on their asset (the asset key is the table's
`layer.name`); tests call `find_violations` directly. They cover the seed project's dbt tests
(not_null, accepted_values) plus key uniqueness, session ordering and the nothing-lost accounting.

Checks cost what their partition costs. Bronze and silver are written one landing file per run, so
their `per_file` tests look only at that file's rows (`source_file = $source_file`): a single-table test
reads `(SELECT * FROM <table> WHERE source_file = $source_file)`, a test over several tables filters
each of them with `$source_file IS NULL OR source_file = $source_file`. Without a file (a check run
alone, `find_violations` in tests) they cover all files. The day-partitioned sessions' tests run on
the rows their run publishes (`per_partition`).

A file's line numbers span about as many values as the file has rows (bronze: every line from 2; silver:
all but the repeats and the quarantined), so a test of their uniqueness within one file first asks a
bitmap over their range (`line_number_unique_in_file`): two scans with no hash table, about a tenth of
the GROUP BY's time at 12M lines. Only a bitmap that finds a repeat (or a range too sparse for one) runs
the GROUP BY, which lists the offending lines.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from ecom_assets.lakehouse import SQL
from ecom_assets.lakehouse.landing import EVENT_TYPES
from ecom_assets.lakehouse.warehouse import load_sql, markdown_preview, scalar


@dataclass(frozen=True)
class DataTest:
    table: str  # `layer.name`, which is also the asset key it checks
    name: str
    description: str
    offending_rows_sql: str
    blocking: bool = False
    warn_only: bool = False
    evidence_sql: str = ""  # what the test verified, shown beside a pass as well as a failure
    # Run by its day-partitioned asset on the rows it is about to publish (`relation`), not on the table.
    per_partition: bool = False
    # Checked on one landing file's rows in that file's ingest run (module docstring); all files without one.
    per_file: bool = False
    # An integer column unique within one landing file and about as wide as the file's rows (line numbers):
    # with a file, a bitmap over its range proves it unique before the GROUP BY is run (module docstring).
    dense_key_in_file: str = ""

    def offending_rows_in(self, relation: str | None = None) -> str:
        return self.offending_rows_sql.replace(self.table, relation) if relation else self.offending_rows_sql

    def offending_rows_of_file(self, source_file: str | None) -> str:
        """The query over one landing file's rows (its `$source_file`), or over all files (None)."""
        if not self.per_file or FILE_PARAMETER in self.offending_rows_sql or source_file is None:
            return self.offending_rows_sql  # filters itself on $source_file, or covers everything
        return self.offending_rows_in(f"(SELECT * FROM {self.table} WHERE source_file = {FILE_PARAMETER})")


FILE_PARAMETER = "$source_file"
ALL_FILES = "all files"


def file_parameters(sql: str, source_file: str | None) -> dict[str, str | None] | None:
    """The `$source_file` a query uses (None: every file), or no parameters when it has none."""
    return {"source_file": source_file} if FILE_PARAMETER in sql else None


# The nothing-lost balance per landing file, balanced or not: the accounting check's evidence (of the
# run's file in an ingest run, of every file without one), and what the check reads.
ACCOUNTING_PER_FILE_SQL = load_sql(SQL / "accounting_per_file.sql")
# The files that do not balance. A file whose latest bronze load is not routed yet
# (silver_pending_files.sql) is pending, not unbalanced: its silver rows still come from its previous load.
UNBALANCED_FILES_SQL = f"""
SELECT file, bronze_lines, events, duplicates, quarantined
FROM ({ACCOUNTING_PER_FILE_SQL}) AS balance
WHERE NOT balanced AND file NOT IN (SELECT source_file FROM ({load_sql(SQL / "silver_pending_files.sql")}))"""
EVIDENCE_ROWS = 100


def not_null(table: str, columns: list[str]) -> str:
    return f"SELECT * FROM {table} WHERE " + " OR ".join(f"{c} IS NULL" for c in columns)


def unique(table: str, key: str) -> str:
    return f"SELECT {key}, count(*) AS copies FROM {table} GROUP BY {key} HAVING count(*) > 1"


# A bitmap wider than this many bits per row (plus a margin for small files) is not built: its range is
# too sparse for the bitmap to be cheaper than the GROUP BY (and 64 bits a row bounds its memory).
BITMAP_BITS_PER_ROW, BITMAP_MARGIN_BITS = 64, 1 << 20


def line_number_unique_in_file(con: duckdb.DuckDBPyConnection, table: str, column: str, source_file: str) -> bool:
    """True when each `column` value of `source_file`'s rows in `table` occurs once, proven by a bitmap over
    the values' range (`bitstring_agg` needs the bounds as constants, hence the first query); False when a
    value repeats, is NULL, or the range is too sparse to try: the caller then runs the exact GROUP BY."""
    rows = f"FROM {table} WHERE source_file = $source_file"
    params = {"source_file": source_file}
    low, high, count = con.execute(f"SELECT min({column}), max({column}), count(*) {rows}", params).fetchone()
    if count == 0:
        return True
    if low is None or high - low + 1 > BITMAP_BITS_PER_ROW * count + BITMAP_MARGIN_BITS:
        return False
    # The FILTER keeps a row written since the first query from failing the aggregate: it is counted, not set.
    bits = f"bitstring_agg({column}, {low}, {high}) FILTER (WHERE {column} BETWEEN {low} AND {high})"
    return bool(scalar(con, f"SELECT bit_count({bits}) = count(*) {rows}", params))


DATA_TESTS = [
    DataTest(
        "bronze.events",
        "landing_files_accepted",
        "Every landing file was read whole (not empty, not header-only, a known format, not cut short, "
        "not changed while read, still in the landing folder). Over all files, in every run: it reads "
        "bronze.landing_files, one row per file.",
        "SELECT source_file, status, message FROM bronze.landing_files WHERE status NOT IN ('accepted', 'retracted')",
        warn_only=True,
    ),
    DataTest(
        "bronze.events",
        "unique_source_line",
        "Each (source_file, line_number) is landed once (checked on the run's file: the key holds the "
        "file, so unique within each file is unique overall).",
        unique("bronze.events", "source_file, line_number"),
        per_file=True,
        dense_key_in_file="line_number",
    ),
    DataTest(
        "silver.events",
        "accounting_balances",
        "Nothing lost: for every landing file, bronze lines = events + duplicates + quarantined (checked "
        "on the run's file: each file balances on its own).",
        UNBALANCED_FILES_SQL,
        blocking=True,
        evidence_sql=ACCOUNTING_PER_FILE_SQL,
        per_file=True,
    ),
    DataTest(
        "silver.events",
        "silver_up_to_date",
        "Silver holds every file's latest bronze load (pending: a run stopped between bronze and silver; "
        "materialize the file's silver partition). Over all files, in every run: it reads the one-row-per-file "
        "bronze.landing_files and silver.routed_files.",
        load_sql(SQL / "silver_pending_files.sql"),
        warn_only=True,
    ),
    DataTest(
        "silver.events",
        "not_null_keys",
        "Keys and timestamps are never null.",
        not_null("silver.events", ["event_time", "event_type", "user_id", "item_id", "source_file", "line_number"]),
        blocking=True,
        per_file=True,
    ),
    DataTest(
        "silver.events",
        "accepted_event_types",
        f"event_type is one of {', '.join(EVENT_TYPES)}.",
        f"SELECT * FROM silver.events WHERE event_type NOT IN {EVENT_TYPES}",
        blocking=True,
        per_file=True,
    ),
    DataTest(
        "silver.events",
        "unique_source_line",
        "Each landed line yields at most one event (checked on the run's file: the key holds the file, so "
        "unique within each file is unique overall).",
        unique("silver.events", "source_file, line_number"),
        blocking=True,
        per_file=True,
        dense_key_in_file="line_number",
    ),
    DataTest(
        "silver.events",
        "no_negative_prices",
        "Prices are never negative (those lines are quarantined).",
        "SELECT * FROM silver.events WHERE price < 0",
        per_file=True,
    ),
    DataTest(
        "gold.fact_user_sessions",
        "unique_session_id",
        "session_id is unique (a day's sessions start that day, so unique per day is unique overall).",
        unique("gold.fact_user_sessions", "session_id"),
        per_partition=True,
    ),
    DataTest(
        "gold.fact_user_sessions",
        "not_null_keys",
        "Session keys and times are never null.",
        not_null(
            "gold.fact_user_sessions", ["session_id", "user_id", "session_start", "session_end", "experiment_group"]
        ),
        per_partition=True,
    ),
    DataTest(
        "gold.fact_user_sessions",
        "session_end_after_start",
        "session_end >= session_start.",
        "SELECT * FROM gold.fact_user_sessions WHERE session_end < session_start",
        per_partition=True,
    ),
    DataTest(
        "gold.dim_users",
        "sessions_cover_every_event",
        "Every silver event belongs to exactly one session (over all days: session counts against silver's "
        "row count, no event scan).",
        """SELECT (SELECT count(*) FROM silver.events) AS silver_events,
                       (SELECT coalesce(sum(events), 0) FROM gold.fact_user_sessions) AS session_events
                WHERE silver_events <> session_events""",
    ),
    DataTest("gold.dim_users", "unique_user_id", "user_id is unique.", unique("gold.dim_users", "user_id")),
    DataTest(
        "gold.dim_users",
        "not_null_keys",
        "Users have an id and first/last seen times.",
        not_null("gold.dim_users", ["user_id", "first_seen", "last_seen"]),
    ),
    DataTest(
        "gold.dim_users",
        "recency_not_negative",
        "days_since_last_session is never negative.",
        "SELECT * FROM gold.dim_users WHERE days_since_last_session < 0",
    ),
]


@dataclass(frozen=True)
class Violations:
    count: int
    sample_markdown: str
    first_keys: list[str]
    evidence_markdown: str = ""  # the test's evidence_sql as a table (its first EVIDENCE_ROWS rows)
    scope: str = ""  # per_file tests: the landing file whose rows were checked, or ALL_FILES


def find_violations(
    con: duckdb.DuckDBPyConnection, test: DataTest, relation: str | None = None, source_file: str | None = None
) -> Violations:
    """The test's offending rows in its table, or in `relation` (rows about to replace a partition), or,
    for a `per_file` test, in the rows of landing file `source_file` (None: all files)."""
    if relation or not test.per_file:
        source_file = None  # only file-level tests narrow to one file
    offending = test.offending_rows_in(relation) if relation else test.offending_rows_of_file(source_file)
    params = file_parameters(offending, source_file)
    scope = (source_file or ALL_FILES) if test.per_file and not relation else ""
    proven_unique = (
        test.dense_key_in_file
        and source_file is not None
        and line_number_unique_in_file(con, test.table, test.dense_key_in_file, source_file)
    )
    count = 0 if proven_unique else scalar(con, f"SELECT count(*) FROM ({offending})", params)
    evidence = (
        markdown_preview(con, test.evidence_sql, file_parameters(test.evidence_sql, source_file), limit=EVIDENCE_ROWS)
        if test.evidence_sql
        else ""
    )
    if not count:
        return Violations(0, "_none_", [], evidence, scope)
    keys = [str(row[0]) for row in con.execute(f"{offending} LIMIT 5", params).fetchall()]
    return Violations(count, markdown_preview(con, offending, params), keys, evidence, scope)
