"""Batch predictions from the production models, and the published predicted-purchase snapshot."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from ecom_assets.assets.model_inputs import CART_SESSION_FEATURES, USER_ITEM_FEATURES
from ecom_assets.assets.models import CART_ABANDONMENT_MODEL, PURCHASE_MODEL
from ecom_assets.assets.ui_metadata import GROWTH, ML_TEAM, column_schema, rounded, table_metadata
from ecom_assets.lakehouse.warehouse import load_sql, markdown_preview, run_sql_file, scalar
from ecom_assets.ml import SQL
from ecom_assets.ml.batch_scoring import score_table
from ecom_assets.ml.feature_specs import CART_TASK, PURCHASE_TASK, ModelTask
from ecom_assets.ml.tracking import ProductionModel, load_production_model
from ecom_assets.publishing import publish_parquet
from ecom_assets.resources import WAREHOUSE_POOL, EcomSettings, MLSettings, open_warehouse

ECOMMERCE_PREDICTIONS = dg.AssetKey(["gold", "ecommerce_predictions"])
CART_ABANDONMENT_SCORES = dg.AssetKey(["gold", "cart_abandonment_scores"])
PREDICTED_PURCHASE = dg.AssetKey(["ecommerce", "predicted_purchase"])

_gold = dict(group_name="gold", kinds={"duckdb", "mlflow"}, pool=WAREHOUSE_POOL, owners=ML_TEAM)


def _production(task: ModelTask, ml_settings: MLSettings, settings: EcomSettings) -> ProductionModel:
    try:
        return load_production_model(task.registered_model, ml_settings.uri(settings.paths))
    except LookupError as exc:
        raise dg.Failure(description=str(exc)) from exc


def _score(context, duckdb, settings, ml_settings, task: ModelTask, temp: str, table: str) -> dg.MaterializeResult:
    """Score `task.feature_table` into `temp`, then build `table` with `ml/sql/<schema>_<name>.sql`."""
    production = _production(task, ml_settings, settings)
    context.log.info(
        f"scoring {task.feature_table} with models:/{task.registered_model}@production "
        f"(v{production.version}, threshold {production.threshold:.4f})"
    )
    with open_warehouse(duckdb, settings) as con:
        batch = score_table(
            con,
            production.model,
            task.feature_table,
            task.keys,
            task.specs,
            temp,
            chunk_rows=ml_settings.score_chunk_rows,
        )
        run_sql_file(
            con,
            SQL / f"{table.replace('.', '_')}.sql",
            {"threshold": production.threshold, "version": int(production.version)},
        )
        metadata = table_metadata(con, table, "predicted_prob DESC")
        calibration = markdown_preview(con, load_sql(SQL / "prediction_calibration.sql"), {"predictions_table": table})
    context.log.info(f"{table}: {metadata['dagster/row_count']:,} rows scored at {batch.rows_per_second:,.0f} rows/s")
    return dg.MaterializeResult(
        metadata={
            **metadata,
            "model": f"models:/{task.registered_model}@production",
            "model_version": int(production.version),
            "model_trained_at": production.trained_at,
            "threshold": rounded(production.threshold),
            "scoring_rows_per_second": round(batch.rows_per_second),
            "actual_vs_predicted": dg.MetadataValue.md(calibration),
        }
    )


@dg.asset(key=ECOMMERCE_PREDICTIONS, deps=[PURCHASE_MODEL, USER_ITEM_FEATURES], **_gold)
def ecommerce_predictions(
    context: dg.AssetExecutionContext, duckdb: DuckDBResource, settings: EcomSettings, ml_settings: MLSettings
) -> dg.MaterializeResult:
    """Production-model purchase probabilities per cutoff x user x item; actual_label null for the latest cutoff."""
    return _score(
        context, duckdb, settings, ml_settings, PURCHASE_TASK, "purchase_scores", "gold.ecommerce_predictions"
    )


@dg.asset(key=CART_ABANDONMENT_SCORES, deps=[CART_ABANDONMENT_MODEL, CART_SESSION_FEATURES], **_gold)
def cart_abandonment_scores(
    context: dg.AssetExecutionContext, duckdb: DuckDBResource, settings: EcomSettings, ml_settings: MLSettings
) -> dg.MaterializeResult:
    """Abandonment probabilities from the production model for every session with a cart."""
    return _score(context, duckdb, settings, ml_settings, CART_TASK, "cart_scores", "gold.cart_abandonment_scores")


@dg.asset(
    key=PREDICTED_PURCHASE,
    deps=[ECOMMERCE_PREDICTIONS],
    group_name="ecommerce",
    kinds={"duckdb", "parquet"},
    pool=WAREHOUSE_POOL,
    owners=GROWTH,
)
def predicted_purchase(
    context: dg.AssetExecutionContext, duckdb: DuckDBResource, settings: EcomSettings
) -> dg.MaterializeResult:
    """The consumer table: holdout (converted known) and forward-looking predictions, published as Parquet."""
    target = settings.paths.published / "predicted_purchase.parquet"
    with open_warehouse(duckdb, settings) as con:
        run_sql_file(con, SQL / "ecommerce_predicted_purchase.sql")
        publish_parquet(con, "ecommerce.predicted_purchase", target)  # readers never see a half-written snapshot
        rows = scalar(con, "SELECT count(*) FROM ecommerce.predicted_purchase")
        per_dataset = markdown_preview(
            con,
            """
            SELECT dataset, cutoff, count(*) AS rows, round(avg(converted), 4) AS conversion_rate,
                   round(avg(predicted_prob), 4) AS mean_predicted_prob
            FROM ecommerce.predicted_purchase GROUP BY ALL ORDER BY cutoff""",
        )
        schema = column_schema(con, "ecommerce.predicted_purchase")
    context.log.info(f"published {rows:,} rows to {target}")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "dagster/column_schema": schema,
            "table": "ecommerce.predicted_purchase",
            "published": dg.MetadataValue.path(str(target)),
            "per_cutoff": dg.MetadataValue.md(per_dataset),
        }
    )
