"""Asset checks as data-quality tests: each runs one SQL query that selects the offending rows.

A check passes when the query returns no row; its metadata carries the count and a sample, so
the UI shows what broke without opening a notebook. These cover the seed project's dbt tests
(not_null, accepted_values) plus key uniqueness, session ordering and the nothing-lost accounting.
"""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from ecom_assets.assets.gold import DIM_USERS, FACT_USER_SESSIONS, USER_ITEM_INTERACTIONS
from ecom_assets.assets.silver import SILVER_EVENTS
from ecom_assets.resources import WAREHOUSE_POOL, EcomSettings, warehouse
from ecom_assets.warehouse import markdown_preview, scalar

BRONZE_EVENTS = dg.AssetKey(["bronze", "events"])
EVENT_TYPES = ("view", "cart", "remove_from_cart", "purchase")


@dataclass(frozen=True)
class DataTest:
    asset: dg.AssetKey
    name: str
    description: str
    offending_rows_sql: str
    blocking: bool = False
    warn_only: bool = False


def _not_null(table: str, columns: list[str]) -> str:
    return f"SELECT * FROM {table} WHERE " + " OR ".join(f"{c} IS NULL" for c in columns)


def _unique(table: str, key: str) -> str:
    return f"SELECT {key}, count(*) AS copies FROM {table} GROUP BY {key} HAVING count(*) > 1"


ACCOUNTING_SQL = """
WITH bronze AS (SELECT source_file, count(*) AS n FROM bronze.events GROUP BY ALL),
     silver AS (SELECT source_file, count(*) AS n FROM silver.events GROUP BY ALL),
     dups   AS (SELECT source_file, count(*) AS n FROM silver.events_duplicates GROUP BY ALL),
     quar   AS (SELECT source_file, count(*) AS n FROM silver.events_quarantine GROUP BY ALL),
     files  AS (SELECT source_file FROM bronze UNION SELECT source_file FROM silver
                UNION SELECT source_file FROM dups UNION SELECT source_file FROM quar)
SELECT f.source_file,
       coalesce(b.n, 0) AS bronze_lines,
       coalesce(s.n, 0) AS events,
       coalesce(d.n, 0) AS duplicates,
       coalesce(q.n, 0) AS quarantined
FROM files f
LEFT JOIN bronze b USING (source_file) LEFT JOIN silver s USING (source_file)
LEFT JOIN dups d USING (source_file) LEFT JOIN quar q USING (source_file)
WHERE coalesce(b.n, 0) <> coalesce(s.n, 0) + coalesce(d.n, 0) + coalesce(q.n, 0)
"""

DATA_TESTS = [
    DataTest(BRONZE_EVENTS, "landing_files_accepted",
             "Every landing file was readable (not empty, not header-only, a known format).",
             "SELECT source_file, status, message FROM bronze.landing_files WHERE status <> 'accepted'",
             warn_only=True),
    DataTest(BRONZE_EVENTS, "unique_source_line", "Each (source_file, line_number) is landed once.",
             _unique("bronze.events", "source_file, line_number")),
    DataTest(SILVER_EVENTS, "accounting_balances",
             "Nothing lost: for every landing file, bronze lines = events + duplicates + quarantined.",
             ACCOUNTING_SQL, blocking=True),
    DataTest(SILVER_EVENTS, "not_null_keys", "Keys and timestamps are never null.",
             _not_null("silver.events", ["event_time", "event_type", "user_id", "item_id",
                                         "source_file", "line_number"]), blocking=True),
    DataTest(SILVER_EVENTS, "accepted_event_types", f"event_type is one of {', '.join(EVENT_TYPES)}.",
             f"SELECT * FROM silver.events WHERE event_type NOT IN {EVENT_TYPES}", blocking=True),
    DataTest(SILVER_EVENTS, "unique_source_line", "Each landed line yields at most one event.",
             _unique("silver.events", "source_file, line_number"), blocking=True),
    DataTest(SILVER_EVENTS, "no_negative_prices", "Prices are never negative (those lines are quarantined).",
             "SELECT * FROM silver.events WHERE price < 0"),
    DataTest(FACT_USER_SESSIONS, "unique_session_id", "session_id is unique.",
             _unique("gold.fact_user_sessions", "session_id")),
    DataTest(FACT_USER_SESSIONS, "not_null_keys", "Session keys and times are never null.",
             _not_null("gold.fact_user_sessions", ["session_id", "user_id", "session_start",
                                                   "session_end", "experiment_group"])),
    DataTest(FACT_USER_SESSIONS, "session_end_after_start", "session_end >= session_start.",
             "SELECT * FROM gold.fact_user_sessions WHERE session_end < session_start"),
    DataTest(FACT_USER_SESSIONS, "sessions_cover_every_event",
             "Every silver event belongs to exactly one session.",
             """SELECT (SELECT count(*) FROM silver.events) AS silver_events,
                       (SELECT coalesce(sum(events), 0) FROM gold.fact_user_sessions) AS session_events
                WHERE silver_events <> session_events"""),
    DataTest(DIM_USERS, "unique_user_id", "user_id is unique.", _unique("gold.dim_users", "user_id")),
    DataTest(DIM_USERS, "not_null_keys", "Users have an id and first/last seen times.",
             _not_null("gold.dim_users", ["user_id", "first_seen", "last_seen"])),
    DataTest(DIM_USERS, "recency_not_negative", "days_since_last_session is never negative.",
             "SELECT * FROM gold.dim_users WHERE days_since_last_session < 0"),
    DataTest(USER_ITEM_INTERACTIONS, "unique_user_item", "(user_id, item_id) is unique.",
             _unique("gold.user_item_interactions", "user_id, item_id")),
]


@dataclass(frozen=True)
class Violations:
    count: int
    sample_markdown: str
    first_keys: list[str]


def find_violations(con: duckdb.DuckDBPyConnection, test: DataTest) -> Violations:
    count = scalar(con, f"SELECT count(*) FROM ({test.offending_rows_sql})")
    if not count:
        return Violations(0, "_none_", [])
    keys = [str(row[0]) for row in con.execute(f"{test.offending_rows_sql} LIMIT 5").fetchall()]
    return Violations(count, markdown_preview(con, test.offending_rows_sql), keys)


def build_data_test(test: DataTest) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=test.asset,
        name=test.name,
        description=test.description,
        blocking=test.blocking,
        pool=WAREHOUSE_POOL,
    )
    def _check(duckdb: DuckDBResource, settings: EcomSettings) -> dg.AssetCheckResult:
        with warehouse(duckdb, settings) as con:
            found = find_violations(con, test)
        return dg.AssetCheckResult(
            passed=found.count == 0,
            severity=dg.AssetCheckSeverity.WARN if test.warn_only else dg.AssetCheckSeverity.ERROR,
            description=(f"{found.count:,} offending row(s), e.g. {', '.join(found.first_keys)}"
                         if found.count else "passed"),
            metadata={"offending_rows": found.count, "sample": dg.MetadataValue.md(found.sample_markdown)},
        )

    return _check


data_quality_checks = [build_data_test(t) for t in DATA_TESTS]
