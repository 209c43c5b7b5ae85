"""Gold model inputs: leak-free purchase features per cutoff x user x item, and cart sessions."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from ecom_assets.assets.gold import FACT_USER_SESSIONS
from ecom_assets.assets.silver import SILVER_EVENTS
from ecom_assets.assets.ui_metadata import DATA_PLATFORM, rounded, table_metadata
from ecom_assets.lakehouse.warehouse import load_sql, markdown_preview, scalar
from ecom_assets.ml import SQL
from ecom_assets.ml.feature_cutoffs import refresh_user_item_features
from ecom_assets.ml.feature_days import refresh_cart_session_features
from ecom_assets.ml.feature_specs import CART_LABEL, PURCHASE_LABEL
from ecom_assets.resources import WAREHOUSE_POOL, EcomSettings, MLSettings, open_warehouse

USER_ITEM_FEATURES = dg.AssetKey(["gold", "user_item_features"])
CART_SESSION_FEATURES = dg.AssetKey(["gold", "cart_session_features"])

_gold = dict(group_name="gold", kinds={"duckdb"}, pool=WAREHOUSE_POOL, owners=DATA_PLATFORM)


@dg.asset(key=USER_ITEM_FEATURES, deps=[SILVER_EVENTS], **_gold)
def user_item_features(
    context: dg.AssetExecutionContext, duckdb: DuckDBResource, settings: EcomSettings, ml_settings: MLSettings
) -> dg.MaterializeResult:
    """Purchase features per cutoff x user x item from events before the cutoff; label: bought within H days.
    Cutoffs on a fixed calendar, the forward one too: each is computed once and kept until its inputs change."""
    windows = ml_settings.windows
    with open_warehouse(duckdb, settings) as con:
        refresh = refresh_user_item_features(con, windows)
        metadata = table_metadata(
            con, "gold.user_item_features", "cutoff DESC, interaction_score DESC, user_id, item_id"
        )
        per_cutoff = markdown_preview(con, load_sql(SQL / "user_item_features_per_cutoff.sql"), limit=50)
        # Over labelled rows only: the forward-looking cutoff has no label yet.
        label_rate = scalar(con, f"SELECT avg({PURCHASE_LABEL}::DOUBLE) FROM gold.user_item_features")
    context.log.info(
        f"gold.user_item_features: {metadata['dagster/row_count']:,} rows, horizon {windows.horizon_days} days; "
        f"computed {len(refresh.built)} cutoff(s) ({refresh.rows_built:,} rows, {refresh.rows_changed:,} of them "
        f"changed or new{', everything' if refresh.everything else ''}), kept {len(refresh.kept)}, "
        f"dropped {len(refresh.dropped)}"
    )
    return dg.MaterializeResult(
        metadata={
            **metadata,
            "horizon_days": windows.horizon_days,
            "lookback_days": windows.lookback_days,
            "cutoffs_computed": dg.MetadataValue.text(", ".join(map(str, refresh.built)) or "none"),
            "cutoffs_kept": len(refresh.kept),
            "rows_computed": refresh.rows_built,
            "rows_changed": refresh.rows_changed,
            "purchase_label_rate": rounded(label_rate),
            "rows_per_cutoff": dg.MetadataValue.md(per_cutoff),
        }
    )


@dg.asset(key=CART_SESSION_FEATURES, deps=[FACT_USER_SESSIONS, SILVER_EVENTS], **_gold)
def cart_session_features(
    context: dg.AssetExecutionContext, duckdb: DuckDBResource, settings: EcomSettings, ml_settings: MLSettings
) -> dg.MaterializeResult:
    """Cart-abandonment features at each session's first add-to-cart; label: no purchase after it.
    Only the days of sessions rebuilt since (and the days after them) are computed."""
    with open_warehouse(duckdb, settings) as con:
        refresh = refresh_cart_session_features(con, ml_settings.horizon_days)
        metadata = table_metadata(con, "gold.cart_session_features", "session_start DESC, session_id")
        per_split = markdown_preview(con, load_sql(SQL / "cart_session_features_per_split.sql"))
        abandonment = scalar(con, f"SELECT avg({CART_LABEL}::DOUBLE) FROM gold.cart_session_features")
    context.log.info(
        f"gold.cart_session_features: {metadata['dagster/row_count']:,} sessions with a cart; computed "
        f"{refresh.rows_built:,} rows from {refresh.first_day or '(no day)'}"
        f"{' (everything)' if refresh.everything else ''}, {refresh.resplit:,} older rows changed split"
    )
    return dg.MaterializeResult(
        metadata={
            **metadata,
            "abandonment_rate": rounded(abandonment),
            "computed_from_day": dg.MetadataValue.text(str(refresh.first_day or "none")),
            "rows_computed": refresh.rows_built,
            "rows_per_split": dg.MetadataValue.md(per_split),
        }
    )
