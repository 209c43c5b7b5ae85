"""ML: train gradient boosting against two baselines, log to MLflow, register, promote if better."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from ecom_assets.assets.model_inputs import CART_SESSION_FEATURES, USER_ITEM_FEATURES
from ecom_assets.assets.ui_metadata import ML_TEAM, image_metadata, mlflow_model_version_url, mlflow_run_url, rounded
from ecom_assets.ml.batch_scoring import load_labelled_sample
from ecom_assets.ml.feature_specs import CART_TASK, PURCHASE_TASK, ModelTask
from ecom_assets.ml.lifecycle import TrainingReport, train_register_promote
from ecom_assets.ml.tracking import client
from ecom_assets.ml.training import InsufficientData, split_counts
from ecom_assets.resources import WAREHOUSE_POOL, EcomSettings, MLSettings, open_warehouse

PURCHASE_MODEL = dg.AssetKey(["ml", "purchase_model"])
CART_ABANDONMENT_MODEL = dg.AssetKey(["ml", "cart_abandonment_model"])
MODEL_TABLES = {PURCHASE_MODEL: "ml.purchase_model", CART_ABANDONMENT_MODEL: "ml.cart_abandonment_model"}

_ml = dict(group_name="ml", kinds={"scikitlearn", "mlflow"}, pool=WAREHOUSE_POOL, owners=ML_TEAM)


def _train(
    context: dg.AssetExecutionContext,
    duckdb: DuckDBResource,
    settings: EcomSettings,
    ml_settings: MLSettings,
    task: ModelTask,
    table: str,
) -> dg.MaterializeResult:
    paths = settings.paths
    config = ml_settings.training
    with open_warehouse(duckdb, settings) as con:
        frame = load_labelled_sample(
            con,
            task.feature_table,
            task.label,
            config.max_train_rows,
            config.max_eval_rows,
            order_by=", ".join(task.keys),
            seed=config.seed,
        )
    context.log.info(f"{task.what}: {len(frame):,} labelled rows read from {task.feature_table}")
    try:
        report = train_register_promote(
            frame,
            task,
            config,
            ml_settings.uri(paths),
            paths.mlflow_artifacts,
            paths.reports,
            params={"horizon_days": ml_settings.horizon_days, "lookback_days": ml_settings.lookback_days},
            log=context.log.info,
        )
    except InsufficientData as exc:
        raise dg.Failure(
            description=str(exc),
            metadata={
                "split_counts": dg.MetadataValue.md(split_counts(frame, task.label).to_markdown())
                if task.label in frame
                else dg.MetadataValue.md("_no labelled rows_")
            },
        ) from exc
    summary = report.summary_table()
    with open_warehouse(duckdb, settings) as con:
        con.register("model_summary", summary)
        con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM model_summary")
        con.unregister("model_summary")
    uri = ml_settings.uri(paths)
    experiment_id = client(uri).get_run(report.logged.run_id).info.experiment_id
    return dg.MaterializeResult(metadata=_metadata(report, uri, ml_settings.ui_url, experiment_id))


def _metadata(report: TrainingReport, uri: str, ui_url: str, experiment_id: str) -> dict:
    gb = report.result.champion
    decision = report.decision
    name, version = report.task.registered_model, report.logged.version
    return {
        "registered_model": report.task.registered_model,
        "version": dg.MetadataValue.int(int(report.logged.version)),
        "production_version": decision.production_version or "",
        "promoted": decision.promoted,
        "promotion": dg.MetadataValue.md(decision.as_markdown()),
        "comparison": dg.MetadataValue.md(report.result.comparison().to_markdown()),
        "gb_vs_baselines": dg.MetadataValue.md(report.verdicts.to_markdown(index=False)),
        "holdout_pr_auc": rounded(gb.test["pr_auc"]),
        "holdout_roc_auc": rounded(gb.test["roc_auc"]),
        "threshold": rounded(gb.threshold),
        "curves": image_metadata(report.curves.read_bytes(), f"{name} v{version}: ROC and precision-recall"),
        "curves_path": dg.MetadataValue.path(str(report.curves)),
        "feature_importance": dg.MetadataValue.md(report.importance.head(15).round(4).to_markdown(index=False)),
        "single_feature_auc": dg.MetadataValue.md(report.result.leakage.head(8).to_markdown(index=False)),
        "split_counts": dg.MetadataValue.md(report.result.counts.to_markdown()),
        "trained_rows": report.result.trained_rows,
        "mlflow_run_id": report.logged.run_id,
        "mlflow_run": dg.MetadataValue.url(mlflow_run_url(ui_url, experiment_id, report.logged.run_id)),
        "mlflow_model_version": dg.MetadataValue.url(mlflow_model_version_url(ui_url, name, version)),
        "mlflow_tracking_uri": uri,
    }


@dg.asset(key=PURCHASE_MODEL, deps=[USER_ITEM_FEATURES], **_ml)
def purchase_model(
    context: dg.AssetExecutionContext, duckdb: DuckDBResource, settings: EcomSettings, ml_settings: MLSettings
) -> dg.MaterializeResult:
    """Will this user buy this item within H days? GB vs baselines, registered as ecommerce_purchase_prediction_gb."""
    return _train(context, duckdb, settings, ml_settings, PURCHASE_TASK, MODEL_TABLES[PURCHASE_MODEL])


@dg.asset(key=CART_ABANDONMENT_MODEL, deps=[CART_SESSION_FEATURES], **_ml)
def cart_abandonment_model(
    context: dg.AssetExecutionContext, duckdb: DuckDBResource, settings: EcomSettings, ml_settings: MLSettings
) -> dg.MaterializeResult:
    """Will this cart be abandoned? GB vs baselines, registered as cart_abandonment_gb."""
    return _train(context, duckdb, settings, ml_settings, CART_TASK, MODEL_TABLES[CART_ABANDONMENT_MODEL])
