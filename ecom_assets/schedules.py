"""The daily refresh of the graph; time and timezone come from the environment."""

import dagster as dg

from ecom_assets.jobs import refresh_warehouse_job
from ecom_assets.ecom_home import env_str

daily_refresh_schedule = dg.ScheduleDefinition(
    name="daily_refresh",
    job=refresh_warehouse_job,
    cron_schedule=env_str("ECOM_DAILY_CRON", "48 16 * * *"),
    execution_timezone=env_str("ECOM_TIMEZONE", "UTC"),
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Rebuilds gold and everything after it every day (default 16:48 UTC).",
)
