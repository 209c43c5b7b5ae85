"""Checks on the ML assets: leakage (blocking), model quality, prediction completeness, rates.

The leakage check scores each feature alone against the label on a bounded sample of labelled
rows: a feature with ROC-AUC >= 0.98 reads the label off its input (the old funnel_depth = 3),
so training must not start. The rest are SQL data tests in the pattern of `checks.py`.
"""

from __future__ import annotations

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource

from ecom_assets.assets.features import CART_SESSION_FEATURES, USER_ITEM_FEATURES
from ecom_assets.assets.insights import RATE_INSIGHTS, insight_key
from ecom_assets.assets.ml import MODEL_TABLES
from ecom_assets.assets.predictions import CART_ABANDONMENT_SCORES, ECOMMERCE_PREDICTIONS
from ecom_assets.checks import DataTest, build_data_test
from ecom_assets.ml.features import CART_TASK, PURCHASE_TASK, ModelTask
from ecom_assets.ml.training import LEAKAGE_AUC, single_feature_auc
from ecom_assets.resources import WAREHOUSE_POOL, EcomSettings, warehouse

LEAKAGE_SAMPLE_ROWS = 200_000


def leaking_features(frame: pd.DataFrame, task: ModelTask, limit: float = LEAKAGE_AUC) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(every feature's single-feature AUC, the ones at or above `limit`)."""
    labelled = frame[frame[task.label].notna()]
    if labelled.empty or labelled[task.label].nunique() < 2:
        empty = pd.DataFrame(columns=["feature", "roc_auc"])
        return empty, empty
    scores = single_feature_auc(labelled, labelled[task.label].astype(int).to_numpy(), task.specs)
    return scores, scores[scores["roc_auc"] >= limit]


def _leakage_check(asset: dg.AssetKey, task: ModelTask) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=asset, name="no_single_feature_leaks_label", blocking=True, pool=WAREHOUSE_POOL,
                    description=f"No feature alone reaches ROC-AUC >= {LEAKAGE_AUC} on the label "
                                f"(labelled rows, a sample of at most {LEAKAGE_SAMPLE_ROWS:,}).")
    def _check(duckdb: DuckDBResource, settings: EcomSettings) -> dg.AssetCheckResult:
        with warehouse(duckdb, settings) as con:
            frame = con.execute(
                f"SELECT * FROM (SELECT * FROM {task.feature_table} WHERE {task.label} IS NOT NULL) "
                f"USING SAMPLE reservoir({LEAKAGE_SAMPLE_ROWS} ROWS) REPEATABLE (0)").df()
        scores, leaking = leaking_features(frame, task)
        return dg.AssetCheckResult(
            passed=leaking.empty,
            description=("passed" if leaking.empty else
                         f"{len(leaking)} feature(s) predict the label alone: {', '.join(leaking['feature'])}"),
            metadata={"leaking_features": len(leaking), "rows_scored": len(frame),
                      "single_feature_auc": dg.MetadataValue.md(scores.head(10).to_markdown(index=False)
                                                                if len(scores) else "_no labelled rows_")},
        )

    return _check


def _completeness(asset: dg.AssetKey, table: str, features: str, keys: dict[str, str]) -> DataTest:
    """One prediction per feature row, and every probability within [0, 1]."""
    on = " AND ".join(f"p.{p} = f.{f}" for p, f in keys.items())
    key_list = ", ".join(keys)
    return DataTest(asset, "one_prediction_per_row_with_probability",
                    "Every feature row has exactly one prediction and predicted_prob is within [0, 1].", f"""
        SELECT 'no prediction' AS problem, {', '.join(f'f.{f}' for f in keys.values())}
        FROM {features} AS f ANTI JOIN {table} AS p ON {on}
        UNION ALL
        SELECT 'duplicate prediction', {key_list} FROM {table} GROUP BY {key_list} HAVING count(*) > 1
        UNION ALL
        SELECT 'probability outside [0, 1]', {key_list} FROM {table}
        WHERE predicted_prob IS NULL OR predicted_prob < 0 OR predicted_prob > 1""", blocking=True)


ML_DATA_TESTS = [
    *(DataTest(model, "gb_beats_baselines",
               "Gradient boosting is not beaten by logistic regression or random forest on holdout PR-AUC "
               "(a baseline ahead beyond the 90% paired-bootstrap interval fails; within it is a tie).",
               f"SELECT model, pr_auc, roc_auc, verdict_vs_gradient_boosting FROM {table} "
               f"WHERE verdict_vs_gradient_boosting = 'worse' "
               f"OR NOT EXISTS (SELECT 1 FROM {table} WHERE model = 'gradient_boosting')")
      for model, table in MODEL_TABLES.items()),
    _completeness(ECOMMERCE_PREDICTIONS, "gold.ecommerce_predictions", "gold.user_item_features",
                  {"cutoff": "cutoff", "visitorid": "user_id", "itemid": "item_id"}),
    _completeness(CART_ABANDONMENT_SCORES, "gold.cart_abandonment_scores", "gold.cart_session_features",
                  {"session_id": "session_id"}),
    *(DataTest(insight_key(i), "conversion_rates_are_rates", "Every conversion rate is within [0, 1].",
               f"SELECT * FROM insights.{i.name} WHERE conversion_rate < 0 OR conversion_rate > 1 "
               f"OR predicted_conversion_rate < 0 OR predicted_conversion_rate > 1")
      for i in RATE_INSIGHTS),
]

ml_checks = [
    _leakage_check(USER_ITEM_FEATURES, PURCHASE_TASK),
    _leakage_check(CART_SESSION_FEATURES, CART_TASK),
    *(build_data_test(t) for t in ML_DATA_TESTS),
]
