"""Gold: sessions and users, rebuilt in SQL from all of silver."""

from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from ecom_assets.assets.silver import SILVER_EVENTS
from ecom_assets.assets.ui_metadata import DATA_PLATFORM, rounded, table_metadata
from ecom_assets.lakehouse import SQL
from ecom_assets.lakehouse.warehouse import run_sql_file
from ecom_assets.resources import WAREHOUSE_POOL, EcomSettings, open_warehouse

FACT_USER_SESSIONS = dg.AssetKey(["gold", "fact_user_sessions"])
DIM_USERS = dg.AssetKey(["gold", "dim_users"])

_gold = dict(group_name="gold", kinds={"duckdb"}, pool=WAREHOUSE_POOL, owners=DATA_PLATFORM)


def _rebuild(con, sql_file: Path, table: str, params=None, order_by: str = "1") -> dict:
    run_sql_file(con, sql_file, params)
    return table_metadata(con, table, order_by)


@dg.asset(key=FACT_USER_SESSIONS, deps=[SILVER_EVENTS], **_gold)
def fact_user_sessions(duckdb: DuckDBResource, settings: EcomSettings) -> dg.MaterializeResult:
    """User sessions: a new session after more than 30 minutes of inactivity, with funnel counts."""
    with open_warehouse(duckdb, settings) as con:
        metadata = _rebuild(
            con,
            SQL / "gold_fact_user_sessions.sql",
            "gold.fact_user_sessions",
            {"session_gap_minutes": settings.session_gap_minutes},
            order_by="events DESC, session_id",
        )
        # Abandoned carts over sessions with a cart (a session with a cart and no purchase).
        stats = con.execute(
            """SELECT avg(events), median(duration_seconds) / 60.0,
                      avg((purchases = 0)::DOUBLE) FILTER (WHERE carts > 0)
               FROM gold.fact_user_sessions"""
        ).fetchone()
    metadata.update(
        session_gap_minutes=settings.session_gap_minutes,
        mean_events_per_session=rounded(stats[0]),
        median_session_minutes=rounded(stats[1]),
        cart_abandonment_rate=rounded(stats[2]),
    )
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(key=DIM_USERS, deps=[FACT_USER_SESSIONS], **_gold)
def dim_users(duckdb: DuckDBResource, settings: EcomSettings) -> dg.MaterializeResult:
    """One row per shopper: first/last seen, sessions, funnel totals, lifetime value, recency."""
    with open_warehouse(duckdb, settings) as con:
        metadata = _rebuild(con, SQL / "gold_dim_users.sql", "gold.dim_users", order_by="lifetime_value DESC, user_id")
        returning, buyers = con.execute(
            "SELECT avg((sessions > 1)::INT), avg((purchases > 0)::INT) FROM gold.dim_users"
        ).fetchone()
    metadata.update(returning_user_share=rounded(returning), buyer_share=rounded(buyers))
    return dg.MaterializeResult(metadata=metadata)
