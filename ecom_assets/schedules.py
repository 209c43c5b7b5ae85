"""The daily refresh of the graph; time and timezone come from the environment."""

import dagster as dg

from ecom_assets.ecom_home import env_str
from ecom_assets.jobs import refresh_warehouse_job

DAILY_CRON, TIMEZONE = "48 16 * * *", "UTC"  # ECOM_DAILY_CRON, ECOM_TIMEZONE


def build_daily_refresh_schedule() -> dg.ScheduleDefinition:
    """Called when the definitions are built: a schedule's cron cannot be a `dg.EnvVar`."""
    cron, timezone = env_str("ECOM_DAILY_CRON", DAILY_CRON), env_str("ECOM_TIMEZONE", TIMEZONE)
    return dg.ScheduleDefinition(
        name="daily_refresh",
        job=refresh_warehouse_job,
        cron_schedule=cron,
        execution_timezone=timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Rebuilds gold and everything after it every day (`{cron}`, {timezone}).",
    )
