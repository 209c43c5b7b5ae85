"""The code location: every asset, check, job, schedule and sensor, with resources from the environment."""

import dagster as dg

from ecom_assets.assets import bronze, experiment, gold, silver
from ecom_assets.assets import features, insights, ml, monitoring, predictions
from ecom_assets.assets.experiment import experiment_checks
from ecom_assets.assets.monitoring import drift_checks
from ecom_assets.checks import data_quality_checks
from ecom_assets.jobs import (
    ingest_landing_file_job,
    refresh_warehouse_job,
    retrain_cart_abandonment_model_job,
    retrain_models_job,
    retrain_purchase_model_job,
)
from ecom_assets.ml_checks import ml_checks
from ecom_assets.resources import build_ml_resources, build_resources
from ecom_assets.schedules import daily_refresh_schedule
from ecom_assets.sensors import landing_sensor, retrain_on_drift_sensor
from ecom_assets.settings import EcomPaths


def build_definitions(paths: EcomPaths | None = None) -> dg.Definitions:
    return dg.Definitions(
        assets=dg.load_assets_from_modules(
            [bronze, silver, gold, experiment, features, ml, predictions, insights, monitoring]),
        asset_checks=[*data_quality_checks, *experiment_checks, *ml_checks, *drift_checks],
        jobs=[ingest_landing_file_job, refresh_warehouse_job, retrain_models_job,
              retrain_purchase_model_job, retrain_cart_abandonment_model_job],
        schedules=[daily_refresh_schedule],
        sensors=[landing_sensor, retrain_on_drift_sensor],
        resources={**build_resources(paths), **build_ml_resources()},
    )


defs = build_definitions()
