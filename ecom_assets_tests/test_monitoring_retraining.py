"""The retraining rules on their own: once per drifted report, once per stale version."""

import datetime as dt

from ecom_assets.monitoring.retraining import DriftReportRecord, decide_on_age, decide_on_drift

NOW = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)


def _report(share: float, storage_id: int = 10) -> DriftReportRecord:
    return DriftReportRecord("purchase", "2019-11-24", share, "total_carts, price", storage_id)


def test_drift_at_or_over_the_threshold_retrains_once_per_report():
    decision = decide_on_drift(_report(0.5), "purchase", threshold=0.5)
    assert decision.retrain and decision.run_key == "drift:purchase:10"
    assert "total_carts" in decision.reason
    assert decide_on_drift(_report(0.5), "purchase", 0.5).run_key == decision.run_key  # same report, same key
    assert decide_on_drift(_report(0.6, storage_id=11), "purchase", 0.5).run_key != decision.run_key


def test_drift_below_the_threshold_or_no_report_does_not_retrain():
    assert not decide_on_drift(_report(0.49), "purchase", 0.5).retrain
    missing = decide_on_drift(None, "purchase", 0.5)
    assert not missing.retrain and "no drift report" in missing.reason


def test_a_model_older_than_the_limit_is_retrained_once_per_version():
    old = decide_on_age("purchase", "3", NOW - dt.timedelta(days=31), NOW, max_age_days=30)
    assert old.retrain and old.run_key == "age:purchase:3"
    assert not decide_on_age("purchase", "3", NOW - dt.timedelta(days=29), NOW, 30).retrain
    assert not decide_on_age("purchase", None, None, NOW, 30).retrain
