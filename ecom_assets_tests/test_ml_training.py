"""ml.training: families compared on a time split, the threshold and the champion from validation,
metrics beside their baselines, the promotion gate's arithmetic, refusals, leakage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ecom_assets.ml.feature_specs import CART_FEATURES, CART_TASK, names
from ecom_assets.ml.training import (
    FAMILIES,
    GRADIENT_BOOSTING,
    LOGISTIC_REGRESSION,
    RANDOM_FOREST,
    RECENCY_BASELINE,
    FamilyResult,
    InsufficientData,
    TrainingConfig,
    evaluate,
    leakage_report,
    pick_champion,
    promotion_gate,
    quality_problems,
    quality_verdicts,
    quality_warnings,
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


def test_comparison_covers_every_family_baseline_and_role(cart_frame):
    result = train_and_compare(cart_frame, CART_TASK.specs, CART_TASK.label, SMALL)
    table = result.comparison()
    assert list(table.index) == [*FAMILIES, RECENCY_BASELINE]
    metrics = {"roc_auc", "pr_auc", "f1", "precision_at_k", "brier", "threshold", "validation_pr_auc"}
    assert metrics <= set(table.columns)
    assert {"base_rate", "no_skill_pr_auc", "pr_auc_lift", "brier_base_rate", "brier_skill"} <= set(table.columns)
    # The champion is the best candidate on validation, whatever test says; the recency model never is.
    best = max(FAMILIES, key=lambda f: result.families[f].validation["pr_auc"])
    assert result.champion_family == best and table.loc[best, "role"] == "champion"
    assert table.loc[RECENCY_BASELINE, "role"] == "reference"
    # The recency reference reads only the time feature the cart task names.
    recency = result.families[RECENCY_BASELINE].model
    assert list(recency[0].get_feature_names_out()) == ["minutes_to_first_cart"]
    assert "`abandoned_cart` = 1" in result.positive_class and "abandoned" in result.positive_class
    verdicts = quality_verdicts(result, resamples=50)
    assert set(verdicts["baseline"]) == set(table.index) - {best}
    assert set(verdicts["verdict"]) <= {"beats", "tie", "worse"}
    assert (verdicts["ci90_low"] <= verdicts["difference"]).all()
    assert quality_problems(result) == [] and quality_warnings(verdicts) == []  # beats the base rate and recency


def test_baselines_on_a_hand_made_holdout():
    y = np.array([1, 0, 0, 0, 1, 0, 0, 0, 0, 0])  # base rate 0.2
    constant = evaluate(y, np.full(10, 0.2), threshold=0.5, top_k=5)  # the base-rate forecast
    assert constant["base_rate"] == constant["no_skill_pr_auc"] == pytest.approx(0.2)
    assert constant["pr_auc_lift"] == pytest.approx(1.0)
    assert constant["brier_base_rate"] == pytest.approx(0.16) == constant["brier"]
    assert constant["brier_skill"] == pytest.approx(0.0)
    perfect = evaluate(y, y.astype(float), threshold=0.5, top_k=5)
    assert perfect["pr_auc_lift"] == pytest.approx(5.0) and perfect["brier_skill"] == pytest.approx(1.0)
    wrong = evaluate(y, 1 - y.astype(float), threshold=0.5, top_k=5)
    assert wrong["brier_skill"] < 0 and wrong["pr_auc_lift"] <= 1


def _family(name: str, validation_pr_auc: float) -> FamilyResult:
    return FamilyResult(name, None, 0.5, 0.0, {"pr_auc": validation_pr_auc}, {}, np.empty(0))


def test_champion_is_the_best_candidate_on_validation_never_the_recency_reference():
    families = {
        GRADIENT_BOOSTING: _family(GRADIENT_BOOSTING, 0.30),
        LOGISTIC_REGRESSION: _family(LOGISTIC_REGRESSION, 0.35),
        RANDOM_FOREST: _family(RANDOM_FOREST, 0.20),
        RECENCY_BASELINE: _family(RECENCY_BASELINE, 0.90),
    }
    assert pick_champion(families) == LOGISTIC_REGRESSION
    families[RANDOM_FOREST] = _family(RANDOM_FOREST, 0.35)  # a tie goes to the earlier family
    assert pick_champion(families) == LOGISTIC_REGRESSION
    with pytest.raises(ValueError, match="no champion candidate"):
        pick_champion({RECENCY_BASELINE: families[RECENCY_BASELINE]})


def _holdout(n: int = 2_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.2).astype(int)
    return y, np.clip(0.2 + 0.25 * (y - 0.2) + rng.normal(0, 0.2, n), 0, 1)  # a modest model


def test_promotion_gate_refuses_the_same_a_worse_and_a_noise_win_and_takes_a_clear_win():
    y, production = _holdout()
    rng = np.random.default_rng(1)
    same = promotion_gate(y, production, production, margin=0.0, resamples=100)
    assert not same.promote and same.difference == 0
    worse = promotion_gate(y, production + rng.normal(0, 0.3, len(y)), production, margin=0.0, resamples=100)
    assert not worse.promote and worse.difference < 0
    # Better by a hair: above zero, not beyond the margin (nor, here, beyond noise).
    for seed in range(50):
        nudged = production + np.random.default_rng(seed).normal(0, 0.01, len(y))
        hair = promotion_gate(y, nudged, production, margin=0.005, resamples=100)
        if 0 < hair.difference < 0.005:
            break
    else:
        pytest.fail("no seed gave a tiny positive difference")
    assert not hair.promote and "margin" in hair.reason
    # Beyond the margin by its point estimate, but the interval reaches zero: still refused.
    noisy = promotion_gate(y, production, production, margin=-1.0, resamples=100)
    assert not noisy.promote and noisy.ci90_low <= 0 and "within noise" in noisy.reason
    clear = promotion_gate(y, 0.5 * production + 0.5 * y, production, margin=0.005, resamples=100)
    assert clear.promote and clear.ci90_low > 0 and clear.difference > 0.005


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


def test_leakage_check_warns_fails_and_fails_on_empty_data(cart_frame):
    clean = leakage_report(cart_frame, CART_TASK)
    assert clean.passed and not clean.leaking and not clean.suspicious
    assert clean.scores["roc_auc"].max() < 0.90 and clean.rows == cart_frame[CART_TASK.label].notna().sum()

    label = cart_frame[CART_TASK.label].fillna(0).to_numpy()
    rng = np.random.default_rng(0)
    strong = cart_frame.copy()  # the label seen through noise: single-feature AUC about 0.94
    strong["views_before_cart"] = label + rng.normal(0, 0.45, len(strong))
    warned = leakage_report(strong, CART_TASK)
    auc = warned.scores.set_index("feature").loc["views_before_cart", "roc_auc"]
    assert 0.90 <= auc < 0.98, auc
    assert warned.passed and warned.suspicious == ["views_before_cart"] and warned.leaking == []
    assert "views_before_cart" in warned.summary()

    leaky = cart_frame.copy()
    leaky["views_before_cart"] = leaky["abandoned_cart"] * 10 + 1  # the old funnel_depth = 3 mistake
    failed = leakage_report(leaky, CART_TASK)
    assert not failed.passed and failed.leaking == ["views_before_cart"] and "views_before_cart" in failed.summary()

    unlabelled = cart_frame.assign(abandoned_cart=None)
    empty = leakage_report(unlabelled, CART_TASK)
    assert not empty.passed and "no labelled rows" in empty.summary()
    one_class = leakage_report(cart_frame.assign(abandoned_cart=1), CART_TASK)
    assert not one_class.passed and "all have abandoned_cart = 1" in one_class.summary()


def test_bootstrap_pr_auc_is_scikit_learns_average_precision_on_the_resampled_rows():
    """The fast bootstrap sorts once and weighs rows by their resample count: the same number as
    scikit-learn on those weights, ties included."""
    from sklearn.metrics import average_precision_score

    from ecom_assets.ml.training import _RankedHoldout

    rng = np.random.default_rng(3)
    y = (rng.random(500) < 0.1).astype(int)
    scores = np.round(rng.random(500) + 0.3 * y, 2)  # rounded: many ties
    for _ in range(5):
        weights = np.bincount(rng.integers(0, 500, 500), minlength=500).astype(float)
        assert _RankedHoldout(y, scores).average_precision(weights) == pytest.approx(
            average_precision_score(y, scores, sample_weight=weights), abs=1e-12
        )


def test_paired_bootstraps_against_several_baselines_equal_each_alone():
    """Sharing the resamples between baselines changes no interval: each is the one paired_bootstrap gives."""
    from ecom_assets.ml.training import paired_bootstrap, paired_bootstraps

    rng = np.random.default_rng(5)
    y = (rng.random(4000) < 0.02).astype(int)
    champion, a, b = (rng.random(4000) + lift * y for lift in (1.0, 0.3, 0.0))
    together = paired_bootstraps(y, champion, {"a": a, "b": b}, resamples=60)
    assert together == {"a": paired_bootstrap(y, champion, a, resamples=60), "b": paired_bootstrap(y, champion, b, 60)}
    assert together["a"][1] > 0 and together["b"][1] > together["a"][1]  # both beaten, b by more


def test_the_labelled_sample_depends_on_the_rows_not_on_their_storage_order():
    """The training sample (a seeded hash of the keys) picks the same rows from the same content stored in
    another order, at most the cap per split, every row of a split under the cap, in key order."""
    import duckdb

    from ecom_assets.ml.batch_scoring import load_labelled_sample

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "session_id": np.arange(3000),
            "dataset": rng.choice(["train", "validation", "test", "score"], 3000, p=[0.6, 0.1, 0.2, 0.1]),
            "x": rng.random(3000),
        }
    )
    frame["label"] = np.where(frame["dataset"] == "score", None, (frame["x"] > 0.5).astype(int))
    samples = []
    for seed in (1, 2):
        con = duckdb.connect()
        con.register("shuffled", frame.sample(frac=1, random_state=seed))
        con.execute("CREATE TABLE features AS SELECT * FROM shuffled")
        samples.append(load_labelled_sample(con, "features", "label", 500, 400, keys=["session_id"]))
    pd.testing.assert_frame_equal(samples[0], samples[1])
    counts = samples[0]["dataset"].value_counts()
    assert counts["train"] == 500 and counts["validation"] == (frame["dataset"] == "validation").sum()
    assert counts["test"] == 400 and "score" not in counts
    assert samples[0].groupby("dataset")["session_id"].apply(lambda s: s.is_monotonic_increasing).all()
    other_seed = load_labelled_sample(con, "features", "label", 500, 400, keys=["session_id"], seed=1)
    assert set(other_seed["session_id"]) != set(samples[0]["session_id"])
