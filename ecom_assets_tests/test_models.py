"""Training, MLflow registry and promotion, explanations, and the checks that guard them."""

from __future__ import annotations

import math
import os

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from ecom_assets.lakehouse.data_tests import find_violations
from ecom_assets.ml.explain import explain
from ecom_assets.ml.feature_specs import CART_FEATURES, CART_MODEL_NAME, CART_TASK, PURCHASE_TASK, names
from ecom_assets.ml.lifecycle import train_register_promote
from ecom_assets.ml.batch_scoring import explain_cart, score_carts
from ecom_assets.ml.tracking import (CHALLENGER, PRODUCTION, client, load_model, load_production_model,
                                     load_reference_features, production_version, tracking_uri)
from ecom_assets.ml.training import (GRADIENT_BOOSTING, InsufficientData, TrainingConfig, quality_verdicts,
                                     train_and_compare)
from ecom_assets.checks.model_checks import ML_DATA_TESTS, leaking_features
from ecom_assets.one_shot import run_pipeline
from ecom_assets.resources import build_resources
from ecom_assets.lakehouse.warehouse import ensure_schema
from ecom_assets_tests.conftest import land

SMALL = TrainingConfig(gb_max_iter=40, rf_trees=15)


@pytest.fixture(scope="module")
def cart_frame(built) -> pd.DataFrame:
    with build_resources(built.paths)["duckdb"].get_connection() as con:
        return con.execute("SELECT * FROM gold.cart_session_features ORDER BY session_id").df()


def _shuffled_train_labels(frame: pd.DataFrame, label: str) -> pd.DataFrame:
    """Same rows, training labels permuted: a model that learns nothing."""
    worse = frame.copy()
    train = worse["dataset"] == "train"
    worse.loc[train, label] = np.random.default_rng(1).permutation(worse.loc[train, label].to_numpy())
    return worse


def test_registry_promotes_the_first_version_and_refuses_a_worse_challenger(paths, cart_frame):
    uri = tracking_uri(paths)
    assert uri.startswith("sqlite:///") and "mlflow.db" in uri
    env_before = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    train = lambda frame: train_register_promote(  # noqa: E731
        frame, CART_TASK, SMALL, uri, paths.mlflow_artifacts, paths.reports)

    first = train(cart_frame)
    assert first.decision.promoted and first.logged.version == "1"
    assert first.curves.exists() and first.curves.stat().st_size > 0
    registry = client(uri)
    assert str(registry.get_model_version_by_alias(CART_MODEL_NAME, PRODUCTION).version) == "1"
    assert str(registry.get_model_version_by_alias(CART_MODEL_NAME, CHALLENGER).version) == "1"

    worse = train(_shuffled_train_labels(cart_frame, CART_TASK.label))
    assert worse.logged.version == "2"
    assert not worse.decision.promoted
    assert worse.decision.challenger_score < worse.decision.production_score
    assert "production kept" in worse.decision.reason
    assert str(registry.get_model_version_by_alias(CART_MODEL_NAME, CHALLENGER).version) == "2"
    assert production_version(uri, CART_MODEL_NAME) == "1"
    assert registry.get_model_version(CART_MODEL_NAME, "2").tags["promotion"] == "refused"

    # Scoring loads the production version (v1), not the newer challenger (v2).
    production = load_production_model(CART_MODEL_NAME, uri)
    assert production.version == "1"
    assert production.features == names(CART_FEATURES)
    assert 0 < production.threshold < 1
    assert set(production.holdout_metrics) >= {"roc_auc", "pr_auc", "f1", "precision_at_k", "brier"}
    assert production.trained_at == first.logged.trained_at
    X = first.result.X_test
    v1, v2 = load_model(uri, CART_MODEL_NAME, version="1"), load_model(uri, CART_MODEL_NAME, version="2")
    served = production.predict_proba(X, CART_FEATURES)
    np.testing.assert_allclose(served, v1.predict_proba(X)[:, 1])
    assert not np.allclose(served, v2.predict_proba(X)[:, 1])

    # The reference sample for drift monitoring travels with the version.
    reference = load_reference_features(CART_MODEL_NAME, uri)
    assert list(reference.columns) == names(CART_FEATURES) and 0 < len(reference) <= 5_000
    # Nothing was written outside ECOM_HOME / the temp MLflow database, and no process-wide
    # MLflow setting was left pointing at this registry.
    assert any(paths.mlflow_artifacts.rglob("MLmodel"))
    assert {k: os.environ.get(k) for k in env_before} == env_before
    import mlflow
    assert mlflow.get_registry_uri() == os.environ["MLFLOW_TRACKING_URI"]


def test_scoring_and_explanations_for_the_service(paths, cart_frame):
    report = train_register_promote(cart_frame, CART_TASK, SMALL, tracking_uri(paths), paths.mlflow_artifacts,
                                    paths.reports)
    model = load_production_model(CART_MODEL_NAME).model  # MLFLOW_TRACKING_URI points at the temp registry
    requests = [{"total_views": 2, "total_carts": 1, "session_duration_minutes": 3.0, "experiment_group": "control"},
                {"total_views": 9, "total_carts": 4, "session_duration_minutes": 25.0, "experiment_group": "treatment",
                 "previous_purchases": 3, "distinct_items": 4}]
    probabilities = score_carts(model, requests)
    assert probabilities.shape == (2,) and ((probabilities > 0) & (probabilities < 1)).all()
    assert probabilities[0] != probabilities[1]

    why = explain_cart(model, requests[1])
    assert set(why.contributions) == set(names(CART_FEATURES))
    log_odds = why.base_value + sum(why.contributions.values())
    assert 1 / (1 + math.exp(-log_odds)) == pytest.approx(probabilities[1], abs=1e-6)
    assert abs(why.top(1)[0][1]) == max(abs(v) for v in why.contributions.values())
    assert explain(model, requests[1] | {k: v for k, v in why.values.items() if k not in requests[1]},
                   CART_FEATURES).probability == pytest.approx(probabilities[1])
    assert list(report.importance["feature"])[:1] and report.importance["mean_abs_shap"].ge(0).all()


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
    frame = pd.DataFrame({**{n: [1.0] * 30 for n in names(CART_FEATURES)}, "experiment_group": ["control"] * 30,
                          "dataset": ["train"] * 20 + ["validation"] * 5 + ["test"] * 5,
                          "abandoned_cart": [1] * 30})
    with pytest.raises(InsufficientData, match="train: 20 rows, 20 positive, 0 negative"):
        train_and_compare(frame, CART_TASK.specs, CART_TASK.label, SMALL)


def test_training_asset_fails_clearly_on_a_tiny_file_and_keeps_the_data_layers(paths, instance):
    land(paths, "rees46_quirks.csv")
    outcome = run_pipeline(paths, instance, log=lambda _: None)
    failed = {step.split(":")[1].strip() for step in outcome.failed_steps}
    assert {"ml__purchase_model", "ml__cart_abandonment_model"} <= failed, outcome.failed_steps
    messages = _failure_descriptions(instance)
    for step in ("ml__purchase_model", "ml__cart_abandonment_model"):
        assert "Not enough labelled data" in messages[step]
        assert "train: 0 rows" in messages[step] and "needs at least" in messages[step]
    with build_resources(paths)["duckdb"].get_connection() as con:
        assert con.execute("SELECT count(*) FROM silver.events").fetchone()[0] > 0
        assert con.execute("SELECT count(*) FROM gold.user_item_features").fetchone()[0] > 0
        assert con.execute("SELECT count(*) FROM gold.user_item_features WHERE converted IS NOT NULL").fetchone()[0] == 0
    assert production_version(tracking_uri(paths), PURCHASE_TASK.registered_model) is None


def _failure_descriptions(instance) -> dict[str, str]:
    found = {}
    for run in instance.get_runs():
        for entry in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
            data = entry.dagster_event.step_failure_data
            text = (data.user_failure_data.description if data.user_failure_data else None) or str(data.error)
            found[entry.dagster_event.step_key] = text
    return found


def test_leakage_check_catches_a_feature_that_reads_the_label(cart_frame):
    scores, leaking = leaking_features(cart_frame, CART_TASK)
    assert leaking.empty and scores["roc_auc"].max() < 0.98
    leaky = cart_frame.copy()
    leaky["total_views"] = leaky["abandoned_cart"] * 10 + 1  # the old funnel_depth = 3 mistake
    _, leaking = leaking_features(leaky, CART_TASK)
    assert list(leaking["feature"]) == ["total_views"]


@pytest.mark.parametrize("test", ML_DATA_TESTS, ids=lambda t: f"{t.table}/{t.name}")
def test_each_ml_data_test_can_fail(paths, test):
    with build_resources(paths)["duckdb"].get_connection() as con:
        ensure_schema(con)
        con.execute("CREATE SCHEMA IF NOT EXISTS insights")
        _plant(con, test)
        assert find_violations(con, test).count > 0


def _plant(con, test) -> None:
    table = test.table
    if test.name == "gb_beats_baselines":
        con.execute(f"""CREATE TABLE {table} AS SELECT * FROM (VALUES
            ('gradient_boosting', 0.10, 0.80, NULL), ('logistic_regression', 0.30, 0.90, 'worse'))
            AS t(model, pr_auc, roc_auc, verdict_vs_gradient_boosting)""")
    elif table == "gold.ecommerce_predictions":
        con.execute("CREATE TABLE gold.user_item_features AS SELECT TIMESTAMP '2019-10-01' AS cutoff, "
                    "range AS user_id, 1 AS item_id FROM range(3)")
        con.execute("CREATE TABLE gold.ecommerce_predictions AS SELECT TIMESTAMP '2019-10-01' AS cutoff, "
                    "0 AS visitorid, 1 AS itemid, 1.5 AS predicted_prob")  # user 1, 2 missing; p > 1
    elif table == "gold.cart_abandonment_scores":
        con.execute("CREATE TABLE gold.cart_session_features AS SELECT 'a' AS session_id")
        con.execute("CREATE TABLE gold.cart_abandonment_scores AS SELECT 'a' AS session_id, 0.5 AS predicted_prob "
                    "FROM range(2)")  # duplicated
    else:  # an insight with a 'rate' above 1
        con.execute(f"CREATE TABLE {table} AS "
                    "SELECT 1.2 AS conversion_rate, 0.1 AS predicted_conversion_rate")
