"""The schedules: the daily refresh, the weekly retraining and the nightly lake maintenance.

Their times and timezone come from the environment when the definitions are built (`build_schedules`):
a schedule's cron cannot be a `dg.EnvVar`.
"""

import dagster as dg

from ecom_assets.ecom_home import env_str
from ecom_assets.jobs import maintain_lake, refresh_warehouse_job, retrain_models_job

DAILY_CRON, TIMEZONE = "48 16 * * *", "UTC"  # ECOM_DAILY_CRON, ECOM_TIMEZONE
MAINTENANCE_CRON = "15 3 * * *"  # ECOM_MAINTENANCE_CRON: at night
RETRAIN_CRON = "30 17 * * 0"  # ECOM_RETRAIN_CRON: Sundays, after that day's refresh


def _schedule(name: str, job, cron_variable: str, default_cron: str, what: str) -> dg.ScheduleDefinition:
    cron, timezone = env_str(cron_variable, default_cron), env_str("ECOM_TIMEZONE", TIMEZONE)
    return dg.ScheduleDefinition(
        name=name,
        job=job,
        cron_schedule=cron,
        execution_timezone=timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=what.format(when=f"`{cron}`, {timezone}"),
    )


def build_schedules() -> list[dg.ScheduleDefinition]:
    return [
        _schedule(
            "daily_refresh",
            refresh_warehouse_job,
            "ECOM_DAILY_CRON",
            DAILY_CRON,
            "Rebuilds gold and everything after it every day ({when}): scores with the production models and "
            "reports drift; no retraining (weekly_retrain does that).",
        ),
        _schedule(
            "weekly_retrain",
            retrain_models_job,
            "ECOM_RETRAIN_CRON",
            RETRAIN_CRON,
            "Retrains both models on the current features ({when}), promotes a challenger that beats "
            "production, rescores and republishes; the next daily refresh reports drift against it.",
        ),
        _schedule(
            "nightly_lake_maintenance",
            maintain_lake,
            "ECOM_MAINTENANCE_CRON",
            MAINTENANCE_CRON,
            "Expires lake snapshots older than a day and deletes their files ({when}).",
        ),
    ]
