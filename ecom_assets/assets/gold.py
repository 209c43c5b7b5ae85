"""Gold: sessions, one partition per day, and users, rebuilt from the sessions (compact per-day summaries)."""

import datetime as dt
from collections.abc import Iterator

import dagster as dg

from ecom_assets.assets.silver import SILVER_EVENTS
from ecom_assets.assets.ui_metadata import DATA_PLATFORM, column_schema, rounded, table_metadata
from ecom_assets.checks.lakehouse_checks import data_test_result
from ecom_assets.lakehouse import SQL, event_days
from ecom_assets.lakehouse.data_tests import DATA_TESTS
from ecom_assets.lakehouse.warehouse import markdown_preview, run_sql_file, scalar
from ecom_assets.partitions import event_days as event_days_partitions
from ecom_assets.resources import WAREHOUSE_POOL, EcomSettings, WarehouseResource, open_warehouse

FACT_USER_SESSIONS = dg.AssetKey(["gold", "fact_user_sessions"])
DIM_USERS = dg.AssetKey(["gold", "dim_users"])
SESSION_TESTS = [t for t in DATA_TESTS if t.per_partition and t.table == "gold.fact_user_sessions"]

_gold = dict(group_name="gold", kinds={"duckdb"}, owners=DATA_PLATFORM)


@dg.asset(
    key=FACT_USER_SESSIONS,
    deps=[dg.AssetDep(SILVER_EVENTS, partition_mapping=dg.AllPartitionMapping())],
    partitions_def=event_days_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    check_specs=[dg.AssetCheckSpec(t.name, asset=FACT_USER_SESSIONS, description=t.description) for t in SESSION_TESTS],
    **_gold,
)
def fact_user_sessions(
    context: dg.AssetExecutionContext, duckdb: WarehouseResource, settings: EcomSettings
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """User sessions, one partition per day they start: a new session after more than 30 minutes of
    inactivity, with funnel counts. A run over a range of days recomputes them in one pass; the
    write lock is held only to swap the new days in, so day ranges compute side by side."""
    window = context.partition_time_window
    start, end = window.start.replace(tzinfo=None), window.end.replace(tzinfo=None)
    built_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)  # before reading: a later silver change is newer
    with open_warehouse(duckdb, settings, writer=False) as con:
        sessions = event_days.stage_sessions(con, start, end, settings.session_gap_minutes)
        checks = [data_test_result(test, con, relation="staged_sessions") for test in SESSION_TESTS]
        with duckdb.write_lock():
            event_days.publish_sessions(con, start, end, built_at)
        # Abandoned carts over sessions with a cart (a session with a cart and no purchase).
        stats = con.execute(
            """SELECT avg(events), median(duration_seconds) / 60.0,
                      avg((purchases = 0)::DOUBLE) FILTER (WHERE carts > 0)
               FROM staged_sessions"""
        ).fetchone()
        preview = markdown_preview(con, "SELECT * FROM staged_sessions ORDER BY events DESC, session_id")
        total = scalar(con, "SELECT count(*) FROM gold.fact_user_sessions")
        schema = column_schema(con, "gold.fact_user_sessions")
    days = (end - start).days
    context.log.info(f"{sessions:,} sessions start in the {days} day(s) from {start:%Y-%m-%d} to {end:%Y-%m-%d}")
    # dagster/row_count is the run's partitions' rows, as Dagster reads it for a partitioned asset.
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": sessions,
            "dagster/column_schema": schema,
            "table": "gold.fact_user_sessions",
            "table_rows_total": total,
            "days": days,
            "preview": dg.MetadataValue.md(preview),
            "session_gap_minutes": settings.session_gap_minutes,
            "mean_events_per_session": rounded(stats[0]),
            "median_session_minutes": rounded(stats[1]),
            "cart_abandonment_rate": rounded(stats[2]),
        }
    )
    yield from checks


@dg.asset(key=DIM_USERS, deps=[FACT_USER_SESSIONS], pool=WAREHOUSE_POOL, **_gold)
def dim_users(duckdb: WarehouseResource, settings: EcomSettings) -> dg.MaterializeResult:
    """One row per shopper: first/last seen, sessions, funnel totals, lifetime value, recency."""
    with open_warehouse(duckdb, settings) as con:
        run_sql_file(con, SQL / "gold_dim_users.sql")
        metadata = table_metadata(con, "gold.dim_users", "lifetime_value DESC, user_id")
        returning, buyers = con.execute(
            "SELECT avg((sessions > 1)::INT), avg((purchases > 0)::INT) FROM gold.dim_users"
        ).fetchone()
    metadata.update(returning_user_share=rounded(returning), buyer_share=rounded(buyers))
    return dg.MaterializeResult(metadata=metadata)
