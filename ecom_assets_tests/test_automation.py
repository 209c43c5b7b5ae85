"""Automation through Dagster's own entry points: the landing sensor, the daily schedule, the UI server."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
from dagster._core.storage.tags import RUN_KEY_TAG, SENSOR_NAME_TAG
import pytest
import requests

from ecom_assets.lakehouse.data_tests import DATA_TESTS
from ecom_assets.definitions import build_definitions
from ecom_assets.partitions import landing_files
from ecom_assets.one_shot import init_dagster_home, run_pipeline
from ecom_assets.resources import build_resources
from ecom_assets.sensors import landing_sensor
from ecom_assets_tests.conftest import land, query
from ecom_assets_tests.servers import free_port, serving

REPO_ROOT = Path(__file__).resolve().parents[1]


def _evaluate_sensor(paths, instance) -> dg.SensorResult:
    context = dg.build_sensor_context(instance=instance, resources={"settings": build_resources(paths)["settings"]})
    return landing_sensor(context)


def test_landing_sensor_registers_new_files_and_requests_one_run_each(paths, instance):
    land(paths, "rees46_quirks.csv", "retailrocket_quirks.csv")
    (paths.landing / ".2019-Dec.csv.tmp").write_text("being written")  # ignored until renamed
    result = _evaluate_sensor(paths, instance)
    assert sorted(r.partition_key for r in result.run_requests) == ["rees46_quirks.csv", "retailrocket_quirks.csv"]
    (added,) = result.dynamic_partitions_requests
    assert sorted(added.partition_keys) == ["rees46_quirks.csv", "retailrocket_quirks.csv"]


def test_landing_sensor_run_key_changes_only_when_a_file_changes(paths, instance):
    land(paths, "rees46_quirks.csv")
    first = _evaluate_sensor(paths, instance)
    instance.add_dynamic_partitions(landing_files.name, ["rees46_quirks.csv"])
    again = _evaluate_sensor(paths, instance)
    assert [r.run_key for r in again.run_requests] == [r.run_key for r in first.run_requests]
    assert again.dynamic_partitions_requests == []  # nothing new to register
    with open(paths.landing / "rees46_quirks.csv", "a") as handle:
        handle.write("\n")
    changed = _evaluate_sensor(paths, instance)
    assert changed.run_requests[0].run_key != first.run_requests[0].run_key


def test_a_sensor_run_request_ingests_its_file(paths, instance):
    land(paths, "rees46_quirks.csv")
    (request,) = _evaluate_sensor(paths, instance).run_requests
    instance.add_dynamic_partitions(landing_files.name, [request.partition_key])
    job = build_definitions(paths).resolve_job_def("ingest_landing_file")
    result = job.execute_in_process(partition_key=request.partition_key, instance=instance)
    assert result.success
    assert query(paths, "SELECT count(DISTINCT source_file) FROM bronze.events") == [(1,)]


def test_daily_schedule_defaults_to_16_48_and_targets_the_refresh(paths):
    defs = build_definitions(paths)
    schedule = defs.resolve_schedule_def("daily_refresh")
    assert schedule.cron_schedule == "48 16 * * *"
    assert schedule.job_name == "refresh_warehouse"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING


def test_daily_schedule_time_is_configurable(tmp_path):
    env = {**os.environ, "ECOM_DAILY_CRON": "5 3 * * *", "ECOM_TIMEZONE": "Europe/Warsaw"}
    out = subprocess.run(
        [sys.executable, "-c", "from ecom_assets.schedules import daily_refresh_schedule as s;"
                               "print(s.cron_schedule, s.execution_timezone)"],
        env=env, capture_output=True, text=True, check=True, cwd=tmp_path,
    ).stdout.split()
    assert out == ["5", "3", "*", "*", "*", "Europe/Warsaw"]


def test_definitions_load():
    dg.Definitions.validate_loadable(build_definitions())


@pytest.fixture
def webserver(paths, tmp_path):
    """The real Dagster UI server on a free loopback port, loading workspace.yaml like `make dev`."""
    init_dagster_home(paths)  # the UI refuses a DAGSTER_HOME that does not exist
    port = free_port()
    command = [str(Path(sys.executable).with_name("dagster-webserver")), "-w", "workspace.yaml",
               "-h", "127.0.0.1", "-p", str(port)]
    url = f"http://127.0.0.1:{port}"
    with serving(command, f"{url}/server_info", tmp_path / "webserver.log", env=os.environ.copy(), cwd=REPO_ROOT,
                 startup_seconds=120):
        yield url


def _graphql(url: str, query_text: str) -> dict:
    response = requests.post(f"{url}/graphql", json={"query": query_text}, timeout=60)
    response.raise_for_status()
    return response.json()["data"]


def test_the_ui_serves_the_asset_graph_jobs_schedule_and_sensors(webserver):
    deadline = time.monotonic() + 120
    while True:  # the code location loads in the background after the server answers
        data = _graphql(webserver, """{ assetNodes { assetKey { path }
            assetChecksOrError { ... on AssetChecks { checks { name blocking } } } } }""")
        if data["assetNodes"] or time.monotonic() > deadline:
            break
        time.sleep(1)
    keys = {"/".join(node["assetKey"]["path"]) for node in data["assetNodes"]}
    assert {"bronze/events", "silver/events", "silver/events_quarantine", "gold/fact_user_sessions",
            "gold/dim_users", "gold/user_item_interactions"} <= keys
    checks = {("/".join(node["assetKey"]["path"]), check["name"]): check["blocking"]
              for node in data["assetNodes"] for check in node["assetChecksOrError"].get("checks", [])}
    assert checks[("silver/events", "accounting_balances")] is True
    assert ("gold/fact_user_sessions", "session_end_after_start") in checks
    assert len(checks) >= len(DATA_TESTS)
    repos = _graphql(webserver, """{ repositoriesOrError { ... on RepositoryConnection { nodes {
        name jobs { name } schedules { name cronSchedule } sensors { name } } } } }""")
    (repo,) = repos["repositoriesOrError"]["nodes"]
    assert {"ingest_landing_file", "refresh_warehouse"} <= {job["name"] for job in repo["jobs"]}
    assert {"name": "daily_refresh", "cronSchedule": "48 16 * * *"} in repo["schedules"]
    assert "landing_sensor" in {sensor["name"] for sensor in repo["sensors"]}


def test_silver_declares_how_fresh_landing_data_should_be(paths):
    from ecom_assets.assets.silver import SILVER_EVENTS

    spec = build_definitions(paths).resolve_assets_def(SILVER_EVENTS).specs_by_key[SILVER_EVENTS]
    policy = spec.freshness_policy
    assert policy.warn_window.to_timedelta().total_seconds() == 26 * 3600
    assert policy.fail_window.to_timedelta().total_seconds() == 50 * 3600


def test_a_headless_run_is_not_ingested_again_by_the_sensor(paths, instance):
    """`ecom-assets run` tags its ingest runs with the sensor's run key, which the daemon skips."""
    land(paths, "rees46_quirks.csv")
    run_pipeline(paths, instance, log=lambda _: None)
    (request,) = _evaluate_sensor(paths, instance).run_requests
    runs = instance.get_runs(filters=dg.RunsFilter(tags={RUN_KEY_TAG: request.run_key}))
    assert [run.tags[SENSOR_NAME_TAG] for run in runs] == ["landing_sensor"]
