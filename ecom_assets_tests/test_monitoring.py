"""Drift reports in the graph and the retraining sensor, on the shared built dataset and a real instance."""

from __future__ import annotations

import dagster as dg
from mlflow.tracking import MlflowClient

from ecom_assets.assets.drift_reports import CART_ABANDONMENT_DRIFT_REPORT, PURCHASE_DRIFT_REPORT
from ecom_assets.definitions import build_definitions
from ecom_assets.ml.feature_specs import CART_MODEL_NAME, PURCHASE_MODEL_NAME
from ecom_assets.monitoring.drift import latest_reports
from ecom_assets.resources import EcomSettings, MLSettings
from ecom_assets.sensors import retrain_on_drift_sensor


def _metadata(built, key):
    return built.instance.get_latest_materialization_event(key).asset_materialization.metadata


def test_both_drift_reports_are_written_and_open(built):
    for key, model in ((PURCHASE_DRIFT_REPORT, "purchase"), (CART_ABANDONMENT_DRIFT_REPORT, "cart_abandonment")):
        meta = _metadata(built, key)
        report = meta["report"].value
        assert report.startswith(str(built.paths.reports / f"{model}_drift_"))
        assert "<html" in open(report).read(5000).lower()
        assert 0.0 <= meta["drift_share"].value <= 1.0
        assert "| column | test | score |" in meta["columns"].value
    assert set(latest_reports(built.paths.reports)) == {"purchase", "cart_abandonment"}


def test_drift_report_is_logged_to_the_production_models_run(built):
    registry = MlflowClient(f"sqlite:///{built.paths.mlflow_db}")
    for name in (PURCHASE_MODEL_NAME, CART_MODEL_NAME):
        run_id = registry.get_model_version_by_alias(name, "production").run_id
        logged = [a.path for a in registry.list_artifacts(run_id, "drift_reports")]
        assert any(path.endswith(".html") for path in logged), name


def _ml_settings(built) -> MLSettings:
    return MLSettings(tracking_uri=f"sqlite:///{built.paths.mlflow_db}")


def _evaluate(built, threshold: float, cursor: str | None = None) -> dg.SensorResult:
    # Fresh instances, not model_copy: Dagster rebuilds a resource from its constructor config.
    settings = EcomSettings(home=str(built.paths.home), drift_threshold=threshold)
    context = dg.build_sensor_context(instance=built.instance, cursor=cursor,
                                      resources={"settings": settings, "ml_settings": _ml_settings(built)})
    return retrain_on_drift_sensor(context)


def _most_drifted_report(built) -> tuple[str, float]:
    shares = {key: _metadata(built, key)["drift_share"].value
              for key in (PURCHASE_DRIFT_REPORT, CART_ABANDONMENT_DRIFT_REPORT)}
    key = max(shares, key=shares.get)
    return key.path[-1], shares[key]


def test_sensor_requests_nothing_for_reports_under_the_threshold(built):
    result = _evaluate(built, threshold=1.01)  # no report can reach 101%
    assert result.run_requests == []


def test_sensor_requests_one_retraining_per_drifted_report_and_never_twice(built):
    report, share = _most_drifted_report(built)
    assert share > 0, "the built dataset should drift a little between training and scoring windows"
    first = _evaluate(built, threshold=share)
    assert len(first.run_requests) == 1
    (request,) = first.run_requests
    expected_job = "retrain_purchase_model" if report.startswith("purchase") else "retrain_cart_abandonment_model"
    assert request.job_name == expected_job
    assert request.run_key.startswith("drift:")
    again = _evaluate(built, threshold=share, cursor=first.cursor)
    assert again.run_requests == []  # the same report does not retrain twice


def test_the_requested_retraining_registers_a_new_version(built):
    report, share = _most_drifted_report(built)
    (request,) = _evaluate(built, threshold=share).run_requests
    model = PURCHASE_MODEL_NAME if report.startswith("purchase") else CART_MODEL_NAME
    registry = MlflowClient(f"sqlite:///{built.paths.mlflow_db}")
    before = {v.version for v in registry.search_model_versions(f"name = '{model}'")}
    job = build_definitions(built.paths).resolve_job_def(request.job_name)
    result = job.execute_in_process(instance=built.instance, tags={"dagster/run_key": request.run_key},
                                    resources={"ml_settings": _ml_settings(built)})
    assert result.success
    after = {v.version for v in registry.search_model_versions(f"name = '{model}'")}
    assert len(after - before) == 1
    layers = {event.asset_key.path[0] for event in result.get_asset_materialization_events()}
    assert {"ml", "gold"} <= layers and "monitoring" not in layers  # rescored; reports wait for the daily run
