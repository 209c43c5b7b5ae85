"""Batch predictions from the production models, and the published predicted-purchase snapshot."""

import os

import dagster as dg
from dagster_duckdb import DuckDBResource

from ecom_assets.assets.model_inputs import CART_SESSION_FEATURES, USER_ITEM_FEATURES
from ecom_assets.assets.models import CART_ABANDONMENT_MODEL, PURCHASE_MODEL
from ecom_assets.ml.feature_specs import CART_TASK, PURCHASE_TASK, ModelTask
from ecom_assets.ml.batch_scoring import score_table
from ecom_assets.ml.tracking import ProductionModel, load_production_model
from ecom_assets.resources import WAREHOUSE_POOL, EcomSettings, MLSettings, open_warehouse
from ecom_assets.lakehouse.warehouse import markdown_preview, scalar

ECOMMERCE_PREDICTIONS = dg.AssetKey(["gold", "ecommerce_predictions"])
CART_ABANDONMENT_SCORES = dg.AssetKey(["gold", "cart_abandonment_scores"])
PREDICTED_PURCHASE = dg.AssetKey(["ecommerce", "predicted_purchase"])

_gold = dict(group_name="gold", kinds={"duckdb", "mlflow"}, pool=WAREHOUSE_POOL)

PURCHASE_PREDICTIONS_SQL = """
CREATE OR REPLACE TABLE gold.ecommerce_predictions AS
SELECT f.user_id AS visitorid,
       f.item_id AS itemid,
       f.cutoff,
       f.label_window_end,
       f.dataset,
       f.converted                                        AS actual_label,
       CAST(s.predicted_prob >= $threshold AS INTEGER)    AS predicted_label,
       s.predicted_prob,
       CAST($version AS INTEGER)                          AS model_version,
       f.* EXCLUDE (user_id, item_id, cutoff, label_window_end, dataset, converted)
FROM gold.user_item_features AS f
JOIN purchase_scores AS s USING (cutoff, user_id, item_id)
ORDER BY f.cutoff, visitorid, itemid
"""

CART_SCORES_SQL = """
CREATE OR REPLACE TABLE gold.cart_abandonment_scores AS
SELECT f.session_id,
       f.user_id,
       f.session_start,
       f.decision_at,
       f.dataset,
       f.abandoned_cart                                   AS actual_label,
       CAST(s.predicted_prob >= $threshold AS INTEGER)    AS predicted_label,
       s.predicted_prob,
       CAST($version AS INTEGER)                          AS model_version,
       f.* EXCLUDE (session_id, user_id, session_start, decision_at, dataset, abandoned_cart)
FROM gold.cart_session_features AS f
JOIN cart_scores AS s USING (session_id)
ORDER BY f.session_start, f.session_id
"""

CALIBRATION_SQL = """
SELECT dataset, count(*) AS rows, round(avg(actual_label), 4) AS actual_rate,
       round(avg(predicted_prob), 4) AS mean_predicted_prob, round(avg(predicted_label), 4) AS predicted_positive_share
FROM {table} GROUP BY ALL ORDER BY min({order})
"""


def _production(task: ModelTask, ml_settings: MLSettings, settings: EcomSettings) -> ProductionModel:
    try:
        return load_production_model(task.registered_model, ml_settings.uri(settings.paths))
    except LookupError as exc:
        raise dg.Failure(description=str(exc)) from exc


def _score(context, duckdb, settings, ml_settings, task: ModelTask, temp: str, sql: str, table: str,
           order: str) -> dg.MaterializeResult:
    production = _production(task, ml_settings, settings)
    context.log.info(f"scoring {task.feature_table} with models:/{task.registered_model}@production "
                     f"(v{production.version}, threshold {production.threshold:.4f})")
    with open_warehouse(duckdb, settings) as con:
        batch = score_table(con, production.model, task.feature_table, task.keys, task.specs, temp,
                            chunk_rows=ml_settings.score_chunk_rows)
        con.execute(sql, {"threshold": production.threshold, "version": int(production.version)})
        rows = scalar(con, f"SELECT count(*) FROM {table}")
        calibration = markdown_preview(con, CALIBRATION_SQL.format(table=table, order=order))
        preview = markdown_preview(con, f"SELECT * FROM {table} ORDER BY predicted_prob DESC")
    context.log.info(f"{table}: {rows:,} rows scored at {batch.rows_per_second:,.0f} rows/s")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": rows,
        "table": table,
        "model": f"models:/{task.registered_model}@production",
        "model_version": int(production.version),
        "model_trained_at": production.trained_at,
        "threshold": round(production.threshold, 4),
        "scoring_rows_per_second": round(batch.rows_per_second),
        "actual_vs_predicted": dg.MetadataValue.md(calibration),
        "preview": dg.MetadataValue.md(preview),
    })


@dg.asset(key=ECOMMERCE_PREDICTIONS, deps=[PURCHASE_MODEL, USER_ITEM_FEATURES], **_gold)
def ecommerce_predictions(context: dg.AssetExecutionContext, duckdb: DuckDBResource, settings: EcomSettings,
                          ml_settings: MLSettings) -> dg.MaterializeResult:
    """Purchase probabilities from the production model for every cutoff x user x item; actual_label null for the latest cutoff."""
    return _score(context, duckdb, settings, ml_settings, PURCHASE_TASK, "purchase_scores",
                  PURCHASE_PREDICTIONS_SQL, "gold.ecommerce_predictions", "cutoff")


@dg.asset(key=CART_ABANDONMENT_SCORES, deps=[CART_ABANDONMENT_MODEL, CART_SESSION_FEATURES], **_gold)
def cart_abandonment_scores(context: dg.AssetExecutionContext, duckdb: DuckDBResource, settings: EcomSettings,
                            ml_settings: MLSettings) -> dg.MaterializeResult:
    """Abandonment probabilities from the production model for every session with a cart."""
    return _score(context, duckdb, settings, ml_settings, CART_TASK, "cart_scores",
                  CART_SCORES_SQL, "gold.cart_abandonment_scores", "session_start")


PREDICTED_PURCHASE_SQL = """
CREATE OR REPLACE TABLE ecommerce.predicted_purchase AS
SELECT visitorid, itemid, cutoff, label_window_end, dataset,
       dataset = 'score'   AS is_forward_looking,
       interaction_score, funnel_depth, engagement_score,
       actual_label        AS converted,
       predicted_prob, predicted_label, model_version
FROM gold.ecommerce_predictions
WHERE dataset IN ('test', 'score')
ORDER BY cutoff, predicted_prob DESC, visitorid, itemid
"""


@dg.asset(key=PREDICTED_PURCHASE, deps=[ECOMMERCE_PREDICTIONS], group_name="ecommerce", kinds={"duckdb", "parquet"},
          pool=WAREHOUSE_POOL)
def predicted_purchase(context: dg.AssetExecutionContext, duckdb: DuckDBResource,
                       settings: EcomSettings) -> dg.MaterializeResult:
    """The consumer table: holdout (converted known) and forward-looking predictions, published as Parquet."""
    target = settings.paths.published / "predicted_purchase.parquet"
    tmp = target.with_name(f".{target.name}.tmp")
    with open_warehouse(duckdb, settings) as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS ecommerce")
        con.execute(PREDICTED_PURCHASE_SQL)
        con.execute(f"COPY ecommerce.predicted_purchase TO '{tmp}' (FORMAT parquet)")
        rows = scalar(con, "SELECT count(*) FROM ecommerce.predicted_purchase")
        per_dataset = markdown_preview(con, """
            SELECT dataset, cutoff, count(*) AS rows, round(avg(converted), 4) AS conversion_rate,
                   round(avg(predicted_prob), 4) AS mean_predicted_prob
            FROM ecommerce.predicted_purchase GROUP BY ALL ORDER BY cutoff""")
    os.replace(tmp, target)  # readers never see a half-written snapshot
    context.log.info(f"published {rows:,} rows to {target}")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": rows,
        "table": "ecommerce.predicted_purchase",
        "published": dg.MetadataValue.path(str(target)),
        "per_cutoff": dg.MetadataValue.md(per_dataset),
    })
