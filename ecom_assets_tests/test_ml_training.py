"""ml.training: families compared on a time split, the threshold from validation, refusals, leakage."""

from __future__ import annotations

import pandas as pd
import pytest

from ecom_assets.ml.feature_specs import CART_FEATURES, CART_TASK, names
from ecom_assets.ml.training import (
    GRADIENT_BOOSTING,
    InsufficientData,
    TrainingConfig,
    leaking_features,
    quality_verdicts,
    train_and_compare,
)

SMALL = TrainingConfig(gb_max_iter=40, rf_trees=15)


def test_threshold_is_chosen_on_validation_not_test(cart_frame):
    flipped = cart_frame.copy()
    test = flipped["dataset"] == "test"
    flipped.loc[test, CART_TASK.label] = 1 - flipped.loc[test, CART_TASK.label]
    a = train_and_compare(cart_frame, CART_TASK.specs, CART_TASK.label, SMALL, families=[GRADIENT_BOOSTING])
    b = train_and_compare(flipped, CART_TASK.specs, CART_TASK.label, SMALL, families=[GRADIENT_BOOSTING])
    assert a.champion.threshold == b.champion.threshold
    assert a.champion.test["roc_auc"] == pytest.approx(1 - b.champion.test["roc_auc"])


def test_comparison_covers_every_family_and_metric(cart_frame):
    result = train_and_compare(cart_frame, CART_TASK.specs, CART_TASK.label, SMALL)
    table = result.comparison()
    assert list(table.index) == ["gradient_boosting", "logistic_regression", "random_forest"]
    assert {"roc_auc", "pr_auc", "f1", "precision_at_k", "brier", "threshold"} <= set(table.columns)
    verdicts = quality_verdicts(result, resamples=50)
    assert set(verdicts["baseline"]) == {"logistic_regression", "random_forest"}
    assert set(verdicts["verdict"]) <= {"beats", "tie", "worse"}
    assert (verdicts["ci90_low"] <= verdicts["difference"]).all()


def test_too_little_labelled_data_names_the_counts():
    frame = pd.DataFrame(
        {
            **{n: [1.0] * 30 for n in names(CART_FEATURES)},
            "experiment_group": ["control"] * 30,
            "dataset": ["train"] * 20 + ["validation"] * 5 + ["test"] * 5,
            "abandoned_cart": [1] * 30,
        }
    )
    with pytest.raises(InsufficientData, match="train: 20 rows, 20 positive, 0 negative"):
        train_and_compare(frame, CART_TASK.specs, CART_TASK.label, SMALL)


def test_leakage_check_catches_a_feature_that_reads_the_label(cart_frame):
    scores, leaking = leaking_features(cart_frame, CART_TASK)
    assert leaking.empty and scores["roc_auc"].max() < 0.98
    leaky = cart_frame.copy()
    leaky["views_before_cart"] = leaky["abandoned_cart"] * 10 + 1  # the old funnel_depth = 3 mistake
    _, leaking = leaking_features(leaky, CART_TASK)
    assert list(leaking["feature"]) == ["views_before_cart"]
