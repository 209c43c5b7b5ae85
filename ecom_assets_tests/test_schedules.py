"""schedules: the daily refresh runs the refresh job on its own and the weekly retrain the retraining, at
times set from the environment."""

from __future__ import annotations

import dagster as dg

from ecom_assets.definitions import build_definitions
from ecom_assets.schedules import RETRAIN_CRON


def test_daily_schedule_targets_the_refresh_and_runs_without_a_click(paths):
    schedule = build_definitions(paths).resolve_schedule_def("daily_refresh")
    assert schedule.job_name == "refresh_warehouse"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING


def test_daily_schedule_time_is_configurable(paths, monkeypatch):
    monkeypatch.setenv("ECOM_DAILY_CRON", "5 3 * * *")
    monkeypatch.setenv("ECOM_TIMEZONE", "Europe/Warsaw")
    schedule = build_definitions(paths).resolve_schedule_def("daily_refresh")
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("5 3 * * *", "Europe/Warsaw")


def test_weekly_retrain_targets_the_retraining_and_runs_without_a_click(paths, monkeypatch):
    monkeypatch.delenv("ECOM_RETRAIN_CRON", raising=False)
    monkeypatch.delenv("ECOM_TIMEZONE", raising=False)
    schedule = build_definitions(paths).resolve_schedule_def("weekly_retrain")
    assert schedule.job_name == "retrain_models"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert (schedule.cron_schedule, schedule.execution_timezone) == (RETRAIN_CRON, "UTC")
    assert "no retraining" in build_definitions(paths).resolve_schedule_def("daily_refresh").description


def test_weekly_retrain_time_is_configurable(paths, monkeypatch):
    monkeypatch.setenv("ECOM_RETRAIN_CRON", "0 2 * * 3")
    monkeypatch.setenv("ECOM_TIMEZONE", "Europe/Warsaw")
    schedule = build_definitions(paths).resolve_schedule_def("weekly_retrain")
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("0 2 * * 3", "Europe/Warsaw")
    assert "0 2 * * 3" in schedule.description
