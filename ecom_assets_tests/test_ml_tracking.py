"""tracking: a training run left RUNNING by a killed process is marked KILLED, with a note, before
the next training; a run whose process still runs is left alone."""

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
