"""The daily refresh of the graph and the weekly retraining; times and timezone come from the environment."""

import dagster as dg

from ecom_assets.ecom_home import env_str
from ecom_assets.jobs import maintain_lake, refresh_warehouse_job, retrain_models_job

DAILY_CRON, TIMEZONE = "48 16 * * *", "UTC"  # ECOM_DAILY_CRON, ECOM_TIMEZONE
MAINTENANCE_CRON = "15 3 * * *"  # ECOM_MAINTENANCE_CRON: at night
RETRAIN_CRON = "30 17 * * 0"  # ECOM_RETRAIN_CRON: Sundays, after that day's refresh


def build_daily_refresh_schedule() -> dg.ScheduleDefinition:
    """Called when the definitions are built: a schedule's cron cannot be a `dg.EnvVar`."""
    cron, timezone = env_str("ECOM_DAILY_CRON", DAILY_CRON), env_str("ECOM_TIMEZONE", TIMEZONE)
    return dg.ScheduleDefinition(
        name="daily_refresh",
        job=refresh_warehouse_job,
        cron_schedule=cron,
        execution_timezone=timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Rebuilds gold and everything after it every day (`{cron}`, {timezone}): scores with the "
        "production models and reports drift; no retraining (weekly_retrain does that).",
    )


def build_weekly_retrain_schedule() -> dg.ScheduleDefinition:
    """Like the daily refresh: the cron is read when the definitions are built."""
    cron, timezone = env_str("ECOM_RETRAIN_CRON", RETRAIN_CRON), env_str("ECOM_TIMEZONE", TIMEZONE)
    return dg.ScheduleDefinition(
        name="weekly_retrain",
        job=retrain_models_job,
        cron_schedule=cron,
        execution_timezone=timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Retrains both models on the current features (`{cron}`, {timezone}), promotes a challenger "
        "that beats production, rescores and republishes; the next daily refresh reports drift against it.",
    )


def build_lake_maintenance_schedule() -> dg.ScheduleDefinition:
    cron, timezone = env_str("ECOM_MAINTENANCE_CRON", MAINTENANCE_CRON), env_str("ECOM_TIMEZONE", TIMEZONE)
    return dg.ScheduleDefinition(
        name="nightly_lake_maintenance",
        job=maintain_lake,
        cron_schedule=cron,
        execution_timezone=timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Expires lake snapshots older than a day and deletes their files (`{cron}`, {timezone}).",
    )
