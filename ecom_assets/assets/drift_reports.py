"""Monitoring: Evidently drift between each production model's training features and its current batch."""

from dataclasses import dataclass

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource

from ecom_assets.assets.predictions import CART_ABANDONMENT_SCORES, ECOMMERCE_PREDICTIONS
from ecom_assets.assets.ui_metadata import ML_TEAM, file_url, mlflow_model_version_url, rounded
from ecom_assets.file_store import REPORTS
from ecom_assets.lakehouse.warehouse import keyed_sample, scalar
from ecom_assets.ml.feature_specs import CART_TASK, PURCHASE_TASK, ModelTask
from ecom_assets.ml.tracking import client, load_reference_features, production_model_version
from ecom_assets.monitoring.drift import compute_drift, write_report
from ecom_assets.monitoring.retraining import DriftReportRecord
from ecom_assets.resources import WAREHOUSE_POOL, EcomSettings, MLSettings, open_warehouse

PURCHASE_DRIFT_REPORT = dg.AssetKey(["monitoring", "purchase_drift_report"])
CART_ABANDONMENT_DRIFT_REPORT = dg.AssetKey(["monitoring", "cart_abandonment_drift_report"])


@dataclass(frozen=True)
class MonitoredModel:
    """A model, the report that watches it, and which rows are its current batch."""

    report_name: str  # file names: <report_name>_drift_<batch>.html
    key: dg.AssetKey
    task: ModelTask
    batch_filter: str  # the rows being scored now (forward-looking or most recent)
    batch_label_sql: str


PURCHASE_MONITOR = MonitoredModel(
    "purchase",
    PURCHASE_DRIFT_REPORT,
    PURCHASE_TASK,
    batch_filter="dataset = 'score'",  # the latest cutoff: what the model is predicting forward
    batch_label_sql="strftime(max(cutoff), '%Y-%m-%d')",
)
CART_ABANDONMENT_MONITOR = MonitoredModel(
    "cart_abandonment",
    CART_ABANDONMENT_DRIFT_REPORT,
    CART_TASK,
    batch_filter="dataset = 'test'",  # the most recent week of sessions with a cart
    batch_label_sql="strftime(min(session_start), '%Y-%m-%d')",
)
MONITORS = (PURCHASE_MONITOR, CART_ABANDONMENT_MONITOR)


def _current_batch(con, monitor: MonitoredModel, sample_rows: int) -> tuple[pd.DataFrame, int, str]:
    table, where = monitor.task.feature_table, monitor.batch_filter
    rows = scalar(con, f"SELECT count(*) FROM {table} WHERE {where}")
    if not rows:
        raise dg.Failure(description=f"{table} has no rows where {where}: nothing to compare with the reference")
    batch = scalar(con, f"SELECT {monitor.batch_label_sql} FROM {table} WHERE {where}")
    columns = ", ".join(monitor.task.feature_names)
    # A fixed-seed sample keeps the report fast and repeatable at any batch size.
    batch_rows = f"(SELECT * FROM {table} WHERE {where})"
    frame = con.execute(f"SELECT {columns} FROM ({keyed_sample(batch_rows, monitor.task.keys, sample_rows, 7)})").df()
    return frame, rows, batch


def _drift_report(
    context: dg.AssetExecutionContext,
    duckdb: DuckDBResource,
    settings: EcomSettings,
    ml_settings: MLSettings,
    monitor: MonitoredModel,
) -> dg.MaterializeResult:
    uri = ml_settings.uri(settings.paths)
    name = monitor.task.registered_model
    production = production_model_version(uri, name)  # the registry entry: no need to load the model
    if production is None:
        raise dg.Failure(description=f"{name} has no production version in {uri}: train it first")
    reference = load_reference_features(name, uri)
    with open_warehouse(duckdb, settings) as con:
        current, current_rows, batch = _current_batch(con, monitor, settings.drift_sample_rows)
    context.log.info(
        f"comparing {len(current):,} of {current_rows:,} rows of batch {batch} with "
        f"{len(reference):,} training rows of {name} v{production.version}"
    )
    summary, snapshot = compute_drift(
        reference,
        current,
        model=monitor.report_name,
        batch=batch,
        columns=monitor.task.feature_names,
        sample_rows=settings.drift_sample_rows,
        reference_name=f"the training features of {name} v{production.version}",
    )
    summary.current_rows = current_rows
    files = settings.files
    with files.output(REPORTS) as reports:  # stored (uploaded, in the cluster profile) when the block ends
        html = write_report(summary, snapshot, reports, shown_in=files.url(REPORTS, ""))
        client(uri).log_artifact(production.run_id, str(html), artifact_path="drift_reports")
    report = files.url(REPORTS, html.name)
    context.log.info(f"{summary.drift_share:.0%} of columns drifted: {', '.join(summary.drifted_columns) or 'none'}")
    return dg.MaterializeResult(
        metadata={
            "batch": batch,
            # Rounded as shown: the sensor and the check compare this very value with the threshold.
            "drift_share": rounded(summary.drift_share),
            "drift_threshold": settings.drift_threshold,
            "drifted_columns": ", ".join(summary.drifted_columns) or "none",
            "columns": dg.MetadataValue.md(summary.markdown()),
            "report": dg.MetadataValue.path(report),
            "report_link": file_url(report),
            "report_title": summary.title,
            "model": f"models:/{name}@production (v{production.version})",
            "model_version_url": dg.MetadataValue.url(
                mlflow_model_version_url(ml_settings.ui_url, name, production.version)
            ),
            "reference_rows": summary.reference_rows,
            "current_rows": current_rows,
            "sample_rows_per_side": settings.drift_sample_rows,
        }
    )


_monitoring = dict(group_name="monitoring", kinds={"evidently", "mlflow"}, pool=WAREHOUSE_POOL, owners=ML_TEAM)


@dg.asset(key=PURCHASE_DRIFT_REPORT, deps=[ECOMMERCE_PREDICTIONS], **_monitoring)
def purchase_drift_report(
    context: dg.AssetExecutionContext, duckdb: DuckDBResource, settings: EcomSettings, ml_settings: MLSettings
) -> dg.MaterializeResult:
    """Evidently data drift: the purchase model's training features vs the latest cutoff it scores."""
    return _drift_report(context, duckdb, settings, ml_settings, PURCHASE_MONITOR)


@dg.asset(key=CART_ABANDONMENT_DRIFT_REPORT, deps=[CART_ABANDONMENT_SCORES], **_monitoring)
def cart_abandonment_drift_report(
    context: dg.AssetExecutionContext, duckdb: DuckDBResource, settings: EcomSettings, ml_settings: MLSettings
) -> dg.MaterializeResult:
    """Evidently data drift: the cart-abandonment model's training features vs the latest week of carts."""
    return _drift_report(context, duckdb, settings, ml_settings, CART_ABANDONMENT_MONITOR)


def latest_drift_record(instance: dg.DagsterInstance, monitor: MonitoredModel) -> DriftReportRecord | None:
    """What the latest materialization of a monitor's report says (read by its check and the sensor)."""
    records = instance.fetch_materializations(monitor.key, limit=1).records
    if not records or records[0].asset_materialization is None:
        return None
    meta = records[0].asset_materialization.metadata
    return DriftReportRecord(
        model=monitor.report_name,
        batch=str(meta["batch"].value),
        drift_share=float(meta["drift_share"].value),
        drifted_columns=str(meta["drifted_columns"].value),
        storage_id=records[0].storage_id,
        report_path=str(meta["report"].value),
    )
