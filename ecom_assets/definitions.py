"""The code location: every asset, check, job, schedule and sensor, with resources from the environment."""

import dagster as dg

from ecom_assets.assets import bronze, gold, silver
from ecom_assets.checks import data_quality_checks
from ecom_assets.jobs import ingest_landing_file_job, refresh_warehouse_job
from ecom_assets.resources import build_resources
from ecom_assets.schedules import daily_refresh_schedule
from ecom_assets.sensors import landing_sensor
from ecom_assets.settings import EcomPaths


def build_definitions(paths: EcomPaths | None = None) -> dg.Definitions:
    return dg.Definitions(
        assets=dg.load_assets_from_modules([bronze, silver, gold]),
        asset_checks=data_quality_checks,
        jobs=[ingest_landing_file_job, refresh_warehouse_job],
        schedules=[daily_refresh_schedule],
        sensors=[landing_sensor],
        resources=build_resources(paths),
    )


defs = build_definitions()
