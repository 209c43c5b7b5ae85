"""Shared fixtures: a temp ECOM_HOME per test, a real Dagster instance, the quirk fixtures."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest

from ecom_assets.resources import build_resources
from ecom_assets.ecom_home import EcomPaths

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def paths(tmp_path, monkeypatch) -> EcomPaths:
    """A fresh ECOM_HOME inside tmp_path; nothing is written to the working directory."""
    home = tmp_path / "ecom_home"
    monkeypatch.setenv("ECOM_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    return EcomPaths(home).ensure()


@pytest.fixture
def instance():
    with dg.instance_for_test() as test_instance:
        yield test_instance


def land(paths: EcomPaths, *fixture_names: str) -> None:
    for name in fixture_names:
        shutil.copy(FIXTURES / name, paths.landing / name)


def query(paths: EcomPaths, sql: str, params=None) -> list[tuple]:
    # Through the pipeline's own resource: DuckDB refuses a differently configured second
    # connection to a file already open in this process.
    with build_resources(paths)["duckdb"].get_connection() as con:
        return con.execute(sql, params).fetchall()


BUILT_EVENTS = 60_000  # ~3k users over two months: enough for every layer, quick to build


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    """One generated dataset materialized through the whole graph, shared read-only by many tests.

    Tests that change data work on their own ECOM_HOME (the `paths` fixture) instead.
    """
    from ecom_assets.generator import GeneratorConfig, generate
    from ecom_assets.one_shot import run_pipeline

    root = tmp_path_factory.mktemp("built")
    paths = EcomPaths(root / "ecom_home").ensure()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("ECOM_HOME", str(paths.home))
        env.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{paths.mlflow_db}")
        generate(paths.landing, GeneratorConfig(events=BUILT_EVENTS, days=61, seed=11))
        with dg.instance_for_test() as test_instance:
            outcome = run_pipeline(paths, test_instance, log=lambda _: None)
            yield Built(paths, test_instance, outcome)


class Built:
    def __init__(self, paths: EcomPaths, instance: dg.DagsterInstance, outcome) -> None:
        self.paths, self.instance, self.outcome = paths, instance, outcome
