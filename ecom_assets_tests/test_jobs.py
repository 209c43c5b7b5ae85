"""jobs: what each job runs. Ingestion is bronze and silver alone, the refresh is everything after
them, and a retraining rescores but leaves the drift reports to the daily refresh."""

from __future__ import annotations

from ecom_assets.assets.ab_experiment import AB_SESSIONS_BY_ARM, AB_TEST_RESULTS, ASSIGNMENTS, SIMULATED_PURCHASES
from ecom_assets.definitions import build_definitions


def _layers(job) -> set[str]:
    return {key.path[0] for key in job.asset_layer.executable_asset_keys}


def test_ingest_job_lands_bronze_and_silver_only(paths):
    assert _layers(build_definitions(paths).resolve_job_def("ingest_landing_file")) == {"bronze", "silver"}


def test_experiment_assets_are_in_the_refresh_job(paths):
    job = build_definitions(paths).resolve_job_def("refresh_warehouse")
    keys = set(job.asset_layer.executable_asset_keys)
    assert {ASSIGNMENTS, SIMULATED_PURCHASES, AB_TEST_RESULTS, AB_SESSIONS_BY_ARM} <= keys
    assert {"bronze", "silver"}.isdisjoint(_layers(job))  # ingestion is the ingest job's


def test_retraining_jobs_rescore_but_leave_the_drift_reports_to_the_daily_refresh(paths):
    defs = build_definitions(paths)
    for name in ("retrain_models", "retrain_purchase_model", "retrain_cart_abandonment_model"):
        layers = _layers(defs.resolve_job_def(name))
        assert {"ml", "gold"} <= layers and "monitoring" not in layers, name
