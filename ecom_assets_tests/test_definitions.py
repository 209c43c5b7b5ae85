"""definitions: the code location loads, with every layer, data test, job, schedule and sensor; and the
real Dagster UI serves it from workspace.yaml."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import requests

from ecom_assets.definitions import build_definitions, load_definitions
from ecom_assets.lakehouse.data_tests import DATA_TESTS
from ecom_assets.ml.model_data_tests import ML_DATA_TESTS
from ecom_assets.one_shot import init_dagster_home
from ecom_assets.partitions import event_days, landing_files
from ecom_assets_tests.servers import free_port, serving

REPO_ROOT = Path(__file__).resolve().parents[1]
LAYERS = {"bronze", "silver", "gold", "experiment", "ml", "insights", "monitoring"}


@pytest.fixture(scope="module")
def defs() -> dg.Definitions:
    return build_definitions()


def test_the_code_location_entry_point_loads():
    """What `dagster dev` and workspace.yaml load: the @dg.definitions function of definitions.py."""
    loaded = load_definitions()
    dg.Definitions.validate_loadable(loaded)
    assert loaded.resolve_job_def("refresh_warehouse") is not None


def test_definitions_load(defs):
    dg.Definitions.validate_loadable(defs)


def test_every_layer_is_loaded_and_its_key_prefix_is_its_group(defs):
    graph = defs.get_repository_def().asset_graph
    keys = graph.get_all_asset_keys()
    assert LAYERS <= {key.path[0] for key in keys}
    assert {
        dg.AssetKey(["bronze", "events"]),
        dg.AssetKey(["silver", "events"]),
        dg.AssetKey(["silver", "events_quarantine"]),
        dg.AssetKey(["silver", "events_duplicates"]),
        dg.AssetKey(["gold", "fact_user_sessions"]),
        dg.AssetKey(["gold", "dim_users"]),
        dg.AssetKey(["experiment", "ab_test_results"]),
        dg.AssetKey(["ml", "purchase_model"]),
        dg.AssetKey(["ml", "cart_abandonment_model"]),
        dg.AssetKey(["ecommerce", "predicted_purchase"]),
        dg.AssetKey(["monitoring", "purchase_drift_report"]),
    } <= keys
    assert {key for key in keys if graph.get(key).group_name != key.path[0]} == set()


def test_every_data_test_is_an_asset_check_and_bad_data_blocks_the_graph(defs):
    graph = defs.get_repository_def().asset_graph
    declared = {(key.asset_key, key.name) for key in graph.asset_check_keys}
    for test in (*DATA_TESTS, *ML_DATA_TESTS):
        assert (dg.AssetKey(test.table.split(".")), test.name) in declared, test
    for asset, check in (
        (["silver", "events"], "accounting_balances"),
        (["experiment", "ab_test_results"], "sample_ratio_mismatch"),
    ):
        assert graph.get_check_spec(dg.AssetCheckKey(dg.AssetKey(asset), check)).blocking, check


def test_jobs_schedule_and_sensors_are_registered(defs):
    repo = defs.get_repository_def()
    assert {
        "ingest_landing_file",
        "build_sessions",
        "maintain_lake",
        "refresh_warehouse",
        "refresh_and_retrain",
        "retrain_models",
        "retrain_purchase_model",
        "retrain_cart_abandonment_model",
    } <= {job.name for job in repo.get_all_jobs()}
    assert defs.resolve_job_def("ingest_landing_file").partitions_def == landing_files
    assert defs.resolve_job_def("build_sessions").partitions_def == event_days
    assert sorted(schedule.name for schedule in repo.schedule_defs) == [
        "daily_refresh",
        "nightly_lake_maintenance",
        "weekly_retrain",
    ]
    assert {sensor.name for sensor in repo.sensor_defs} == {"landing_sensor", "sessions_sensor", "retrain_on_drift"}


@pytest.fixture
def webserver(paths, tmp_path):
    """The real Dagster UI server on a free loopback port, loading workspace.yaml like `make dev`."""
    init_dagster_home(paths)  # the UI refuses a DAGSTER_HOME that does not exist
    port = free_port()
    command = [
        str(Path(sys.executable).with_name("dagster-webserver")),
        "-w",
        "workspace.yaml",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
    ]
    url = f"http://127.0.0.1:{port}"
    with serving(
        command,
        f"{url}/server_info",
        tmp_path / "webserver.log",
        env=os.environ.copy(),
        cwd=REPO_ROOT,
        startup_seconds=120,
    ):
        yield url


def _graphql(url: str, query_text: str) -> dict:
    response = requests.post(f"{url}/graphql", json={"query": query_text}, timeout=60)
    response.raise_for_status()
    return response.json()["data"]


def test_the_ui_serves_the_asset_graph_jobs_schedule_and_sensors(webserver, defs):
    deadline = time.monotonic() + 120
    while True:  # the code location loads in the background after the server answers
        data = _graphql(
            webserver,
            """{ assetNodes { assetKey { path }
            assetChecksOrError { ... on AssetChecks { checks { name blocking } } } } }""",
        )
        if data["assetNodes"] or time.monotonic() > deadline:
            break
        time.sleep(1)
    keys = {"/".join(node["assetKey"]["path"]) for node in data["assetNodes"]}
    assert {
        "bronze/events",
        "silver/events",
        "silver/events_quarantine",
        "gold/fact_user_sessions",
        "gold/dim_users",
    } <= keys
    checks = {
        ("/".join(node["assetKey"]["path"]), check["name"]): check["blocking"]
        for node in data["assetNodes"]
        for check in node["assetChecksOrError"].get("checks", [])
    }
    assert checks[("silver/events", "accounting_balances")] is True
    assert ("gold/fact_user_sessions", "session_end_after_start") in checks
    assert len(checks) >= len(DATA_TESTS)
    repos = _graphql(
        webserver,
        """{ repositoriesOrError { ... on RepositoryConnection { nodes {
        name jobs { name } schedules { name cronSchedule } sensors { name } } } } }""",
    )
    (repo,) = repos["repositoriesOrError"]["nodes"]
    assert {"ingest_landing_file", "refresh_warehouse"} <= {job["name"] for job in repo["jobs"]}
    cron = defs.resolve_schedule_def("daily_refresh").cron_schedule  # the same environment as the server
    assert {"name": "daily_refresh", "cronSchedule": cron} in repo["schedules"]
    assert "landing_sensor" in {sensor["name"] for sensor in repo["sensors"]}
