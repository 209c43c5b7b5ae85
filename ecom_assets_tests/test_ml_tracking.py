"""tracking: a training run left RUNNING by a killed process is marked KILLED, with a note, before
the next training; a run whose process still runs is left alone; a moved registry, rehomed, loads its
models from the new place."""

from __future__ import annotations

import os

from ecom_assets.ml.tracking import (
    HOST_TAG,
    NOTE_TAG,
    PID_TAG,
    client,
    close_orphan_runs,
    ensure_experiment,
    tracking_uri,
)
from ecom_assets.processes import HOST
from ecom_assets_tests.pool_runs import dead_pid


def test_orphan_training_runs_are_marked_killed_with_a_note(paths):
    uri = tracking_uri(paths, configured="")
    experiment_id = ensure_experiment(uri, "orphans", paths.mlflow_artifacts)
    mlflow = client(uri)
    gone = dead_pid()
    orphan = mlflow.create_run(experiment_id, tags={HOST_TAG: HOST, PID_TAG: str(gone)}).info.run_id
    live = mlflow.create_run(experiment_id, tags={HOST_TAG: HOST, PID_TAG: str(os.getpid())}).info.run_id

    assert close_orphan_runs(uri, experiment_id) == [orphan]

    killed = mlflow.get_run(orphan)
    assert killed.info.status == "KILLED" and killed.info.end_time is not None
    assert f"pid {gone}" in killed.data.tags[NOTE_TAG]
    assert mlflow.get_run(live).info.status == "RUNNING"
    assert close_orphan_runs(uri, experiment_id) == []


def test_experiments_are_classic_ml_new_or_existing(paths):
    """Without the kind tag MLflow 3's UI opens an experiment on its GenAI view (traces, token cost)."""
    from ecom_assets.ml.tracking import CLASSIC_ML_KIND, EXPERIMENT_KIND_TAG

    uri = tracking_uri(paths, configured="")
    mlflow = client(uri)
    created = ensure_experiment(uri, "fresh", paths.mlflow_artifacts, "what it predicts")
    tags = mlflow.get_experiment(created).tags
    assert tags[EXPERIMENT_KIND_TAG] == CLASSIC_ML_KIND == "custom_model_development"
    assert tags[NOTE_TAG] == "what it predicts"
    assert mlflow.get_experiment(created).artifact_location == (paths.mlflow_artifacts / "fresh").as_uri()

    older = mlflow.create_experiment("made_by_an_older_version")  # no tags
    assert EXPERIMENT_KIND_TAG not in mlflow.get_experiment(older).tags
    assert ensure_experiment(uri, "made_by_an_older_version", paths.mlflow_artifacts) == older
    assert mlflow.get_experiment(older).tags[EXPERIMENT_KIND_TAG] == CLASSIC_ML_KIND


def test_a_moved_registry_loads_its_model_from_the_new_home_after_rehome(tmp_path):
    """MLflow keeps absolute artifact URIs: after a move, only `rehome_registry` makes the model loadable.
    A space in the home's name: URIs hold it as %20, plain paths as a space."""
    import mlflow
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from ecom_assets.ecom_home import EcomPaths
    from ecom_assets.ml.tracking import load_model, pip_requirements, rehome_registry, trusted_types, using_tracking_uri

    old, new = EcomPaths(tmp_path / "old home"), EcomPaths(tmp_path / "moved" / "new home")
    old.home.mkdir()
    X = pd.DataFrame({"views": np.arange(20.0), "carts": np.arange(20.0) % 3})
    model = LogisticRegression().fit(X, (X["views"] > 9).astype(int))
    uri = tracking_uri(old, configured="")
    experiment_id = ensure_experiment(uri, "moving", old.mlflow_artifacts)
    with using_tracking_uri(uri), mlflow.start_run(experiment_id=experiment_id):
        mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name="mover",
            pip_requirements=pip_requirements(),
            skops_trusted_types=trusted_types(model),
        )
    new.home.parent.mkdir()
    old.home.rename(new.home)

    rehome_registry(new.mlflow_db, str(old.home), str(new.home))

    moved = tracking_uri(new, configured="")
    assert client(moved).get_experiment(experiment_id).artifact_location == (new.mlflow_artifacts / "moving").as_uri()
    loaded = load_model(moved, "mover", version="1")
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X))
    assert not old.home.exists()  # nothing was read from the old place
