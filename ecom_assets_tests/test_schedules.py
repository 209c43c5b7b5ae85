"""schedules: the daily refresh runs the refresh job on its own, at a time set from the environment."""

from __future__ import annotations

import dagster as dg

from ecom_assets.definitions import build_definitions


def test_daily_schedule_targets_the_refresh_and_runs_without_a_click(paths):
    schedule = build_definitions(paths).resolve_schedule_def("daily_refresh")
    assert schedule.job_name == "refresh_warehouse"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING


def test_daily_schedule_time_is_configurable(paths, monkeypatch):
    monkeypatch.setenv("ECOM_DAILY_CRON", "5 3 * * *")
    monkeypatch.setenv("ECOM_TIMEZONE", "Europe/Warsaw")
    schedule = build_definitions(paths).resolve_schedule_def("daily_refresh")
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("5 3 * * *", "Europe/Warsaw")
