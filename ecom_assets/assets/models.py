"""ML: train three families and a recency reference, log to MLflow, register the champion, promote
through a gate.

Each training asset reports its own blocking check, `promotion_gate`: the decision (quality, then
the challenger against production on the same holdout) is made before the `production` alias
moves, and the check says why: passed (promoted), WARN (production kept: not better beyond the
margin and noise; or promoted while trailing the recency-only reference beyond noise), ERROR (the
champion ranks no better than the base rate: not promoted, downstream predictions do not run).
"""

import dagster as dg
from dagster_duckdb import DuckDBResource

from ecom_assets.assets.model_inputs import CART_SESSION_FEATURES, USER_ITEM_FEATURES
from ecom_assets.assets.ui_metadata import ML_TEAM, image_metadata, mlflow_model_version_url, mlflow_run_url, rounded
from ecom_assets.file_store import REPORTS
from ecom_assets.ml.batch_scoring import load_training_sample
from ecom_assets.ml.feature_specs import CART_TASK, PURCHASE_TASK, ModelTask
from ecom_assets.ml.lifecycle import TrainingReport, purchase_candidate_coverage, train_register_promote
from ecom_assets.ml.tracking import RegistryError, client
from ecom_assets.ml.training import InsufficientData, split_counts
from ecom_assets.resources import EcomSettings, MLSettings, open_warehouse

PURCHASE_MODEL = dg.AssetKey(["ml", "purchase_model"])
CART_ABANDONMENT_MODEL = dg.AssetKey(["ml", "cart_abandonment_model"])
MODEL_TABLES = {PURCHASE_MODEL: "ml.purchase_model", CART_ABANDONMENT_MODEL: "ml.cart_abandonment_model"}
PROMOTION_GATE = "promotion_gate"
TRAINING_READ_MEMORY_LIMIT = "1GB"  # DuckDB's, while a training reads its sample (a few hundred MB of rows)

# Out of the `warehouse` pool: a training reads its sample as a reader (no lock; the lake's last committed
# snapshot) and takes the write lock only for its small summary table, so another run's warehouse steps
# need not wait for its minutes of fitting.
_ml = dict(group_name="ml", kinds={"scikitlearn", "mlflow"}, owners=ML_TEAM)


def _gate_spec(key: dg.AssetKey) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        PROMOTION_GATE,
        asset=key,
        blocking=True,
        description="Decided before `production` moves: the champion (best validation PR-AUC) must beat the "
        "no-skill PR-AUC (else ERROR) and production's holdout PR-AUC on the same rows by more than "
        "ECOM_ML_PROMOTION_MARGIN with the 90% paired-bootstrap interval above zero (else WARN: production "
        "kept). Trailing the recency-only reference beyond noise is a WARN.",
    )


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
    with open_warehouse(duckdb, settings, writer=False) as con:
        # Beside another run's warehouse step with its own limit: both together stay under 4 GB.
        con.execute(f"SET memory_limit = '{TRAINING_READ_MEMORY_LIMIT}'")
        frame = load_training_sample(con, task, config)
        # Recall over all purchases needs every pair bought in the test window, candidate or not.
        extra = (
            purchase_candidate_coverage(con, task.feature_table, task.label)
            if task is PURCHASE_TASK and task.label in frame and frame[task.label].notna().any()
            else None
        )
    context.log.info(f"{task.what}: {len(frame):,} labelled rows read from {task.feature_table}")
    files = settings.files
    # The ROC/PR chart is written here and stored (uploaded, in the cluster profile) when the block ends.
    with files.output(REPORTS) as reports:
        try:
            report = train_register_promote(
                frame,
                task,
                config,
                ml_settings.uri(paths),
                paths.mlflow_artifacts,
                reports,
                params={"horizon_days": ml_settings.horizon_days, "lookback_days": ml_settings.lookback_days},
                log=context.log.info,
                holdout_extra=extra,
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
        except RegistryError as exc:
            raise dg.Failure(description=str(exc)) from exc
        summary = report.summary_table()
        with open_warehouse(duckdb, settings) as con:
            con.register("model_summary", summary)
            con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM model_summary")
            con.unregister("model_summary")
        uri = ml_settings.uri(paths)
        experiment_id = client(uri).get_run(report.logged.run_id).info.experiment_id
        return dg.MaterializeResult(
            metadata=_metadata(report, uri, ml_settings.ui_url, experiment_id, files.url(REPORTS, report.curves.name)),
            check_results=[_gate_result(report)],
        )


def _gate_result(report: TrainingReport) -> dg.AssetCheckResult:
    decision = report.decision
    if not decision.quality_passed:  # unfit to serve: downstream predictions do not run
        passed, severity = False, dg.AssetCheckSeverity.ERROR
    elif not decision.promoted or decision.quality_warnings:  # production kept, or a caveat to read
        passed, severity = False, dg.AssetCheckSeverity.WARN
    else:
        passed, severity = True, dg.AssetCheckSeverity.ERROR
    gate = decision.gate
    return dg.AssetCheckResult(
        check_name=PROMOTION_GATE,
        passed=passed,
        severity=severity,
        description=f"v{decision.challenger_version} ({decision.family}): "
        + ("promoted. " if decision.promoted else "not promoted. ")
        + decision.reason
        + "".join(f" Warning: {w}." for w in decision.quality_warnings),
        metadata={
            "promoted": decision.promoted,
            "production_version": decision.production_version or "",
            "challenger_pr_auc": rounded(decision.challenger_score),
            "production_pr_auc": rounded(decision.production_score) if decision.production_score is not None else "",
            "difference": rounded(gate.difference) if gate else "",
            "ci90_low": rounded(gate.ci90_low) if gate else "",
            "margin": rounded(gate.margin) if gate else "",
            "quality_problems": dg.MetadataValue.json(decision.quality_problems),
            "quality_warnings": dg.MetadataValue.json(decision.quality_warnings),
        },
    )


def _metadata(report: TrainingReport, uri: str, ui_url: str, experiment_id: str, curves_url: str) -> dict:
    champion = report.result.champion
    holdout = report.holdout
    decision = report.decision
    name, version = report.task.registered_model, report.logged.version
    metadata = {
        "registered_model": report.task.registered_model,
        "version": dg.MetadataValue.int(int(report.logged.version)),
        "champion_family": champion.family,
        "production_version": decision.production_version or "",
        "promoted": decision.promoted,
        "promotion": dg.MetadataValue.md(decision.as_markdown()),
        "positive_class": report.result.positive_class,
        "comparison": dg.MetadataValue.md(report.result.comparison().to_markdown()),
        "champion_vs_others": dg.MetadataValue.md(report.verdicts.to_markdown(index=False)),
        "holdout_pr_auc": rounded(holdout["pr_auc"]),
        "holdout_roc_auc": rounded(holdout["roc_auc"]),
        "holdout_base_rate": rounded(holdout["base_rate"]),
        "holdout_no_skill_pr_auc": rounded(holdout["no_skill_pr_auc"]),
        "holdout_pr_auc_lift": rounded(holdout["pr_auc_lift"]),
        "holdout_brier": rounded(holdout["brier"]),
        "holdout_brier_skill": rounded(holdout["brier_skill"]),
        "threshold": rounded(champion.threshold),
    }
    if "candidate_coverage" in holdout:
        metadata |= {
            "test_purchased_pairs": int(holdout["purchased_pairs"]),
            "candidate_coverage": rounded(holdout["candidate_coverage"]),
            "recall_over_all_purchases": rounded(holdout["recall_over_all_purchases"]),
        }
    return metadata | {
        "curves": image_metadata(report.curves.read_bytes(), f"{name} v{version}: ROC and precision-recall"),
        "curves_path": dg.MetadataValue.path(curves_url),
        "feature_importance": dg.MetadataValue.md(report.importance.head(15).round(4).to_markdown(index=False)),
        "single_feature_auc": dg.MetadataValue.md(report.result.leakage.head(8).to_markdown(index=False)),
        "split_counts": dg.MetadataValue.md(report.result.counts.to_markdown()),
        "trained_rows": report.result.trained_rows,
        "mlflow_run_id": report.logged.run_id,
        "mlflow_run": dg.MetadataValue.url(mlflow_run_url(ui_url, experiment_id, report.logged.run_id)),
        "mlflow_model_version": dg.MetadataValue.url(mlflow_model_version_url(ui_url, name, version)),
        "mlflow_tracking_uri": uri,
    }


@dg.asset(key=PURCHASE_MODEL, deps=[USER_ITEM_FEATURES], check_specs=[_gate_spec(PURCHASE_MODEL)], **_ml)
def purchase_model(
    context: dg.AssetExecutionContext, duckdb: DuckDBResource, settings: EcomSettings, ml_settings: MLSettings
) -> dg.MaterializeResult:
    """Will this user buy this item within H days? The champion, registered as ecommerce_purchase_prediction_gb."""
    return _train(context, duckdb, settings, ml_settings, PURCHASE_TASK, MODEL_TABLES[PURCHASE_MODEL])


@dg.asset(
    key=CART_ABANDONMENT_MODEL, deps=[CART_SESSION_FEATURES], check_specs=[_gate_spec(CART_ABANDONMENT_MODEL)], **_ml
)
def cart_abandonment_model(
    context: dg.AssetExecutionContext, duckdb: DuckDBResource, settings: EcomSettings, ml_settings: MLSettings
) -> dg.MaterializeResult:
    """Will this cart be abandoned? The champion family, registered as cart_abandonment_gb."""
    return _train(context, duckdb, settings, ml_settings, CART_TASK, MODEL_TABLES[CART_ABANDONMENT_MODEL])
