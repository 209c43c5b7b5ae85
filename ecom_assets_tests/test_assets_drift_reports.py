"""assets/drift_reports.py on the built graph: both reports written, readable and logged to the
production model's MLflow run."""

from __future__ import annotations

from mlflow.tracking import MlflowClient

from ecom_assets.assets.drift_reports import CART_ABANDONMENT_DRIFT_REPORT, PURCHASE_DRIFT_REPORT
from ecom_assets.ml.feature_specs import CART_MODEL_NAME, PURCHASE_MODEL_NAME
from ecom_assets.ml.tracking import tracking_uri
from ecom_assets.monitoring.drift import latest_reports


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
    registry = MlflowClient(tracking_uri(built.paths, configured=""))
    for name in (PURCHASE_MODEL_NAME, CART_MODEL_NAME):
        run_id = registry.get_model_version_by_alias(name, "production").run_id
        logged = [a.path for a in registry.list_artifacts(run_id, "drift_reports")]
        assert any(path.endswith(".html") for path in logged), name
