"""assets/models.py: both models trained and promoted by the graph, their metadata, a clear refusal on tiny data."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from ecom_assets.ml.feature_specs import CART_MODEL_NAME, PURCHASE_MODEL_NAME, PURCHASE_TASK
from ecom_assets.ml.tracking import production_version, tracking_uri
from ecom_assets.one_shot import run_pipeline
from ecom_assets.resources import build_resources
from ecom_assets_tests.conftest import land


def _uri(built) -> str:
    return tracking_uri(built.paths, configured="")


def test_both_models_are_in_production(built):
    assert built.outcome.ok, built.outcome
    for name in (PURCHASE_MODEL_NAME, CART_MODEL_NAME):
        assert production_version(_uri(built), name) is not None, name


@pytest.mark.parametrize("key", [["ml", "purchase_model"], ["ml", "cart_abandonment_model"]])
def test_model_metadata_shows_comparison_baselines_curves_and_promotion(built, key):
    event = built.instance.get_latest_materialization_event(dg.AssetKey(key))
    metadata = event.asset_materialization.metadata
    comparison = metadata["comparison"].value
    for family in ("gradient_boosting", "logistic_regression", "random_forest", "recency_baseline"):
        assert family in comparison
    for metric in ("roc_auc", "pr_auc", "f1", "precision_at_k", "brier", "pr_auc_lift", "brier_skill", "role"):
        assert metric in comparison
    assert metadata["champion_family"].value in ("gradient_boosting", "logistic_regression", "random_forest")
    assert "` = 1: " in metadata["positive_class"].value
    base_rate = metadata["holdout_base_rate"].value
    assert metadata["holdout_no_skill_pr_auc"].value == base_rate
    assert metadata["holdout_pr_auc_lift"].value == pytest.approx(
        metadata["holdout_pr_auc"].value / base_rate, rel=1e-3
    )
    assert metadata["holdout_brier_skill"].value < 1
    assert Path(metadata["curves_path"].value).exists()
    assert "data:image/png;base64," in metadata["curves"].value
    assert "Challenger v" in metadata["promotion"].value
    assert metadata["production_version"].value
    # The gate is a check of the asset itself, decided before production moved.
    gate = built.instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(dg.AssetKey(key), "promotion_gate")]
    )[dg.AssetCheckKey(dg.AssetKey(key), "promotion_gate")]
    evaluation = gate.event.dagster_event.event_specific_data
    assert evaluation.passed and "promoted" in evaluation.description


def test_purchase_metadata_and_table_show_coverage_and_recall_over_all_purchases(built):
    event = built.instance.get_latest_materialization_event(dg.AssetKey(["ml", "purchase_model"]))
    metadata = event.asset_materialization.metadata
    coverage = metadata["candidate_coverage"].value
    assert 0 < coverage < 1 and metadata["test_purchased_pairs"].value > 0
    assert metadata["recall_over_all_purchases"].value <= coverage
    from ecom_assets.ml.tracking import client

    logged = client(tracking_uri(built.paths)).get_run(metadata["mlflow_run_id"].value).data.metrics
    assert logged["test_purchased_pairs"] == metadata["test_purchased_pairs"].value
    assert logged["test_candidate_coverage"] == pytest.approx(coverage, rel=1e-3)
    assert not [name for name in logged if name.startswith("test_test_")]
    with build_resources(built.paths)["duckdb"].get_connection() as con:
        bought, covered = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE converted = 1) FROM gold.user_item_features "
            "WHERE dataset = 'test' AND converted IS NOT NULL"
        ).fetchone()
        assert covered / metadata["test_purchased_pairs"].value == pytest.approx(coverage, rel=1e-3)
        rows = con.execute(
            "SELECT model, role, candidate_coverage, recall, recall_over_all_purchases, base_rate, positive_class "
            "FROM ml.purchase_model"
        ).fetchall()
    assert {r[1] for r in rows} == {"champion", "candidate", "reference"}
    for model, _, table_coverage, recall, over_all, base_rate, positive in rows:
        assert table_coverage == pytest.approx(coverage, rel=1e-3)
        assert over_all == pytest.approx(recall * table_coverage, abs=1e-4), model
        assert base_rate == pytest.approx(covered / bought, rel=1e-2) and "`converted` = 1" in positive


def test_training_stops_clearly_on_a_tiny_file_and_keeps_the_data_layers(paths, instance, monkeypatch):
    """No labelled rows: the blocking leakage checks fail (nothing was checked) and training never starts.

    (It used to pass on empty data and let the training assets fail; issue 13 finding 6.) The file's one
    day, a Tuesday, comes after its week's Monday: on the calendar it has no cutoff at all yet
    (test_ml_feature_cutoffs covers that home); scored at the data's end, it has forward rows and no label."""
    monkeypatch.setenv("ECOM_ML_FORWARD_CUTOFF", "data_end")
    land(paths, "rees46_quirks.csv")
    outcome = run_pipeline(paths, instance, log=lambda _: None)
    failed = "\n".join(outcome.failed_checks)
    for table in ("gold/user_item_features", "gold/cart_session_features"):
        assert f"{table} / no_single_feature_leaks_label" in failed, outcome.failed_checks
    assert "no labelled rows" in failed and "nothing to check" in failed
    ran = {
        e.dagster_event.step_key
        for r in instance.get_runs()
        for e in instance.all_logs(r.run_id)
        if e.dagster_event and e.dagster_event.event_type == dg.DagsterEventType.STEP_START
    }
    assert not {"ml__purchase_model", "ml__cart_abandonment_model"} & ran
    with build_resources(paths)["duckdb"].get_connection() as con:
        assert con.execute("SELECT count(*) FROM silver.events").fetchone()[0] > 0
        assert con.execute("SELECT count(*) FROM gold.user_item_features").fetchone()[0] > 0
        assert (
            con.execute("SELECT count(*) FROM gold.user_item_features WHERE converted IS NOT NULL").fetchone()[0] == 0
        )
    assert production_version(tracking_uri(paths), PURCHASE_TASK.registered_model) is None
