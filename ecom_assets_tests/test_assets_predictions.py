"""assets/predictions.py on the built graph: batch scores from the production models, the published snapshot."""

from __future__ import annotations

import pandas as pd
import pytest

from ecom_assets.ml.feature_specs import CART_MODEL_NAME, PURCHASE_MODEL_NAME
from ecom_assets.ml.tracking import load_production_model, tracking_uri
from ecom_assets_tests.conftest import query

SEED_COLUMNS = {"visitorid", "itemid", "interaction_score", "funnel_depth", "engagement_score", "converted"}


def _uri(built) -> str:
    return tracking_uri(built.paths, configured="")


@pytest.mark.parametrize(
    "table, features, name",
    [
        ("gold.ecommerce_predictions", "gold.user_item_features", PURCHASE_MODEL_NAME),
        ("gold.cart_abandonment_scores", "gold.cart_session_features", CART_MODEL_NAME),
    ],
)
def test_predictions_are_probabilities_from_the_production_model(built, table, features, name):
    production = load_production_model(name, _uri(built))
    rows, feature_rows, low, high, distinct, versions, version, wrong_labels = query(
        built.paths,
        f"""
        SELECT count(*), (SELECT count(*) FROM {features}), min(predicted_prob), max(predicted_prob),
               count(DISTINCT predicted_prob), count(DISTINCT model_version), any_value(model_version),
               count(*) FILTER (WHERE predicted_label <> CAST(predicted_prob >= ? AS INTEGER))
        FROM {table}""",
        [production.threshold],
    )[0]
    assert rows == feature_rows > 0
    assert 0 < low < high < 1
    assert distinct > 50  # real probabilities, not 0/1 labels in the probability column
    assert versions == 1 and str(version) == production.version
    assert wrong_labels == 0


def test_actual_label_is_null_only_for_the_forward_looking_cutoff(built):
    rows = dict(
        query(
            built.paths,
            """
        SELECT dataset, count(*) FILTER (WHERE actual_label IS NULL) = count(*)
        FROM gold.ecommerce_predictions GROUP BY dataset""",
        )
    )
    assert rows == {"train": False, "validation": False, "test": False, "score": True}
    (latest,) = query(
        built.paths, "SELECT max(cutoff) = max(cutoff) FILTER (WHERE dataset = 'score') FROM gold.ecommerce_predictions"
    )[0]
    assert latest


def test_predicted_purchase_is_published_as_parquet(built):
    path = built.paths.published / "predicted_purchase.parquet"
    published = pd.read_parquet(path)
    assert SEED_COLUMNS <= set(published.columns)
    assert len(published) == query(built.paths, "SELECT count(*) FROM ecommerce.predicted_purchase")[0][0]
    assert set(published["dataset"]) == {"test", "score"}
    assert published["predicted_prob"].between(0, 1).all()
    assert not list(built.paths.published.glob(".*tmp*"))
