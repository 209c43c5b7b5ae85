"""ml.lifecycle with ml.tracking: register, promote only a better challenger, serve the production version."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from ecom_assets.ml.feature_specs import CART_FEATURES, CART_MODEL_NAME, CART_TASK, names
from ecom_assets.ml.lifecycle import train_register_promote
from ecom_assets.ml.tracking import (
    CHALLENGER,
    CLASSIC_ML_KIND,
    EXPERIMENT_KIND_TAG,
    NOTE_TAG,
    PRODUCTION,
    RISK_HIGH_TAG,
    client,
    load_model,
    load_production_model,
    load_reference_features,
    production_version,
    tracking_uri,
)
from ecom_assets.ml.training import TrainingConfig

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
    assert str(registry.get_model_version_by_alias(CART_MODEL_NAME, CHALLENGER).version) == "1"

    worse = train(_shuffled_train_labels(cart_frame, CART_TASK.label))
    assert worse.logged.version == "2"
    assert not worse.decision.promoted
    assert worse.decision.challenger_score < worse.decision.production_score
    assert "production kept" in worse.decision.reason
    assert str(registry.get_model_version_by_alias(CART_MODEL_NAME, CHALLENGER).version) == "2"
    assert production_version(uri, CART_MODEL_NAME) == "1"
    assert registry.get_model_version(CART_MODEL_NAME, "2").tags["promotion"] == "refused"

    # The MLflow UI shows what each model, version and run is (issue 14), on its classic-ML view.
    experiment = registry.get_experiment_by_name(CART_TASK.experiment)
    assert experiment.tags[EXPERIMENT_KIND_TAG] == CLASSIC_ML_KIND
    assert CART_TASK.feature_table in experiment.tags[NOTE_TAG]
    described = registry.get_registered_model(CART_MODEL_NAME).description
    for words in (CART_TASK.feature_table, f"`{CART_TASK.label}`", "**Production: version 1**", "| pr_auc |"):
        assert words in described
    for version, logged in (("1", first), ("2", worse)):
        entry = registry.get_model_version(CART_MODEL_NAME, version)
        for words in (
            CART_TASK.feature_table,
            CART_TASK.label,
            "| pr_auc |",
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
