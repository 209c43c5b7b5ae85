"""The cluster rehearsal with Dagster's Celery executor (docs/cluster.md): the whole graph over the same
generated files once in the local profile, in process, and once in the cluster profile with its steps on
two Celery workers, each in its own empty folder, sharing nothing but Postgres, the S3 server and the
Redis broker. The sessions run is a backfill of the 44 day partitions the files cover, and one worker
process is SIGKILLed in the middle of it: Celery hands its step to a worker again and nothing is lost.

The services are real servers started here (ecom_assets_tests/cluster_services.py); the test skips only
when one of them is not installed on this machine (.ci/run installs them).
"""

from __future__ import annotations

import os
import signal
import threading

import dagster as dg
import pandas as pd
import pytest

from ecom_assets.ecom_home import EcomPaths
from ecom_assets.generator import GeneratorConfig, generate
from ecom_assets.ml import tracking
from ecom_assets.ml.feature_specs import CART_TASK, PURCHASE_TASK
from ecom_assets.one_shot import init_dagster_home, run_pipeline
from ecom_assets.resources import build_resources
from ecom_assets_tests import cluster_services
from ecom_assets_tests.cluster_services import BUCKET

_missing = cluster_services.missing() or ("" if cluster_services.redis_bin() else "redis-server")
pytestmark = pytest.mark.skipif(bool(_missing), reason=f"no {_missing}")

TABLES = (
    "silver.events",
    "gold.fact_user_sessions",
    "gold.dim_users",
    "gold.user_item_features",
    "gold.cart_session_features",
    "gold.ecommerce_predictions",
    "gold.cart_abandonment_scores",
)
# When a row was built and by which MLflow run: different in any two builds, whatever the profile.
VOLATILE = {"features_built_at", "built_at", "trained_at", "scored_at", "mlflow_run_id", "refit_run_id"}
SESSIONS_STEP = "gold__fact_user_sessions"
TASKS = (PURCHASE_TASK, CART_TASK)
SMALL_MODELS = {"ECOM_ML_GB_MAX_ITER": "60", "ECOM_ML_RF_TREES": "30"}  # this test is about where steps run


def _tables(paths: EcomPaths) -> dict[str, pd.DataFrame]:
    with build_resources(paths)["duckdb"].read_connection() as con:
        frames = {table: con.execute(f"FROM {table}").df() for table in TABLES}
    return {
        table: frame.drop(columns=[c for c in frame.columns if c in VOLATILE]).pipe(
            lambda f: f.sort_values(list(f.columns)).reset_index(drop=True)
        )
        for table, frame in frames.items()
    }


def _aliases(paths: EcomPaths) -> dict[str, int | None]:
    uri = tracking.tracking_uri(paths)
    return {task.registered_model: tracking.production_version(uri, task.registered_model) for task in TASKS}


def _events(instance: dg.DagsterInstance, event_type: dg.DagsterEventType) -> list[dg.EventLogEntry]:
    return [entry for run in instance.get_runs() for entry in instance.all_logs(run.run_id, of_type=event_type)]


class StepKiller:
    """SIGKILLs the worker process executing `step_key` as soon as the step has started on it: the step's
    STEP_START event names the process (its pid), a Celery prefork child of one of the workers."""

    def __init__(self, instance: dg.DagsterInstance, workers: list, step_key: str):
        self.instance, self.workers, self.step_key = instance, workers, step_key
        self.killed_pid: int | None = None
        self.worker_name = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> StepKiller:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _watch(self) -> None:
        while not self._stop.wait(0.02):
            runs = self.instance.get_runs(
                dg.RunsFilter(job_name="build_sessions", statuses=[dg.DagsterRunStatus.STARTED])
            )
            for run in runs:
                for entry in self.instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_START):
                    pid = entry.dagster_event.pid
                    owner = next((w for w in self.workers if pid in w.child_pids()), None)
                    if entry.step_key == self.step_key and owner is not None:
                        os.kill(pid, signal.SIGKILL)
                        self.killed_pid, self.worker_name = pid, owner.name
                        return


def test_a_backfill_on_two_celery_workers_equals_the_local_build_though_a_worker_is_killed(tmp_path, monkeypatch):
    files = tmp_path / "files"
    # 20k events over 42 days (seed 3), as the other whole-graph tests: both models train and promote.
    generate(files, GeneratorConfig(events=20_000, days=42, seed=3))
    for name, value in SMALL_MODELS.items():
        monkeypatch.setenv(name, value)

    local = EcomPaths(tmp_path / "local_home").ensure()
    for f in files.iterdir():
        (local.landing / f.name).write_bytes(f.read_bytes())
    monkeypatch.setenv("ECOM_HOME", str(local.home))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking.tracking_uri(local, configured=""))
    with dg.instance_for_test() as instance:
        outcome = run_pipeline(local, instance, log=lambda _: None)
    assert not outcome.failed_steps, outcome.failed_steps
    expected, expected_aliases = _tables(local), _aliases(local)

    with cluster_services.cluster_services() as services, cluster_services.redis_server() as broker:
        env = {**services.env("backfill"), "ECOM_EXECUTOR": "celery", "ECOM_CELERY_BROKER_URL": broker, **SMALL_MODELS}
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("MLFLOW_TRACKING_URI")  # the cluster profile's registry is on Postgres
        s3 = services.s3()
        for f in files.iterdir():  # the shop drops its exports into the bucket
            s3.put_object(Bucket=BUCKET, Key=f"backfill/files/landing/{f.name}", Body=f.read_bytes())
        home = EcomPaths(tmp_path / "cluster_home")
        monkeypatch.setenv("ECOM_HOME", str(home.home))
        monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "cluster_dagster_home"))
        with (
            cluster_services.celery_workers(env, 2, tmp_path / "workers") as workers,
            dg.DagsterInstance.from_config(init_dagster_home(home)) as instance,
        ):
            with StepKiller(instance, workers, SESSIONS_STEP) as killer:
                outcome = run_pipeline(home, instance, log=lambda _: None)
            assert not outcome.failed_steps, outcome.failed_steps
            runs = instance.get_runs()
            starts = _events(instance, dg.DagsterEventType.STEP_START)
            successes = _events(instance, dg.DagsterEventType.STEP_SUCCESS)
            engine = _events(instance, dg.DagsterEventType.ENGINE_EVENT)
            got, got_aliases = _tables(home), _aliases(home)
        worker_files = [p for w in workers for p in (w.home).rglob("*") if p.is_file()]

    # The sessions run is a backfill of every day partition the files cover, in one run (single_run policy).
    sessions = [r for r in runs if r.job_name == "build_sessions"]
    assert len(sessions) == 1 and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
    start, end = (sessions[0].tags[f"dagster/asset_partition_range_{side}"] for side in ("start", "end"))
    assert (pd.Timestamp(end) - pd.Timestamp(start)).days + 1 >= 10

    # Steps ran in the workers, on both of them, never in this process.
    workers_named = {
        e.dagster_event.event_specific_data.metadata["Celery worker"].value
        for e in engine
        if e.step_key and "Celery worker" in (e.dagster_event.event_specific_data.metadata or {})
    }
    assert workers_named == {w.name for w in workers}
    assert {e.dagster_event.pid for e in starts} and os.getpid() not in {e.dagster_event.pid for e in starts}
    assert len({e.dagster_event.pid for e in starts}) >= 2

    # One worker process was killed in the middle of the sessions step: it never finished there; Celery gave
    # the step to a worker again, where it succeeded once.
    assert killer.killed_pid is not None, "the sessions step was never seen starting on a worker"
    session_starts = [e.dagster_event.pid for e in starts if e.step_key == SESSIONS_STEP]
    session_successes = [e.dagster_event.pid for e in successes if e.step_key == SESSIONS_STEP]
    assert killer.killed_pid in session_starts and len(session_starts) == 2
    assert len(session_successes) == 1 and session_successes[0] != killer.killed_pid

    # Nothing lost, nothing doubled: the same tables, models and predictions as the local profile's.
    assert len(expected["silver.events"]) > 15_000 and len(expected["gold.ecommerce_predictions"]) > 0
    for table, frame in expected.items():
        pd.testing.assert_frame_equal(got[table], frame, obj=table)
    assert got_aliases == expected_aliases and all(v is not None for v in got_aliases.values())
    # The workers kept nothing on their own disks but Celery's and Dagster's own scratch.
    assert not [p for p in worker_files if p.suffix in (".parquet", ".csv", ".png", ".html", ".sqlite", ".db")]
