"""jobs: what each job runs. Ingestion is bronze and silver alone, the refresh is everything after
them but the trainings, and a retraining rescores but leaves the drift reports to the daily refresh."""

from __future__ import annotations

from ecom_assets.assets.ab_experiment import AB_SESSIONS_BY_ARM, AB_TEST_RESULTS, ASSIGNMENTS, SIMULATED_PURCHASES
from ecom_assets.assets.drift_reports import CART_ABANDONMENT_DRIFT_REPORT, PURCHASE_DRIFT_REPORT
from ecom_assets.assets.models import CART_ABANDONMENT_MODEL, PURCHASE_MODEL
from ecom_assets.assets.predictions import CART_ABANDONMENT_SCORES, ECOMMERCE_PREDICTIONS, PREDICTED_PURCHASE
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


def test_the_daily_refresh_scores_and_reports_drift_but_trains_nothing(paths):
    defs = build_definitions(paths)
    refresh = set(defs.resolve_job_def("refresh_warehouse").asset_layer.executable_asset_keys)
    scoring = {ECOMMERCE_PREDICTIONS, CART_ABANDONMENT_SCORES, PREDICTED_PURCHASE}
    reports = {PURCHASE_DRIFT_REPORT, CART_ABANDONMENT_DRIFT_REPORT}
    assert scoring | reports <= refresh
    assert {key for key in refresh if key.path[0] == "ml"} == set()
    # The trainings, and nothing else, are what the first build of a home adds to the refresh.
    full = set(defs.resolve_job_def("refresh_and_retrain").asset_layer.executable_asset_keys)
    assert full - refresh == {PURCHASE_MODEL, CART_ABANDONMENT_MODEL}
