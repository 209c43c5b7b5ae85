"""What the Dagster UI shows on the built graph: every rate pinned to an independent SQL computation,
inline model curves, MLflow links, the accounting check's per-file balance, column schemas and owners."""

from __future__ import annotations

import re

import dagster as dg
import pytest

from ecom_assets.assets.ui_metadata import mlflow_model_version_url, mlflow_run_url, rounded
from ecom_assets.ml.tracking import client, tracking_uri
from ecom_assets_tests.conftest import query

# Every rate or share an asset shows, with the SQL that recomputes it from the tables, independently
# of the asset's own query. A new rate in gold, experiment or the feature tables must be added here.
RATE_SQL = {
    ("gold", "fact_user_sessions", "cart_abandonment_rate"): """
        SELECT count(*) FILTER (WHERE carts > 0 AND purchases = 0) / count(*) FILTER (WHERE carts > 0)
        FROM gold.fact_user_sessions""",
    ("gold", "dim_users", "returning_user_share"): """
        SELECT count(*) FILTER (WHERE sessions >= 2) / count(*) FROM gold.dim_users""",
    ("gold", "dim_users", "buyer_share"): """
        SELECT count(*) FILTER (WHERE purchases >= 1) / count(*) FROM gold.dim_users""",
    ("gold", "user_item_features", "purchase_label_rate"): """
        SELECT sum(CASE WHEN converted THEN 1 ELSE 0 END) / count(converted) FROM gold.user_item_features""",
    ("gold", "cart_session_features", "abandonment_rate"): """
        SELECT sum(CASE WHEN abandoned_cart THEN 1 ELSE 0 END) / count(abandoned_cart)
        FROM gold.cart_session_features""",
    ("experiment", "assignments", "observed_treatment_share"): """
        SELECT count(*) FILTER (WHERE experiment_group = 'treatment') / count(*) FROM experiment.assignments""",
    ("experiment", "assignments", "agreement_with_legacy_parity"): """
        SELECT count(*) FILTER (WHERE experiment_group = legacy_group) / count(*) FROM experiment.assignments""",
    ("experiment", "ab_sessions_by_arm", "cart_abandonment_control"): """
        SELECT count(*) FILTER (WHERE carts > 0 AND purchases = 0) / count(*) FILTER (WHERE carts > 0)
        FROM gold.fact_user_sessions WHERE experiment_group = 'control'""",
    ("experiment", "ab_sessions_by_arm", "cart_abandonment_treatment"): """
        SELECT count(*) FILTER (WHERE carts > 0 AND purchases = 0) / count(*) FILTER (WHERE carts > 0)
        FROM gold.fact_user_sessions WHERE experiment_group = 'treatment'""",
    ("experiment", "ab_test_results", "conversion_absolute_lift"): """
        SELECT count(*) FILTER (WHERE a.experiment_group = 'treatment' AND u.purchases > 0)
                   / count(*) FILTER (WHERE a.experiment_group = 'treatment')
             - count(*) FILTER (WHERE a.experiment_group = 'control' AND u.purchases > 0)
                   / count(*) FILTER (WHERE a.experiment_group = 'control')
        FROM experiment.assignments AS a JOIN gold.dim_users AS u USING (user_id)""",
    ("experiment", "ab_test_results", "revenue_per_user_lift"): """
        SELECT sum(u.lifetime_value) FILTER (WHERE a.experiment_group = 'treatment')
                   / count(*) FILTER (WHERE a.experiment_group = 'treatment')
             - sum(u.lifetime_value) FILTER (WHERE a.experiment_group = 'control')
                   / count(*) FILTER (WHERE a.experiment_group = 'control')
        FROM experiment.assignments AS a JOIN gold.dim_users AS u USING (user_id)""",
}
# Shown rates that are settings, not measurements.
SETTINGS = {"intended_treatment_share", "uplift_share_of_treated_carts"}
RATE_NAME = re.compile(r"rate|share|abandonment|agreement|lift")
RATE_LAYERS = ("gold", "experiment")


def _metadata(built, key: dg.AssetKey) -> dict:
    (record,) = built.instance.fetch_materializations(key, limit=1).records
    return record.asset_materialization.metadata


def _shown_rates(built) -> dict[tuple[str, ...], float]:
    shown = {}
    for key in built.instance.get_asset_keys():
        if key.path[0] not in RATE_LAYERS:
            continue
        for name, value in _metadata(built, key).items():
            if isinstance(value, dg.FloatMetadataValue) and RATE_NAME.search(name) and name not in SETTINGS:
                shown[(*key.path, name)] = value.value
    return shown


def test_every_rate_in_metadata_matches_an_independent_computation(built):
    shown = _shown_rates(built)
    assert set(shown) == set(RATE_SQL), "a rate is shown without a pin here (or a pinned rate is gone)"
    for where, sql in RATE_SQL.items():
        ((expected,),) = query(built.paths, sql)
        assert shown[where] == pytest.approx(float(expected), rel=1e-3, abs=1e-4), where
    # The demo's abandonment is a real share, not the 1 that averaging only the abandoned carts gave.
    assert 0.2 < shown[("gold", "fact_user_sessions", "cart_abandonment_rate")] < 0.9


def test_figures_are_rounded_to_four_significant_digits(built):
    figures = _metadata(built, dg.AssetKey(["experiment", "ab_test_results"]))
    for name in ("srm_p_value", "conversion_p_value", "revenue_p_value", "conversion_absolute_lift"):
        value = figures[name].value
        assert value == rounded(value), (name, value)
    drift = _metadata(built, dg.AssetKey(["monitoring", "cart_abandonment_drift_report"]))
    assert drift["drift_share"].value == rounded(drift["drift_share"].value)


@pytest.mark.parametrize("key", [["ml", "purchase_model"], ["ml", "cart_abandonment_model"]])
def test_model_asset_shows_its_curves_inline_and_links_mlflow(built, key):
    meta = _metadata(built, dg.AssetKey(key))
    assert isinstance(meta["curves"], dg.MarkdownMetadataValue)
    assert "](data:image/png;base64,iVBOR" in meta["curves"].value  # a PNG, embedded
    run_id = meta["mlflow_run_id"].value
    experiment_id = client(tracking_uri(built.paths, configured="")).get_run(run_id).info.experiment_id
    assert meta["mlflow_run"].value == f"http://127.0.0.1:5000/#/experiments/{experiment_id}/runs/{run_id}"
    name, version = meta["registered_model"].value, meta["version"].value
    assert meta["mlflow_model_version"].value == f"http://127.0.0.1:5000/#/models/{name}/versions/{version}"


def test_mlflow_urls_follow_the_configured_ui():
    assert (
        mlflow_run_url("https://mlflow.example.com/", "3", "abc")
        == "https://mlflow.example.com/#/experiments/3/runs/abc"
    )
    assert (
        mlflow_model_version_url("http://127.0.0.1:5000", "cart abandonment", 2)
        == "http://127.0.0.1:5000/#/models/cart%20abandonment/versions/2"
    )


def test_insight_charts_are_inline(built):
    charts = [
        meta["chart"].value
        for key in built.instance.get_asset_keys()
        if key.path[0] == "insights" and "chart" in (meta := _metadata(built, key))
    ]
    assert charts and all("data:image/png;base64," in chart for chart in charts)


def test_drift_report_is_a_link_the_ui_opens(built):
    meta = _metadata(built, dg.AssetKey(["monitoring", "purchase_drift_report"]))
    assert meta["report_link"].value == "file://" + meta["report"].value
    assert "purchase" in meta["report_title"].value and meta["batch"].value in meta["report_title"].value


def test_accounting_check_shows_the_per_file_balance_it_verified(built):
    check = dg.AssetCheckKey(dg.AssetKey(["silver", "events"]), "accounting_balances")
    record = built.instance.event_log_storage.get_latest_asset_check_execution_by_key([check])[check]
    evaluation = record.event.dagster_event.event_specific_data
    assert evaluation.passed
    verified = evaluation.metadata["verified"].value
    assert "| file" in verified and "bronze_lines" in verified and "quarantined" in verified
    # An ingest run checks its own file: the evidence is that file's balance.
    source_file = evaluation.metadata["scope"].value
    assert source_file in verified and source_file in {r[0] for r in query(built.paths, "FROM bronze.landing_files")}
    ((lines,),) = query(built.paths, "SELECT count(*) FROM bronze.events WHERE source_file = ?", [source_file])
    shown = sum(int(row.split("|")[2]) for row in verified.splitlines()[2:])
    assert shown == lines


def test_tables_carry_their_column_schema_and_owner(built):
    for key, table in [
        (["gold", "fact_user_sessions"], "gold.fact_user_sessions"),
        (["gold", "cart_session_features"], "gold.cart_session_features"),
        (["experiment", "ab_test_results"], "experiment.ab_test_results"),
    ]:
        schema = _metadata(built, dg.AssetKey(key))["dagster/column_schema"].value
        described = [row[0] for row in query(built.paths, f"DESCRIBE {table}")]
        assert [c.name for c in schema.columns] == described, key
    from ecom_assets.definitions import build_definitions

    graph = build_definitions(built.paths).resolve_asset_graph()
    owners = lambda *path: graph.get(dg.AssetKey(list(path))).owners  # noqa: E731
    assert owners("silver", "events") == ["team:data-platform"]
    assert owners("ml", "cart_abandonment_model") == ["team:ml"]
    assert owners("experiment", "ab_test_results") == ["team:growth"]


def test_silver_shows_the_partition_and_the_table_row_counts(built):
    meta = _metadata(built, dg.AssetKey(["silver", "events"]))
    ((total,),) = query(built.paths, "SELECT count(*) FROM silver.events")
    assert meta["table_rows_total"].value == total
    assert meta["partition_rows"].value == meta["dagster/row_count"].value <= total
    assert "skipped_because" not in meta  # only when a file was skipped
    assert "dagster/column_schema" in meta
