"""`ecom-assets run` killed with SIGKILL in bronze, silver, gold and training: each next run recovers
the run the kill left STARTED, and the last one finishes on its own with a clean run's counts.

Before issue 11's fix the killed run kept its `warehouse` pool slot and every later run waited for
it forever. A clean run on its own home runs alongside the kills (the machine has two cores).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg

from ecom_assets.ecom_home import EcomPaths
from ecom_assets.generator import GeneratorConfig, generate
from ecom_assets.ml.tracking import client, tracking_uri
from ecom_assets.one_shot import warehouse_summary
from ecom_assets.resources import WAREHOUSE_POOL
from ecom_assets.warehouse_turns import pool_holders
from ecom_assets_tests.cli_process import CliProcess

# Small models and one OpenMP thread: the graph in well under a minute, the same in every home.
FAST = {
    "OMP_NUM_THREADS": "1",
    "ECOM_ML_GB_MAX_ITER": "30",
    "ECOM_ML_RF_TREES": "20",
    "MLFLOW_SKIP_PIP_REQUIREMENTS_CHECK": "true",
}
# SIGKILL as soon as the step has started: it holds the warehouse pool's only slot then.
KILL_AT = {
    "bronze": 'Started execution of step "bronze__events"',
    "silver": 'Started execution of step "silver_events"',
    "gold": 'Started execution of step "gold__fact_user_sessions"',
    "training": 'Started execution of step "ml__purchase_model"',
}


def home(root: Path, landing: Path) -> tuple[EcomPaths, dict[str, str]]:
    paths = EcomPaths(root / "ecom_home")
    shutil.copytree(landing, paths.landing)
    env = {
        **FAST,
        "ECOM_HOME": str(paths.home),
        "DAGSTER_HOME": str(root / "dagster_home"),
        "MLFLOW_TRACKING_URI": tracking_uri(paths, configured=""),
    }
    return paths, env


def test_killed_at_each_stage_the_next_run_recovers_and_converges(tmp_path):
    landing = tmp_path / "landing"
    # 42 days: with cutoffs on the Monday calendar, 40 days from Tuesday 2019-10-01 leave no train cutoff.
    # Seed 3 (as test_one_shot_quoted_home): seed 7's train and validation cutoffs hold 3 purchases each,
    # under the 5 that training requires.
    generate(landing, GeneratorConfig(events=20_000, days=42, seed=3))
    clean_paths, clean_env = home(tmp_path / "clean", landing)
    paths, env = home(tmp_path / "crashed", landing)

    clean = CliProcess("run", env=clean_env)
    try:
        killed_pid = None
        for stage, marker in KILL_AT.items():
            run = CliProcess("run", env=env)
            try:
                # A run stuck behind the previous kill's slot never reaches the marker.
                run.wait_for(marker, timeout=240)
            finally:
                run.kill()
            if killed_pid is not None:
                assert f"was left STARTED by process {killed_pid}, which is gone" in run.output, stage
            killed_pid = run.pid
        final = CliProcess("run", env=env)
        assert final.finish(timeout=300) == 0, final.tail()
        assert clean.finish(timeout=300) == 0, clean.tail()
    finally:
        clean.kill()

    assert f"was left STARTED by process {killed_pid}, which is gone" in final.output
    assert "all succeeded" in final.output
    counts = warehouse_summary(paths)
    assert counts == warehouse_summary(clean_paths)
    assert dict(counts)["silver.events"] > 15_000 and dict(counts)["gold.ecommerce_predictions"] > 0

    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        assert not instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
        assert len(instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]))) == len(KILL_AT)
        assert pool_holders(instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL)) == []
    mlflow = client(env["MLFLOW_TRACKING_URI"])
    experiments = [e.experiment_id for e in mlflow.search_experiments()]
    assert not mlflow.search_runs(experiments, filter_string="attributes.status = 'RUNNING'")
