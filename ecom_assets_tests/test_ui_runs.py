"""The runs of `ecom-assets run` in the real Dagster UI (workspace.yaml, as `make dev` serves it): on
their job's page and the timeline, tagged with what launched them, not on the sensor's Runs tab."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from ecom_assets_tests.conftest import land
from ecom_assets_tests.test_definitions import _graphql, webserver  # noqa: F401 (a fixture)
from ecom_assets_tests.test_serving_app import browser, needs_chromium  # noqa: F401 (a fixture)

LOCATION, REPOSITORY = "ecom_assets", "__repository__"
JOB_RUNS = """{ pipelineOrError(params: {pipelineName: "%s", repositoryName: "%s", repositoryLocationName: "%s"}) {
  __typename ... on Pipeline { runs { runId status tags { key value } } } } }"""
ALL_RUNS = """{ runsOrError { ... on Runs { results { runId pipelineName
  repositoryOrigin { repositoryLocationName repositoryName } } } } }"""
SENSOR_RUNS = """{ sensorOrError(sensorSelector: {sensorName: "landing_sensor", repositoryName: "%s",
  repositoryLocationName: "%s"}) { __typename ... on Sensor { sensorState { runs { runId } } } } }"""


def _job_runs(url: str, job: str) -> list[dict]:
    deadline = time.monotonic() + 120
    while True:  # the code location loads in the background after the server answers
        found = _graphql(url, JOB_RUNS % (job, REPOSITORY, LOCATION))["pipelineOrError"]
        if found["__typename"] == "Pipeline" or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert found["__typename"] == "Pipeline", found
    return found["runs"]


@pytest.fixture
def one_shot(paths, webserver):  # noqa: F811 (the imported fixture)
    """`ecom-assets run` on a small landing file, in the DAGSTER_HOME the UI serves; its output.

    The file is too small to train the models: the refresh run fails there, and is a run all the same.
    """
    land(paths, "rees46_quirks.csv")
    done = subprocess.run(
        [sys.executable, "-m", "ecom_assets.cli", "run"], capture_output=True, text=True, timeout=600, check=False
    )
    assert "3 run(s)" in done.stdout, done.stdout + done.stderr
    return webserver


def test_the_one_shots_runs_are_on_their_jobs_pages_and_the_timeline(one_shot):
    (refresh,) = _job_runs(one_shot, "refresh_and_retrain")
    (ingest,) = _job_runs(one_shot, "ingest_landing_file")
    (sessions,) = _job_runs(one_shot, "build_sessions")
    for run in (refresh, ingest, sessions):
        tags = {tag["key"]: tag["value"] for tag in run["tags"]}
        assert tags["ecom/launched_by"] == "ecom-assets run"
        assert "dagster/sensor_name" not in tags
    everything = _graphql(one_shot, ALL_RUNS)["runsOrError"]["results"]
    assert {run["runId"] for run in everything} == {refresh["runId"], ingest["runId"], sessions["runId"]}
    for run in everything:  # what the timeline groups runs by
        assert run["repositoryOrigin"] == {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY}
    sensor = _graphql(one_shot, SENSOR_RUNS % (REPOSITORY, LOCATION))["sensorOrError"]
    assert sensor["sensorState"]["runs"] == []  # the sensor launched none of them


@needs_chromium
def test_the_job_page_in_a_browser_lists_the_one_shots_run(one_shot, browser):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    (refresh,) = _job_runs(one_shot, "refresh_and_retrain")
    browser.get(f"{one_shot}/locations/{LOCATION}/jobs/refresh_and_retrain/runs")
    short_id = refresh["runId"][:8]  # how the runs table shows a run id
    WebDriverWait(browser, 120, poll_frequency=0.5).until(
        lambda d: short_id in d.find_element(By.TAG_NAME, "body").text
    )
    assert "No runs found" not in browser.find_element(By.TAG_NAME, "body").text
