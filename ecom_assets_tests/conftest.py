"""Shared fixtures: a temp ECOM_HOME per test, a real Dagster instance, the quirk fixtures."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from ecom_assets.ecom_home import EcomPaths
from ecom_assets.ml.tracking import rehome_registry, tracking_uri
from ecom_assets.resources import build_resources

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def paths(tmp_path, monkeypatch) -> EcomPaths:
    """A fresh ECOM_HOME inside tmp_path; nothing is written to the working directory."""
    home = tmp_path / "ecom_home"
    monkeypatch.setenv("ECOM_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    # The home's own registry, whatever the developer's shell says (configured="": the local default).
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri(EcomPaths(home), configured=""))
    return EcomPaths(home).ensure()


@pytest.fixture
def instance():
    with dg.instance_for_test() as test_instance:
        yield test_instance


def land(paths: EcomPaths, *fixture_names: str) -> None:
    for name in fixture_names:
        shutil.copy(FIXTURES / name, paths.landing / name)


def query(paths: EcomPaths, sql: str, params=None) -> list[tuple]:
    # A reader's connection, as the API, the app or an analyst opens the lake: no write lock.
    with build_resources(paths)["duckdb"].read_connection() as con:
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
        env.setenv("MLFLOW_TRACKING_URI", tracking_uri(paths, configured=""))
        generate(paths.landing, GeneratorConfig(events=BUILT_EVENTS, days=61, seed=11))
        with dg.instance_for_test() as test_instance:
            outcome = run_pipeline(paths, test_instance, log=lambda _: None)
            yield Built(paths, test_instance, outcome)


class Built:
    def __init__(self, paths: EcomPaths, instance: dg.DagsterInstance, outcome) -> None:
        self.paths, self.instance, self.outcome = paths, instance, outcome


@pytest.fixture
def built_copy(built, tmp_path, monkeypatch) -> EcomPaths:
    """A private copy of the built ECOM_HOME, for tests that write (rerun the graph, register a model).

    ECOM_HOME and MLFLOW_TRACKING_URI point at the copy. MLflow stores artifact locations as absolute
    URIs, so the copied registry is rewritten to the copy's folder: new runs and logged reports land
    in the copy, never in the shared `built` home. Pair it with a fresh `instance`.
    """
    paths = EcomPaths(tmp_path / "ecom_home")
    shutil.copytree(built.paths.home, paths.home)
    rehome_registry(paths.mlflow_db, str(built.paths.home), str(paths.home))
    monkeypatch.setenv("ECOM_HOME", str(paths.home))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri(paths, configured=""))
    return paths.ensure()


@pytest.fixture(scope="module")
def cart_frame(built):
    """The built cart-session features, one frame per module: tests copy it before changing it."""
    with build_resources(built.paths)["duckdb"].read_connection() as con:
        return con.execute("SELECT * FROM gold.cart_session_features ORDER BY session_id").df()


def ingest(paths: EcomPaths, instance: dg.DagsterInstance, raise_on_error: bool = True) -> list:
    """Every landing file through the ingest job alone (bronze and silver with their checks), as
    `ecom-assets run` and the landing sensor do, without the rest of the graph."""
    from ecom_assets.definitions import build_definitions
    from ecom_assets.lakehouse.landing import list_landing_files
    from ecom_assets.partitions import landing_files

    files = [f.name for f in list_landing_files(paths.landing)]
    instance.add_dynamic_partitions(landing_files.name, files)
    job = build_definitions(paths).resolve_job_def("ingest_landing_file")
    return [
        job.execute_in_process(partition_key=name, instance=instance, raise_on_error=raise_on_error) for name in files
    ]


def load_silver_events(con, events: list[dict]) -> None:
    """Replace silver.events with `events` (dicts of its columns), numbered as lines 1..n."""
    frame = pd.DataFrame(events)
    frame["line_number"] = range(1, len(frame) + 1)
    con.execute("DELETE FROM silver.events")
    con.register("events_df", frame)
    con.execute("INSERT INTO silver.events BY NAME SELECT * FROM events_df")
    con.unregister("events_df")


def landed_cleanly(results: list[dg.ExecuteInProcessResult]) -> bool:
    """Every ingest run succeeded and no blocking check failed; warnings are reported, not fatal."""
    failed_checks = [
        e
        for r in results
        for e in r.get_asset_check_evaluations()
        if not e.passed and e.severity != dg.AssetCheckSeverity.WARN
    ]
    return bool(results) and all(r.success for r in results) and not failed_checks


def sessionize(con, gap_minutes: int = 30) -> None:
    """gold.fact_user_sessions for every day of silver, as the build_sessions runs would leave it."""
    import datetime as dt

    from ecom_assets.lakehouse import event_days

    first, last = con.execute("SELECT min(event_time)::DATE, max(event_time)::DATE FROM silver.events").fetchone()
    start, end = dt.datetime.combine(first, dt.time()), dt.datetime.combine(last + dt.timedelta(days=1), dt.time())
    event_days.stage_sessions(con, start, end, gap_minutes)
    event_days.publish_sessions(con, start, end, dt.datetime.now())
