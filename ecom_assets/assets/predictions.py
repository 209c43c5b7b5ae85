"""Batch predictions, out of sample only (holdout: production; forward cutoff: its refit), and the snapshot."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from ecom_assets.assets.model_inputs import CART_SESSION_FEATURES, USER_ITEM_FEATURES
from ecom_assets.assets.models import CART_ABANDONMENT_MODEL, PURCHASE_MODEL
from ecom_assets.assets.ui_metadata import (
    GROWTH,
    ML_TEAM,
    column_schema,
    mlflow_model_version_url,
    mlflow_run_url,
    rounded,
    table_metadata,
)
from ecom_assets.file_store import PUBLISHED
from ecom_assets.lakehouse.warehouse import load_sql, markdown_preview, run_sql_file, scalar, transaction, would_change
from ecom_assets.ml import SQL
from ecom_assets.ml.batch_scoring import (
    FORWARD,
    HOLDOUT,
    IN_SAMPLE,
    PRODUCTION_SCORER,
    REFIT_SCORER,
    Scorer,
    load_training_sample,
    publish_scores,
    split_rows,
)
from ecom_assets.ml.feature_specs import CART_TASK, PURCHASE_TASK, ModelTask, names
from ecom_assets.ml.refit import CannotRefit, RefitModel, refit_production
from ecom_assets.ml.tracking import ProductionModel, client, load_production_model, outdated_contract
from ecom_assets.publishing import publish_parquet
from ecom_assets.resources import WAREHOUSE_POOL, EcomSettings, MLSettings, open_warehouse

ECOMMERCE_PREDICTIONS = dg.AssetKey(["gold", "ecommerce_predictions"])
CART_ABANDONMENT_SCORES = dg.AssetKey(["gold", "cart_abandonment_scores"])
PREDICTED_PURCHASE = dg.AssetKey(["ecommerce", "predicted_purchase"])

_gold = dict(group_name="gold", kinds={"duckdb", "mlflow"}, pool=WAREHOUSE_POOL, owners=ML_TEAM)

UNCHANGED_WHY = "unchanged since its last build: neither rewritten nor published again"

NOT_PUBLISHED_WHY = (
    "in-sample for the production model (fitted on train, threshold chosen on validation): "
    "their scores would flatter it, so they are not scored"
)


def _production(task: ModelTask, ml_settings: MLSettings, settings: EcomSettings) -> ProductionModel:
    try:
        production = load_production_model(task.registered_model, ml_settings.uri(settings.paths))
    except LookupError as exc:
        raise dg.Failure(description=str(exc)) from exc
    if production.features and production.features != names(task.specs):
        # An older release's model: say so, instead of a KeyError on a column that no longer exists.
        raise dg.Failure(
            description=outdated_contract(ml_settings.uri(settings.paths), task.registered_model, names(task.specs))
        )
    return production


def _refit(context, duckdb, settings, ml_settings, task: ModelTask, production: ProductionModel) -> RefitModel:
    """The production version refit on every labelled row (the recorded one when it exists)."""
    config = ml_settings.training

    def labelled():
        with open_warehouse(duckdb, settings, writer=False) as con:
            return load_training_sample(con, task, config)

    try:
        return refit_production(
            ml_settings.uri(settings.paths),
            task,
            production,
            labelled,
            settings.paths.mlflow_artifacts,
            log=context.log.info,
            max_rows=config.max_refit_rows,
            seed=config.seed,
        )
    except CannotRefit as exc:
        raise dg.Failure(description=str(exc)) from exc


def _score(
    context, duckdb, settings, ml_settings, task: ModelTask, temp: str, table: str, keys: dict[str, str]
) -> dg.MaterializeResult:
    """Score the holdout with production and the forward cutoff with its refit, only the rows `table` has
    no current prediction of (`batch_scoring.publish_scores`), built with `ml/sql/<schema>_<name>.sql`;
    train and validation rows are not scored. `keys`: the prediction's key columns -> the features'."""
    production = _production(task, ml_settings, settings)
    uri = ml_settings.uri(settings.paths)
    with open_warehouse(duckdb, settings, writer=False) as con:
        per_split = split_rows(con, task.feature_table)
    scorers = [
        Scorer(
            HOLDOUT,
            PRODUCTION_SCORER,
            production.model,
            int(production.version),
            production.run_id,
            production.trained_at,
            production.threshold,
        )
    ]
    refit = None
    if per_split.get(FORWARD):  # only the purchase features have a forward-looking cutoff today
        refit = _refit(context, duckdb, settings, ml_settings, task, production)
        scorers.append(
            Scorer(
                FORWARD,
                REFIT_SCORER,
                refit.model,
                int(production.version),
                refit.run_id,
                refit.trained_at,
                refit.threshold,
            )
        )
    context.log.info(
        f"scoring {task.feature_table}: {HOLDOUT} with models:/{task.registered_model}@production "
        f"(v{production.version}, threshold {production.threshold:.4f})"
        + (f", {FORWARD} with its refit (run {refit.run_id})" if refit else "")
    )
    with open_warehouse(duckdb, settings) as con:
        published = publish_scores(
            con,
            scorers,
            task.feature_table,
            keys,
            task.specs,
            temp,
            table,
            SQL / f"{table.replace('.', '_')}.sql",
            chunk_rows=ml_settings.score_chunk_rows,
        )
        metadata = table_metadata(con, table, "predicted_prob DESC")
        calibration = markdown_preview(con, load_sql(SQL / "prediction_calibration.sql"), {"predictions_table": table})
        per_scorer = markdown_preview(
            con,
            f"SELECT dataset, scored_by, model_version, mlflow_run_id, count(*) AS rows FROM {table} "
            "GROUP BY ALL ORDER BY dataset DESC",  # 'test' (the holdout) before 'score' (the forward cutoff)
        )
    not_published = {split: per_split.get(split, 0) for split in IN_SAMPLE}
    scored = sum(b.rows for b in published.scored.values())
    seconds = sum(b.seconds for b in published.scored.values())
    context.log.info(
        f"{table}: {metadata['dagster/row_count']:,} rows published ({scored:,} scored now, {published.kept:,} "
        f"kept, {published.dropped:,} dropped); "
        f"{sum(not_published.values()):,} in-sample rows ({', '.join(IN_SAMPLE)}) not scored"
    )
    experiment_id = client(uri).get_run(production.run_id).info.experiment_id
    result = {
        **metadata,
        "model": f"models:/{task.registered_model}@production",
        "model_version": int(production.version),
        "model_trained_at": production.trained_at,
        "threshold": rounded(production.threshold),
        "mlflow_run": dg.MetadataValue.url(mlflow_run_url(ml_settings.ui_url, experiment_id, production.run_id)),
        "mlflow_model_version": dg.MetadataValue.url(
            mlflow_model_version_url(ml_settings.ui_url, task.registered_model, production.version)
        ),
        "rows_published": dg.MetadataValue.md(per_scorer),
        "rows_scored_now": scored,
        "rows_kept": published.kept,
        "rows_not_published": dg.MetadataValue.int(sum(not_published.values())),
        "rows_not_published_why": dg.MetadataValue.md(
            ", ".join(f"{split}: {rows:,}" for split, rows in not_published.items()) + f" rows, {NOT_PUBLISHED_WHY}."
        ),
        "scoring_rows_per_second": round(scored / seconds) if seconds else 0,
        "actual_vs_predicted": dg.MetadataValue.md(calibration),
    }
    if refit is not None:
        result |= {
            "refit_run_id": refit.run_id,
            "refit_run": dg.MetadataValue.url(mlflow_run_url(ml_settings.ui_url, refit.experiment_id, refit.run_id)),
            "refit_rows": refit.rows,
            "refit_positives": refit.positives,
            "refit_trained_at": refit.trained_at,
            "refit_fit_seconds": round(refit.fit_seconds, 2),
            "refit_reused": refit.reused,
        }
    return dg.MaterializeResult(metadata=result)


@dg.asset(key=ECOMMERCE_PREDICTIONS, deps=[PURCHASE_MODEL, USER_ITEM_FEATURES], **_gold)
def ecommerce_predictions(
    context: dg.AssetExecutionContext, duckdb: DuckDBResource, settings: EcomSettings, ml_settings: MLSettings
) -> dg.MaterializeResult:
    """Purchase probabilities per user x item: holdout cutoff by the production model, forward one by its refit."""
    keys = {"cutoff": "cutoff", "visitorid": "user_id", "itemid": "item_id"}
    return _score(
        context, duckdb, settings, ml_settings, PURCHASE_TASK, "purchase_scores", "gold.ecommerce_predictions", keys
    )


@dg.asset(key=CART_ABANDONMENT_SCORES, deps=[CART_ABANDONMENT_MODEL, CART_SESSION_FEATURES], **_gold)
def cart_abandonment_scores(
    context: dg.AssetExecutionContext, duckdb: DuckDBResource, settings: EcomSettings, ml_settings: MLSettings
) -> dg.MaterializeResult:
    """Abandonment probabilities from the production model for the holdout sessions (train/validation not published)."""
    keys = {"session_id": "session_id"}
    return _score(
        context, duckdb, settings, ml_settings, CART_TASK, "cart_scores", "gold.cart_abandonment_scores", keys
    )


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
    files = settings.files
    table, name = "ecommerce.predicted_purchase", "predicted_purchase.parquet"
    target = files.url(PUBLISHED, name)
    with open_warehouse(duckdb, settings) as con:
        run_sql_file(con, SQL / "ecommerce_predicted_purchase_rows.sql")
        # Inside the purchase week no prediction changes: rewriting (sorting) the same rows and
        # publishing them again would cost seconds a day; comparing them costs a read of each.
        if not files.exists(PUBLISHED, name):
            why = f"{target} is missing: rewritten and published again"
        elif would_change(con, table, "SELECT * FROM predicted_purchase_rows"):
            why = "its rows differ from its last build's (or it has none yet): rewritten and published"
        else:
            why = None
        if why:
            # The table commits only once its Parquet file is stored (uploaded, in the cluster profile):
            # a failed publish leaves the table as it was, so the next run sees the change again.
            with transaction(con), files.output(PUBLISHED) as published:
                run_sql_file(con, SQL / "ecommerce_predicted_purchase.sql")
                publish_parquet(con, table, published / name)  # never seen half-written
        rows = scalar(con, f"SELECT count(*) FROM {table}")
        per_dataset = markdown_preview(
            con,
            f"""
            SELECT dataset, cutoff, count(*) AS rows, round(avg(converted), 4) AS conversion_rate,
                   round(avg(predicted_prob), 4) AS mean_predicted_prob
            FROM {table} GROUP BY ALL ORDER BY cutoff""",
        )
        schema = column_schema(con, table)
    if why:
        context.log.info(f"published {rows:,} rows to {target}: {why}")
    else:
        context.log.info(f"{table}: {rows:,} rows {UNCHANGED_WHY}; {target} kept")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "dagster/column_schema": schema,
            "table": table,
            "published": dg.MetadataValue.path(target),
            "per_cutoff": dg.MetadataValue.md(per_dataset),
            "rewritten": why is not None,
            "rewritten_why": why or UNCHANGED_WHY,
        }
    )
