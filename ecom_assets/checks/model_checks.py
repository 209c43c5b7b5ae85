"""Checks on the ML assets: leakage (blocking), prediction completeness, rates.

The leakage check scores each feature alone against the label on a bounded sample of labelled
rows: a feature with ROC-AUC >= 0.98 reads the label off its input (the old funnel_depth = 3),
so training must not start (ERROR, blocking); from 0.90 it warns and names the features (a leak
or a very strong signal: worth a look); no labelled rows, or a single class, fails: nothing was
checked. The model-quality and promotion gate is a check the training assets report themselves
(`assets/models.py`), decided before the `production` alias moves. The rest are the data tests
of `ecom_assets.ml.model_data_tests`.
"""

import dagster as dg
from dagster_duckdb import DuckDBResource

from ecom_assets.assets.model_inputs import CART_SESSION_FEATURES, USER_ITEM_FEATURES
from ecom_assets.checks.lakehouse_checks import build_data_test
from ecom_assets.lakehouse.warehouse import keyed_sample
from ecom_assets.ml.feature_specs import CART_TASK, PURCHASE_TASK, ModelTask
from ecom_assets.ml.model_data_tests import ML_DATA_TESTS
from ecom_assets.ml.training import LEAKAGE_AUC, LEAKAGE_WARN_AUC, LeakageReport, leakage_report
from ecom_assets.resources import WAREHOUSE_POOL, EcomSettings, open_warehouse

LEAKAGE_SAMPLE_ROWS = 200_000


def _leakage_check(asset: dg.AssetKey, task: ModelTask) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=asset,
        name="no_single_feature_leaks_label",
        blocking=True,
        pool=WAREHOUSE_POOL,
        description=f"No feature alone reaches ROC-AUC >= {LEAKAGE_AUC} on the label (fails), warns from "
        f"{LEAKAGE_WARN_AUC}; fails when there is no labelled row (a sample of at most {LEAKAGE_SAMPLE_ROWS:,}).",
    )
    def _check(duckdb: DuckDBResource, settings: EcomSettings) -> dg.AssetCheckResult:
        with open_warehouse(duckdb, settings, writer=False) as con:
            labelled = f"(SELECT * FROM {task.feature_table} WHERE {task.label} IS NOT NULL)"
            frame = con.execute(keyed_sample(labelled, task.keys, LEAKAGE_SAMPLE_ROWS)).df()
        return leakage_result(leakage_report(frame, task))

    return _check


def leakage_result(report: LeakageReport) -> dg.AssetCheckResult:
    """ERROR (blocking) on a leaking feature or nothing to check, WARN on a suspicious one."""
    warn_only = report.passed and bool(report.suspicious)
    return dg.AssetCheckResult(
        passed=report.passed and not warn_only,
        severity=dg.AssetCheckSeverity.WARN if warn_only else dg.AssetCheckSeverity.ERROR,
        description=report.summary(),
        metadata={
            "leaking_features": dg.MetadataValue.json(report.leaking),
            "suspicious_features": dg.MetadataValue.json(report.suspicious),
            "rows_scored": report.rows,
            "single_feature_auc": dg.MetadataValue.md(
                report.scores.head(10).to_markdown(index=False) if len(report.scores) else "_no labelled rows_"
            ),
        },
    )


leakage_checks = [_leakage_check(USER_ITEM_FEATURES, PURCHASE_TASK), _leakage_check(CART_SESSION_FEATURES, CART_TASK)]
model_data_checks = [build_data_test(t) for t in ML_DATA_TESTS]
