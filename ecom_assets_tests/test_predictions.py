"""The graph's ML end: both models in production, batch predictions, the published snapshot, insights."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from ecom_assets.assets.insight_tables import INSIGHTS
from ecom_assets.ml.feature_specs import CART_MODEL_NAME, PURCHASE_MODEL_NAME
from ecom_assets.ml.tracking import load_production_model, production_version
from ecom_assets_tests.conftest import query

SEED_COLUMNS = {"visitorid", "itemid", "interaction_score", "funnel_depth", "engagement_score", "converted"}


def _uri(built) -> str:
    return f"sqlite:///{built.paths.mlflow_db}"


def test_both_models_are_in_production(built):
    assert built.outcome.ok, built.outcome
    for name in (PURCHASE_MODEL_NAME, CART_MODEL_NAME):
        assert production_version(_uri(built), name) is not None, name


@pytest.mark.parametrize("table, features, name", [
    ("gold.ecommerce_predictions", "gold.user_item_features", PURCHASE_MODEL_NAME),
    ("gold.cart_abandonment_scores", "gold.cart_session_features", CART_MODEL_NAME),
])
def test_predictions_are_probabilities_from_the_production_model(built, table, features, name):
    production = load_production_model(name, _uri(built))
    rows, feature_rows, low, high, distinct, versions, version, wrong_labels = query(built.paths, f"""
        SELECT count(*), (SELECT count(*) FROM {features}), min(predicted_prob), max(predicted_prob),
               count(DISTINCT predicted_prob), count(DISTINCT model_version), any_value(model_version),
               count(*) FILTER (WHERE predicted_label <> CAST(predicted_prob >= ? AS INTEGER))
        FROM {table}""", [production.threshold])[0]
    assert rows == feature_rows > 0
    assert 0 < low < high < 1
    assert distinct > 50  # real probabilities, not 0/1 labels in the probability column
    assert versions == 1 and str(version) == production.version
    assert wrong_labels == 0


def test_actual_label_is_null_only_for_the_forward_looking_cutoff(built):
    rows = dict(query(built.paths, """
        SELECT dataset, count(*) FILTER (WHERE actual_label IS NULL) = count(*)
        FROM gold.ecommerce_predictions GROUP BY dataset"""))
    assert rows == {"train": False, "validation": False, "test": False, "score": True}
    latest, = query(built.paths, "SELECT max(cutoff) = max(cutoff) FILTER (WHERE dataset = 'score') "
                                 "FROM gold.ecommerce_predictions")[0]
    assert latest


def test_predicted_purchase_is_published_as_parquet(built):
    path = built.paths.published / "predicted_purchase.parquet"
    published = pd.read_parquet(path)
    assert SEED_COLUMNS <= set(published.columns)
    assert len(published) == query(built.paths, "SELECT count(*) FROM ecommerce.predicted_purchase")[0][0]
    assert set(published["dataset"]) == {"test", "score"}
    assert published["predicted_prob"].between(0, 1).all()
    assert not list(built.paths.published.glob(".*tmp*"))


@pytest.mark.parametrize("insight", INSIGHTS, ids=lambda i: i.name)
def test_insights_are_filled_with_rates_and_charts(built, insight):
    frame = pd.DataFrame(query(built.paths, f"SELECT * FROM insights.{insight.name}"))
    assert len(frame) > 0
    if "conversion_rate" in insight.sql:
        rates = query(built.paths, f"SELECT min(conversion_rate), max(conversion_rate) FROM insights.{insight.name} "
                                   "WHERE conversion_rate IS NOT NULL")[0]
        assert 0 <= rates[0] <= rates[1] <= 1
    limit = {"top_items_by_predicted_conversions": 20, "high_intent_visitors": 50}.get(insight.name)
    if limit:
        assert len(frame) <= limit
    assert (built.paths.reports / "insights" / f"{insight.name}.png").exists()


@pytest.mark.parametrize("key", [["ml", "purchase_model"], ["ml", "cart_abandonment_model"]])
def test_model_metadata_shows_comparison_curves_and_promotion(built, key):
    event = built.instance.get_latest_materialization_event(dg.AssetKey(key))
    metadata = event.asset_materialization.metadata
    comparison = metadata["comparison"].value
    for family in ("gradient_boosting", "logistic_regression", "random_forest"):
        assert family in comparison
    for metric in ("roc_auc", "pr_auc", "f1", "precision_at_k", "brier"):
        assert metric in comparison
    assert Path(metadata["curves"].value).exists()
    assert "Challenger v" in metadata["promotion"].value
    assert metadata["production_version"].value
