"""ml.lifecycle with ml.tracking on a real MLflow sqlite registry: register the champion, promote only
a challenger that passes the gate, keep the aliases truthful, fail loudly on registry errors."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest

from ecom_assets.ml.feature_specs import CART_FEATURES, CART_MODEL_NAME, CART_TASK, names
from ecom_assets.ml.lifecycle import train_register_promote
from ecom_assets.ml.tracking import (
    CHALLENGER,
    CLASSIC_ML_KIND,
    EXPERIMENT_KIND_TAG,
    NOTE_TAG,
    PRODUCTION,
    RISK_HIGH_TAG,
    RegistryError,
    apply_promotion,
    client,
    decide_promotion,
    ensure_experiment,
    load_model,
    load_production_model,
    load_reference_features,
    log_training_run,
    production_model_version,
    production_version,
    tracking_uri,
)
from ecom_assets.ml.training import TrainingConfig, train_and_compare

SMALL = TrainingConfig(gb_max_iter=40, rf_trees=15)


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
        frame, CART_TASK, SMALL, uri, paths.mlflow_artifacts, paths.reports
    )

    first = train(cart_frame)
    assert first.decision.promoted and first.logged.version == "1"
    assert first.curves.exists() and first.curves.stat().st_size > 0
    registry = client(uri)
    assert str(registry.get_model_version_by_alias(CART_MODEL_NAME, PRODUCTION).version) == "1"
    assert _challenger(uri) is None  # promoted: no version is waiting
    assert registry.get_model_version(CART_MODEL_NAME, "1").tags["family"] == first.result.champion_family

    worse = train(_shuffled_train_labels(cart_frame, CART_TASK.label))
    assert worse.logged.version == "2"
    assert not worse.decision.promoted
    assert worse.decision.challenger_score < worse.decision.production_score
    assert "production kept" in worse.decision.reason.lower()
    assert _challenger(uri) == "2"
    assert production_version(uri, CART_MODEL_NAME) == "1"
    assert registry.get_model_version(CART_MODEL_NAME, "2").tags["promotion"] == "refused"
    assert "production" in registry.get_model_version(CART_MODEL_NAME, "2").tags["promotion_reason"]

    # The MLflow UI shows what each model, version and run is (issue 14), on its classic-ML view.
    experiment = registry.get_experiment_by_name(CART_TASK.experiment)
    assert experiment.tags[EXPERIMENT_KIND_TAG] == CLASSIC_ML_KIND
    assert CART_TASK.feature_table in experiment.tags[NOTE_TAG]
    described = registry.get_registered_model(CART_MODEL_NAME).description
    for words in (CART_TASK.feature_table, f"`{CART_TASK.label}`", "**Production: version 1**", "| pr_auc_lift |"):
        assert words in described
    for version, logged in (("1", first), ("2", worse)):
        entry = registry.get_model_version(CART_MODEL_NAME, version)
        for words in (
            CART_TASK.feature_table,
            CART_TASK.label,
            "| pr_auc |",
            "| brier_skill |",
            "no-skill",
            "Positive class: `abandoned_cart` = 1",
            "recency_baseline",
            "Decision threshold",
            logged.logged.run_id,
        ):
            assert words in entry.description, (version, words)
        assert f"Registered as version {version}." in registry.get_run(logged.logged.run_id).data.tags[NOTE_TAG]
        threshold, edge = float(entry.tags["threshold"]), float(entry.tags[RISK_HIGH_TAG])
        assert threshold < edge < 1

    # Scoring loads the production version (v1), not the newer challenger (v2).
    production = load_production_model(CART_MODEL_NAME, uri)
    assert production.version == "1"
    assert production.features == names(CART_FEATURES)
    assert 0 < production.threshold < production.risk_high_from < 1
    assert set(production.holdout_metrics) >= {"roc_auc", "pr_auc", "f1", "precision_at_k", "brier", "brier_skill"}
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


def _challenger(uri: str) -> str | None:
    try:
        return str(client(uri).get_model_version_by_alias(CART_MODEL_NAME, CHALLENGER).version)
    except Exception:  # no such alias
        return None


def _register_directly(uri: str, paths, frame: pd.DataFrame) -> str:
    """A version logged and promoted without the quality gate: a production that knows nothing."""
    result = train_and_compare(frame, CART_TASK.specs, CART_TASK.label, SMALL)
    experiment_id = ensure_experiment(uri, CART_TASK.experiment, paths.mlflow_artifacts)
    logged = log_training_run(uri, experiment_id, CART_MODEL_NAME, result, params={})
    champion = result.champion
    decision = decide_promotion(
        uri, CART_MODEL_NAME, logged.version, result.X_test, result.y_test, champion.test_probabilities, 0.005
    )
    apply_promotion(uri, CART_MODEL_NAME, decision)
    assert decision.promoted
    return logged.version


def _blind(frame: pd.DataFrame) -> pd.DataFrame:
    """Training rows whose features say nothing (all constant): every family predicts the base rate."""
    blind = frame.copy()
    train = blind["dataset"] == "train"
    for spec in CART_TASK.specs:
        blind.loc[train, spec.name] = spec.categories[0] if spec.categorical else 1.0
    return blind


def test_a_clearly_better_challenger_moves_production_an_equal_one_does_not(paths, cart_frame):
    uri = tracking_uri(paths)
    gate = TrainingConfig(gb_max_iter=40, rf_trees=15, promotion_margin=0.0)
    assert _register_directly(uri, paths, _blind(cart_frame)) == "1"  # production: the base rate

    # The challenger sees a feature that carries the label through noise: clearly better, on any holdout.
    label = cart_frame[CART_TASK.label].fillna(0).to_numpy()
    cart_frame = cart_frame.assign(views_before_cart=label + np.random.default_rng(0).normal(0, 0.7, len(label)))
    better = train_register_promote(cart_frame, CART_TASK, gate, uri, paths.mlflow_artifacts, paths.reports)
    decision = better.decision
    assert decision.promoted and decision.previous_production_version == "1", decision.reason
    assert decision.gate.ci90_low > 0 and decision.gate.difference > 0
    assert production_version(uri, CART_MODEL_NAME) == "2" and _challenger(uri) is None

    # The same data again: the same model, a difference of exactly zero, never "better".
    again = train_register_promote(cart_frame, CART_TASK, gate, uri, paths.mlflow_artifacts, paths.reports)
    assert not again.decision.promoted and again.decision.gate.difference == pytest.approx(0.0)
    assert "production kept" in again.decision.reason
    assert production_version(uri, CART_MODEL_NAME) == "2" and _challenger(uri) == "3"
    table = again.summary_table()
    assert set(table["production_version"]) == {"2"} and not table["promoted"].any()


def test_a_champion_no_better_than_the_base_rate_is_never_promoted_even_first(paths, cart_frame):
    uri = tracking_uri(paths)
    report = train_register_promote(_blind(cart_frame), CART_TASK, SMALL, uri, paths.mlflow_artifacts, paths.reports)
    decision = report.decision
    assert not decision.promoted and not decision.quality_passed
    assert "not above the no-skill" in decision.reason
    assert production_version(uri, CART_MODEL_NAME) is None and _challenger(uri) == "1"


def test_an_unreadable_registry_fails_and_is_never_read_as_no_production(paths, cart_frame, tmp_path):
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"this is not a database" * 100)
    uri = f"sqlite:///{corrupt}"
    with pytest.raises(RegistryError, match="Cannot read the 'production' alias.*not a database"):
        production_model_version(uri, CART_MODEL_NAME)
    with pytest.raises(RegistryError, match="not a registry without a production version"):
        train_register_promote(cart_frame, CART_TASK, SMALL, uri, paths.mlflow_artifacts, paths.reports)
    with pytest.raises(RegistryError):
        load_production_model(CART_MODEL_NAME, uri)
    # A registry without the model, or without the alias, is "no production yet".
    assert production_model_version(tracking_uri(paths), CART_MODEL_NAME) is None
    with pytest.raises(LookupError, match="no 'production' version"):
        load_production_model(CART_MODEL_NAME, tracking_uri(paths))


def test_a_production_that_cannot_score_fails_the_run_and_keeps_its_alias(paths, cart_frame):
    uri = tracking_uri(paths)
    train = lambda: train_register_promote(  # noqa: E731
        cart_frame, CART_TASK, SMALL, uri, paths.mlflow_artifacts, paths.reports
    )
    assert train().decision.promoted
    shutil.rmtree(paths.mlflow_artifacts)  # production's model files are gone
    with pytest.raises(RegistryError, match="Production v1 of cart_abandonment_gb cannot score"):
        train()
    registry = client(uri)
    assert production_version(uri, CART_MODEL_NAME) == "1"
    assert "promotion" not in registry.get_model_version(CART_MODEL_NAME, "2").tags


def test_a_production_version_without_a_threshold_is_an_error_not_one_half(paths, cart_frame):
    uri = tracking_uri(paths)
    train_register_promote(cart_frame, CART_TASK, SMALL, uri, paths.mlflow_artifacts, paths.reports)
    client(uri).delete_model_version_tag(CART_MODEL_NAME, "1", "threshold")
    with pytest.raises(ValueError, match="v1 has no usable 'threshold' tag"):
        load_production_model(CART_MODEL_NAME, uri)


def test_a_production_trained_on_another_feature_contract_is_retired_in_the_open(paths, cart_frame):
    """An upgrade that changes the features (the cart model's first-add-to-cart contract) must not
    fail every training: the old production is retired, named in the reason, and the new one promoted."""
    uri = tracking_uri(paths)
    train = lambda: train_register_promote(  # noqa: E731
        cart_frame, CART_TASK, SMALL, uri, paths.mlflow_artifacts, paths.reports
    )
    assert train().decision.promoted
    old_contract = ["total_views", "total_carts", "session_duration_minutes", "experiment_group"]
    client(uri).set_model_version_tag(CART_MODEL_NAME, "1", "features", json.dumps(old_contract))
    shutil.rmtree(paths.mlflow_artifacts)  # and it could not score today's rows anyway
    decision = train().decision
    assert decision.promoted and decision.previous_production_version == "1", decision.reason
    assert "another feature contract" in decision.reason and "session_duration_minutes" in decision.reason
    assert production_version(uri, CART_MODEL_NAME) == "2" and _challenger(uri) is None
