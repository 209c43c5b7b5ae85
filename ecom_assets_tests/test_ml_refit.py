"""ml/refit.py: the forward cutoff is scored by the production version refit on every labelled row,
recorded once per version in MLflow (real registry, real warehouse)."""

from __future__ import annotations

import dagster as dg
import numpy as np
import pytest

from ecom_assets.assets import predictions
from ecom_assets.ml.batch_scoring import load_training_sample
from ecom_assets.ml.feature_specs import PURCHASE_MODEL_NAME, PURCHASE_TASK, coerce
from ecom_assets.ml.refit import REFIT_OF_VERSION_TAG, REFIT_RUN_TAG, CannotRefit, find_refit, refit_production
from ecom_assets.ml.tracking import (
    PRODUCTION,
    client,
    load_production_model,
    tracking_uri,
    trusted_types,
    using_tracking_uri,
)
from ecom_assets.ml.training import TrainingConfig, predict_proba
from ecom_assets.resources import build_ml_resources, build_resources
from ecom_assets_tests.conftest import query


def _refit_runs(uri: str) -> list:
    registry = client(uri)
    experiment = registry.get_experiment_by_name(PURCHASE_TASK.experiment)
    return registry.search_runs([experiment.experiment_id], filter_string=f"tags.{REFIT_OF_VERSION_TAG} != ''")


def _labelled(paths):
    config = TrainingConfig()

    def read():
        with build_resources(paths)["duckdb"].read_connection() as con:
            return load_training_sample(con, PURCHASE_TASK, config)

    return read


def test_the_forward_cutoff_is_scored_by_a_refit_on_more_rows_recorded_in_mlflow(built):
    uri = tracking_uri(built.paths, configured="")
    production = load_production_model(PURCHASE_MODEL_NAME, uri)
    registry = client(uri)
    refit_run_id = registry.get_model_version(PURCHASE_MODEL_NAME, production.version).tags[REFIT_RUN_TAG]
    refit_run = registry.get_run(refit_run_id)
    tags = refit_run.data.tags
    assert tags[REFIT_OF_VERSION_TAG] == production.version and tags["refit_of_run_id"] == production.run_id
    assert float(tags["threshold"]) == pytest.approx(production.threshold)  # production's, chosen on validation
    production_rows = int(registry.get_run(production.run_id).data.params["trained_rows"])
    labelled = query(
        built.paths, "SELECT count(*), sum(converted) FROM gold.user_item_features WHERE converted IS NOT NULL"
    )[0]
    assert int(tags["refit_rows"]) == labelled[0] > production_rows  # train + validation + test
    assert int(tags["refit_positives"]) == labelled[1]
    assert not registry.search_model_versions(f"run_id = '{refit_run_id}'")  # logged, never registered
    assert str(registry.get_model_version_by_alias(PURCHASE_MODEL_NAME, PRODUCTION).version) == production.version

    # The forward rows carry the refit's run id, and their probabilities are the refit's, not production's.
    with build_resources(built.paths)["duckdb"].read_connection() as con:
        forward = con.execute(
            """SELECT f.*, p.predicted_prob, p.mlflow_run_id, p.scored_by, p.model_version
               FROM gold.user_item_features AS f
               JOIN gold.ecommerce_predictions AS p
                 ON p.cutoff = f.cutoff AND p.visitorid = f.user_id AND p.itemid = f.item_id
               WHERE f.dataset = 'score' ORDER BY p.visitorid, p.itemid"""
        ).df()
    assert len(forward) > 0
    assert set(forward["mlflow_run_id"]) == {refit_run_id} and set(forward["scored_by"]) == {"refit"}
    assert set(forward["model_version"].astype(str)) == {production.version}
    with using_tracking_uri(uri):
        import mlflow

        refit_model = mlflow.sklearn.load_model(tags["refit_model_uri"])
    features = coerce(forward, PURCHASE_TASK.specs)
    np.testing.assert_allclose(forward["predicted_prob"], predict_proba(refit_model, features), rtol=1e-9)
    assert not np.allclose(forward["predicted_prob"], predict_proba(production.model, features))
    # Same family and hyper-parameters as production.
    assert refit_model[-1].get_params() == production.model[-1].get_params()


def test_a_second_run_reuses_the_refit(built, built_copy, instance):
    uri = tracking_uri(built_copy, configured="")
    before = {run.info.run_id for run in _refit_runs(uri)}
    assert len(before) == 1
    result = dg.materialize(
        [predictions.ecommerce_predictions],
        resources={**build_resources(built_copy), **build_ml_resources()},
        instance=instance,
    )
    assert {run.info.run_id for run in _refit_runs(uri)} == before  # no new run
    metadata = result.asset_materializations_for_node("gold__ecommerce_predictions")[0].metadata
    assert metadata["refit_reused"].value is True
    assert metadata["refit_run_id"].value in before
    (run_ids,) = query(
        built_copy, "SELECT list(DISTINCT mlflow_run_id) FROM gold.ecommerce_predictions WHERE dataset = 'score'"
    )[0]
    assert run_ids == list(before)


def test_a_new_production_version_gets_its_own_refit(built, built_copy):
    """Promote a new version (the production pipeline registered again, with production's tags): the
    next scoring refits it once, leaves the old refit alone, and reuses the new one afterwards."""
    import mlflow

    uri = tracking_uri(built_copy, configured="")
    registry = client(uri)
    old = load_production_model(PURCHASE_MODEL_NAME, uri)
    old_refit = find_refit(uri, PURCHASE_TASK, old.version)
    assert old_refit is not None
    experiment = registry.get_experiment_by_name(PURCHASE_TASK.experiment)
    with using_tracking_uri(uri), mlflow.start_run(experiment_id=experiment.experiment_id):
        info = mlflow.sklearn.log_model(
            old.model,
            name="model",
            registered_model_name=PURCHASE_MODEL_NAME,
            skops_trusted_types=trusted_types(old.model),
        )
    new_version = str(info.registered_model_version)
    for key, value in old.tags.items():
        if key != REFIT_RUN_TAG:
            registry.set_model_version_tag(PURCHASE_MODEL_NAME, new_version, key, value)
    registry.set_registered_model_alias(PURCHASE_MODEL_NAME, PRODUCTION, new_version)
    assert find_refit(uri, PURCHASE_TASK, new_version) is None

    production = load_production_model(PURCHASE_MODEL_NAME, uri)
    assert production.version == new_version != old.version
    available = len(_labelled(built_copy)())
    cap = available // 2  # the refit's row cap (ECOM_ML_MAX_REFIT_ROWS): a sample, recorded as one
    refit = refit_production(
        uri, PURCHASE_TASK, production, _labelled(built_copy), built_copy.mlflow_artifacts, max_rows=cap
    )
    assert not refit.reused and refit.run_id != old_refit
    assert refit.rows == cap < available == refit.available
    run = registry.get_run(refit.run_id).data
    assert run.params["max_refit_rows"] == str(cap) and run.metrics["labelled_rows"] == available
    assert int(run.tags["refit_rows"]) == cap
    assert registry.get_run(refit.run_id).data.tags[REFIT_OF_VERSION_TAG] == new_version
    assert registry.get_model_version(PURCHASE_MODEL_NAME, new_version).tags[REFIT_RUN_TAG] == refit.run_id
    assert registry.get_model_version(PURCHASE_MODEL_NAME, old.version).tags[REFIT_RUN_TAG] == old_refit

    def no_read():
        raise AssertionError("a recorded refit is loaded, not fitted again: nothing to read")

    again = refit_production(uri, PURCHASE_TASK, production, no_read, built_copy.mlflow_artifacts)
    assert again.reused and again.run_id == refit.run_id and again.rows == refit.rows
    assert len(_refit_runs(uri)) == 2


def test_a_refit_without_both_classes_fails_clearly_and_records_nothing(built, built_copy):
    uri = tracking_uri(built_copy, configured="")
    registry = client(uri)
    production = load_production_model(PURCHASE_MODEL_NAME, uri)
    registry.delete_run(find_refit(uri, PURCHASE_TASK, production.version))  # as if never refit
    registry.delete_model_version_tag(PURCHASE_MODEL_NAME, production.version, REFIT_RUN_TAG)
    frame = _labelled(built_copy)()
    negatives_only = frame[frame[PURCHASE_TASK.label] == 0]
    with pytest.raises(CannotRefit, match="both classes are needed"):
        refit_production(uri, PURCHASE_TASK, production, lambda: negatives_only, built_copy.mlflow_artifacts)
    assert find_refit(uri, PURCHASE_TASK, production.version) is None
    assert not _refit_runs(uri)
