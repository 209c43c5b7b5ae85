"""resources: each setting stated once, read from its environment variable when it is needed (a run,
the definitions being built, the service starting), and one rule for where MLflow lives."""

from __future__ import annotations

import os
import subprocess
import sys

import dagster as dg
import pytest

from ecom_assets.assets.silver import SILVER_EVENTS
from ecom_assets.definitions import build_definitions
from ecom_assets.experiment.assignment import assign_group
from ecom_assets.lakehouse import lake
from ecom_assets.ml import tracking
from ecom_assets.ml.feature_specs import FeatureWindows
from ecom_assets.ml.tracking import tracking_uri
from ecom_assets.ml.training import TrainingConfig
from ecom_assets.resources import EcomSettings, MLSettings, build_ml_resources, build_resources, open_warehouse
from ecom_assets.serving import api
from ecom_assets.serving.api import ServingSettings


def _as_in_a_run(resources: dict) -> dict:
    """The resources as an asset receives them: Dagster reads their EnvVars when the run starts."""
    seen = {}

    @dg.asset
    def probe(settings: EcomSettings, ml_settings: MLSettings) -> None:
        seen.update(settings=settings, ml_settings=ml_settings)

    dg.materialize([probe], resources=resources)
    return seen


def _all_resources(paths) -> dict:
    return {**build_resources(paths), **build_ml_resources()}


def test_unset_variables_keep_the_defaults_stated_once(paths, monkeypatch):
    for resource in (EcomSettings, MLSettings):
        for field in resource.model_fields.values():
            monkeypatch.delenv((field.json_schema_extra or {}).get("env", "UNUSED"), raising=False)
    seen = _as_in_a_run(_all_resources(paths))
    assert seen["ml_settings"].training == TrainingConfig()
    assert seen["ml_settings"].windows == FeatureWindows()
    assert seen["settings"].model_dump() == EcomSettings(home=str(paths.home)).model_dump()
    assert seen["ml_settings"].uri(paths) == f"sqlite:///{paths.mlflow_db}"


def test_a_resource_reads_its_env_var_when_the_run_starts(paths, monkeypatch):
    monkeypatch.setenv("ECOM_SESSION_GAP_MINUTES", "45")
    monkeypatch.setenv("ECOM_ML_HORIZON_DAYS", "3")
    monkeypatch.setenv("ECOM_EXPERIMENT_KEY", "pricing_test")
    resources = _all_resources(paths)
    monkeypatch.setenv("ECOM_SESSION_GAP_MINUTES", "50")  # changed after the definitions were built
    monkeypatch.setenv("ECOM_ML_HORIZON_DAYS", "5")
    seen = _as_in_a_run(resources)
    assert seen["settings"].session_gap_minutes == 50
    assert seen["settings"].experiment_key == "pricing_test"
    assert seen["ml_settings"].windows == FeatureWindows(horizon_days=5)


def test_a_bad_whole_number_fails_the_run_naming_the_variable(paths, monkeypatch):
    monkeypatch.setenv("ECOM_ML_GB_MAX_ITER", "lots")
    with pytest.raises(dg.DagsterInvalidConfigError, match="ECOM_ML_GB_MAX_ITER"):
        _as_in_a_run(_all_resources(paths))


@pytest.mark.parametrize(
    "variable, build",
    [
        ("ECOM_TREATMENT_SHARE", lambda paths: build_resources(paths)),
        ("ECOM_MAX_MODEL_AGE_DAYS", lambda paths: build_resources(paths)),
        ("ECOM_DUCKDB_THREADS", lambda paths: build_resources(paths)),
        ("ECOM_FRESHNESS_FAIL_HOURS", lambda paths: build_definitions(paths)),
        ("ECOM_API_MAX_UPLOAD_MB", lambda paths: ServingSettings.from_env()),
    ],
)
def test_a_bad_decimal_names_the_variable(paths, monkeypatch, variable, build):
    monkeypatch.setenv(variable, "half")
    with pytest.raises(ValueError, match=f"{variable}='half' is not a number"):
        build(paths)


def test_schedule_and_freshness_are_read_when_the_definitions_are_built(paths, monkeypatch):
    # ecom_assets.definitions was imported (by this module) before these were set.
    monkeypatch.setenv("ECOM_DAILY_CRON", "5 3 * * *")
    monkeypatch.setenv("ECOM_TIMEZONE", "Europe/Warsaw")
    monkeypatch.setenv("ECOM_FRESHNESS_WARN_HOURS", "12")
    defs = build_definitions(paths)
    schedule = defs.resolve_schedule_def("daily_refresh")
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("5 3 * * *", "Europe/Warsaw")
    policy = defs.resolve_assets_def(SILVER_EVENTS).specs_by_key[SILVER_EVENTS].freshness_policy
    assert policy.warn_window.to_timedelta().total_seconds() == 12 * 3600
    assert policy.fail_window.to_timedelta().total_seconds() == 50 * 3600  # the default


def test_importing_the_code_location_reads_no_environment(tmp_path):
    env = {
        **os.environ,
        "ECOM_TREATMENT_SHARE": "oops",
        "ECOM_FRESHNESS_WARN_HOURS": "soon",
        "ECOM_API_MAX_BULK_ROWS": "many",
    }
    imported = subprocess.run(
        [sys.executable, "-c", "import ecom_assets.definitions, ecom_assets.one_shot, ecom_assets.serving.api"],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert imported.returncode == 0, imported.stderr


def test_one_tracking_uri_rule_for_the_assets_the_api_and_the_tests(paths, tmp_path, monkeypatch):
    assert api.tracking_uri is tracking.tracking_uri  # the service calls the same function

    def everyone() -> set[str]:
        in_a_run = _as_in_a_run(_all_resources(paths))["ml_settings"].uri(paths)
        return {in_a_run, ServingSettings.from_env().tracking_uri, tracking_uri(paths)}

    elsewhere = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", elsewhere)
    assert everyone() == {elsewhere}
    for unset in ("  ", None):  # blank counts as unset: the registry in ECOM_HOME
        if unset is None:
            monkeypatch.delenv("MLFLOW_TRACKING_URI")
        else:
            monkeypatch.setenv("MLFLOW_TRACKING_URI", unset)
        assert everyone() == {f"sqlite:///{paths.mlflow_db}"}
    assert tracking_uri(paths, configured="") == f"sqlite:///{paths.mlflow_db}"


def test_the_warehouse_opened_outside_a_run_uses_the_variables(paths, monkeypatch):
    """Outside a run a resource still holds EnvVar placeholders; open_warehouse reads them."""
    monkeypatch.setenv("ECOM_EXPERIMENT_KEY", "pricing_test")
    monkeypatch.setenv("ECOM_DUCKDB_THREADS", "3")
    resources = build_resources(paths)
    assert isinstance(resources["settings"].experiment_key, dg.EnvVar)
    with open_warehouse(resources["duckdb"], resources["settings"]) as con:
        groups = [g for (g,) in con.execute("SELECT experiment_group(u) FROM range(200) t(u) ORDER BY u").fetchall()]
        threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
    assert groups == [assign_group(u, "pricing_test") for u in range(200)]
    assert groups != [assign_group(u) for u in range(200)]
    assert threads == 3


def test_the_lake_is_described_by_where_it_is_without_a_password(tmp_path):
    local = lake.local_target(tmp_path / "lake.sqlite")
    assert local.describe() == f"{tmp_path / 'lake.sqlite'} (DuckLake catalog)"
    cluster = lake.LakeTarget("postgres:dbname=lake host=pg password=s3cret user=ecom", "s3://b/lake", ())
    assert cluster.describe() == "DuckLake catalog on Postgres (dbname=lake host=pg user=ecom), data in s3://b/lake"
