"""ml.explain: SHAP contributions that add up to the served probability (what the API and the app show),
whichever family is the champion."""

from __future__ import annotations

import math

import pytest

from ecom_assets.ml.explain import explain, global_importance
from ecom_assets.ml.feature_specs import CART_FEATURES, CART_MODEL_NAME, CART_TASK, cart_feature_frame, coerce, names
from ecom_assets.ml.lifecycle import train_register_promote
from ecom_assets.ml.tracking import load_production_model, tracking_uri
from ecom_assets.ml.training import LOGISTIC_REGRESSION, RANDOM_FOREST, TrainingConfig, predict_proba, train_and_compare

SMALL = TrainingConfig(gb_max_iter=40, rf_trees=15)


def test_scoring_and_explanations_for_the_service(paths, cart_frame):
    report = train_register_promote(
        cart_frame, CART_TASK, SMALL, tracking_uri(paths), paths.mlflow_artifacts, paths.reports
    )
    model = load_production_model(CART_MODEL_NAME).model  # MLFLOW_TRACKING_URI points at the temp registry
    requests = [
        {
            "views_before_cart": 2,
            "other_items_viewed": 0,
            "cart_item_views": 1,
            "minutes_to_first_cart": 3.0,
            "cart_item_price": 15.0,
            "experiment_group": "control",
            "previous_sessions": 0,
            "previous_purchases": 0,
        },
        {
            "views_before_cart": 9,
            "other_items_viewed": 4,
            "cart_item_views": 3,
            "minutes_to_first_cart": 25.0,
            "cart_item_price": 120.0,
            "experiment_group": "treatment",
            "previous_sessions": 6,
            "previous_purchases": 3,
            "previous_cart_sessions": 4,
        },
    ]
    probabilities = predict_proba(model, cart_feature_frame(requests))
    assert probabilities.shape == (2,) and ((probabilities > 0) & (probabilities < 1)).all()
    assert probabilities[0] != probabilities[1]

    why = explain(model, cart_feature_frame([requests[1]]), CART_FEATURES)
    assert set(why.contributions) == set(names(CART_FEATURES))
    total = why.base_value + sum(why.contributions.values())  # log-odds, or a probability (a forest)
    explained = 1 / (1 + math.exp(-total)) if why.units == "log-odds" else total
    assert explained == pytest.approx(probabilities[1], abs=1e-6)
    assert abs(why.top(1)[0][1]) == max(abs(v) for v in why.contributions.values())
    assert explain(
        model, requests[1] | {k: v for k, v in why.values.items() if k not in requests[1]}, CART_FEATURES
    ).probability == pytest.approx(probabilities[1])
    assert list(report.importance["feature"])[:1] and report.importance["mean_abs_shap"].ge(0).all()


@pytest.mark.parametrize("family, units", [(LOGISTIC_REGRESSION, "log-odds"), (RANDOM_FOREST, "probability")])
def test_a_logistic_or_forest_champion_is_explained_too(cart_frame, family, units):
    """Any family can win on validation: its explanation still adds up to the probability served."""
    result = train_and_compare(cart_frame, CART_TASK.specs, CART_TASK.label, SMALL, families=[family])
    model = result.champion.model
    rows = cart_frame.iloc[[0, 7]]
    for i in range(len(rows)):
        row = rows.iloc[[i]]
        why = explain(model, row, CART_FEATURES)
        assert why.units == units and set(why.contributions) == set(names(CART_FEATURES))
        total = why.base_value + sum(why.contributions.values())
        served = predict_proba(model, coerce(row, CART_FEATURES))[0]
        assert (1 / (1 + math.exp(-total)) if units == "log-odds" else total) == pytest.approx(served, abs=1e-6)
    importance = global_importance(model, result.X_test, CART_FEATURES)
    assert set(importance["feature"]) == set(names(CART_FEATURES))
    assert importance["mean_abs_shap"].ge(0).all() and importance["mean_abs_shap"].max() > 0
