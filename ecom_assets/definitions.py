"""The code location: every asset, check, job, schedule and sensor, with resources from the environment.

`build_definitions` is where the environment meets the definitions: the resources take their
settings as `dg.EnvVar`s (read when a run starts), while the schedules' crons and silver's
freshness windows, which cannot be EnvVars, are read here. Nothing reads it at import: Dagster
calls `load_definitions` when the code location loads.
"""

import dagster as dg

from ecom_assets.assets import (
    ab_experiment,
    bronze,
    drift_reports,
    gold,
    insight_tables,
    model_inputs,
    models,
    predictions,
    silver,
)
from ecom_assets.checks import drift_checks, experiment_checks, lakehouse_checks, model_checks
from ecom_assets.ecom_home import EcomPaths
from ecom_assets.executors import step_executor
from ecom_assets.jobs import (
    build_sessions_job,
    ingest_landing_file_job,
    maintain_lake,
    refresh_and_retrain_job,
    refresh_warehouse_job,
    retrain_cart_abandonment_model_job,
    retrain_models_job,
    retrain_purchase_model_job,
)
from ecom_assets.resources import build_ml_resources, build_resources
from ecom_assets.schedules import build_schedules
from ecom_assets.sensors import landing_sensor, retrain_on_drift_sensor, sessions_sensor

ASSET_MODULES = [bronze, silver, gold, ab_experiment, model_inputs, models, predictions, insight_tables, drift_reports]
CHECK_MODULES = [lakehouse_checks, experiment_checks, model_checks, drift_checks]


def build_definitions(paths: EcomPaths | None = None) -> dg.Definitions:
    return dg.Definitions(
        assets=silver.with_landing_freshness(dg.load_assets_from_modules(ASSET_MODULES)),
        asset_checks=dg.load_asset_checks_from_modules(CHECK_MODULES),
        jobs=[
            build_sessions_job,
            ingest_landing_file_job,
            maintain_lake,
            refresh_warehouse_job,
            refresh_and_retrain_job,
            retrain_models_job,
            retrain_purchase_model_job,
            retrain_cart_abandonment_model_job,
        ],
        schedules=build_schedules(),
        sensors=[landing_sensor, sessions_sensor, retrain_on_drift_sensor],
        resources={**build_resources(paths), **build_ml_resources()},
        executor=step_executor(),
    )


@dg.definitions
def load_definitions() -> dg.Definitions:
    """What `dagster dev` loads (workspace.yaml, pyproject.toml), from ECOM_HOME and the environment."""
    return build_definitions()
