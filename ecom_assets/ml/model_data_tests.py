"""Data tests of the models' outputs as plain data (see `ecom_assets.lakehouse.data_tests`):
one prediction per out-of-sample feature row (none in-sample), rates within [0, 1]. The model-quality
verdict is the training assets' own blocking `promotion_gate` check, decided before the production alias moves."""

from __future__ import annotations

from ecom_assets.insights.questions import RATE_INSIGHTS
from ecom_assets.lakehouse.data_tests import DataTest
from ecom_assets.ml.batch_scoring import FORWARD, HOLDOUT, IN_SAMPLE


def _completeness(table: str, features: str, keys: dict[str, str]) -> DataTest:
    """One prediction per out-of-sample feature row and none for in-sample ones, each a probability
    within [0, 1] that names the model that scored it."""
    key_list = ", ".join(keys)
    feature_keys = ", ".join(f"{f} AS {p}" for p, f in keys.items())
    published = ", ".join(f"'{split}'" for split in (HOLDOUT, FORWARD))
    in_sample = ", ".join(f"'{split}'" for split in IN_SAMPLE)
    return DataTest(
        table,
        "one_prediction_per_row_with_probability",
        "Every holdout and forward-looking feature row has exactly one prediction, no train or validation "
        "row is published, predicted_prob is within [0, 1] and every row names its model "
        "(scored_by, model_version, mlflow_run_id, trained_at, threshold).",
        f"""
        SELECT CASE WHEN predictions = 0 THEN 'no prediction' ELSE 'duplicate prediction' END AS problem,
               {key_list}
        FROM (  -- one aggregation over both sides' keys, not a join beside a grouping: at 60M events
                -- (27M predictions) the two side by side ran out of DuckDB's 2 GB
            SELECT {key_list}, count(*) FILTER (WHERE feature) AS feature_rows,
                   count(*) FILTER (WHERE NOT feature) AS predictions
            FROM (SELECT {feature_keys}, true AS feature FROM {features} WHERE dataset IN ({published})
                  UNION ALL
                  SELECT {key_list}, false FROM {table})
            GROUP BY ALL)
        WHERE (feature_rows > 0 AND predictions = 0) OR predictions > 1
        UNION ALL
        SELECT 'in-sample row published', {key_list} FROM {table} WHERE dataset IN ({in_sample})
        UNION ALL
        SELECT 'probability outside [0, 1]', {key_list} FROM {table}
        WHERE predicted_prob IS NULL OR predicted_prob < 0 OR predicted_prob > 1
        UNION ALL
        SELECT 'no model named', {key_list} FROM {table}
        WHERE scored_by IS NULL OR model_version IS NULL OR mlflow_run_id IS NULL OR trained_at IS NULL
           OR threshold IS NULL""",
        blocking=True,
    )


ML_DATA_TESTS = [
    _completeness(
        "gold.ecommerce_predictions",
        "gold.user_item_features",
        {"cutoff": "cutoff", "visitorid": "user_id", "itemid": "item_id"},
    ),
    _completeness("gold.cart_abandonment_scores", "gold.cart_session_features", {"session_id": "session_id"}),
    *(
        DataTest(
            f"insights.{i.name}",
            "conversion_rates_are_rates",
            "Every conversion rate is within [0, 1].",
            f"SELECT * FROM insights.{i.name} WHERE conversion_rate < 0 OR conversion_rate > 1 "
            f"OR predicted_conversion_rate < 0 OR predicted_conversion_rate > 1",
        )
        for i in RATE_INSIGHTS
    ),
]
