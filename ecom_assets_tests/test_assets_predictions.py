"""assets/predictions.py on the built graph: out-of-sample batch scores naming their model; the snapshot."""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pytest

from ecom_assets.assets.predictions import UNCHANGED_WHY, ecommerce_predictions, predicted_purchase
from ecom_assets.lakehouse.lake import LAKE
from ecom_assets.ml.feature_specs import CART_MODEL_NAME, PURCHASE_MODEL_NAME
from ecom_assets.ml.tracking import load_production_model, tracking_uri
from ecom_assets.resources import build_ml_resources, build_resources
from ecom_assets_tests.conftest import query

SEED_COLUMNS = {"visitorid", "itemid", "interaction_score", "funnel_depth", "engagement_score", "converted"}


def _uri(built) -> str:
    return tracking_uri(built.paths, configured="")


@pytest.mark.parametrize(
    "table, features, name",
    [
        ("gold.ecommerce_predictions", "gold.user_item_features", PURCHASE_MODEL_NAME),
        ("gold.cart_abandonment_scores", "gold.cart_session_features", CART_MODEL_NAME),
    ],
)
def test_holdout_rows_are_probabilities_from_the_production_model(built, table, features, name):
    """Replaces "every feature row is scored by production": the holdout is, and says so in every row."""
    production = load_production_model(name, _uri(built))
    rows, holdout_rows, low, high, distinct, versions, version, runs, run, thresholds, wrong_labels, trained = query(
        built.paths,
        f"""
        SELECT count(*), (SELECT count(*) FROM {features} WHERE dataset = 'test'), min(predicted_prob),
               max(predicted_prob), count(DISTINCT predicted_prob), count(DISTINCT model_version),
               any_value(model_version), count(DISTINCT mlflow_run_id), any_value(mlflow_run_id),
               list(DISTINCT threshold),
               count(*) FILTER (WHERE predicted_label <> CAST(predicted_prob >= ? AS INTEGER)),
               count(*) FILTER (WHERE trained_at IS NULL)
        FROM {table} WHERE dataset = 'test' AND scored_by = 'production'""",
        [production.threshold],
    )[0]
    assert rows == holdout_rows > 0
    assert 0 < low < high < 1
    assert distinct > 20  # real probabilities, not 0/1 labels in the probability column
    assert versions == 1 and str(version) == production.version
    assert runs == 1 and run == production.run_id
    assert thresholds == [pytest.approx(production.threshold)]
    assert wrong_labels == 0 and trained == 0


@pytest.mark.parametrize(
    "table, features, forward",
    [
        ("gold.ecommerce_predictions", "gold.user_item_features", {"test": "production", "score": "refit"}),
        ("gold.cart_abandonment_scores", "gold.cart_session_features", {"test": "production"}),
    ],
)
def test_no_in_sample_row_is_published_and_every_row_names_its_model(built, table, features, forward):
    published = dict(query(built.paths, f"SELECT dataset, list(DISTINCT scored_by) FROM {table} GROUP BY dataset"))
    assert published == {split: [scorer] for split, scorer in forward.items()}
    feature_rows = dict(query(built.paths, f"SELECT dataset, count(*) FROM {features} GROUP BY dataset"))
    assert feature_rows["train"] > 0 and feature_rows["validation"] > 0  # there was in-sample data to leave out
    (missing_model,) = query(
        built.paths,
        f"""SELECT count(*) FILTER (WHERE model_version IS NULL OR mlflow_run_id IS NULL OR trained_at IS NULL
                                    OR threshold IS NULL OR scored_by IS NULL) FROM {table}""",
    )[0]
    assert missing_model == 0
    (rows,) = query(built.paths, f"SELECT count(*) FROM {table}")[0]
    assert rows == sum(feature_rows.get(split, 0) for split in forward)


def test_actual_label_is_null_only_for_the_forward_looking_cutoff(built):
    rows = dict(
        query(
            built.paths,
            """
        SELECT dataset, count(*) FILTER (WHERE actual_label IS NULL) = count(*)
        FROM gold.ecommerce_predictions GROUP BY dataset""",
        )
    )
    assert rows == {"test": False, "score": True}
    (latest,) = query(
        built.paths, "SELECT max(cutoff) = max(cutoff) FILTER (WHERE dataset = 'score') FROM gold.ecommerce_predictions"
    )[0]
    assert latest


def test_prediction_metadata_names_the_model_the_refit_and_what_was_left_out(built):
    event = built.instance.get_latest_materialization_event(dg.AssetKey(["gold", "ecommerce_predictions"]))
    metadata = {key: value.value for key, value in event.asset_materialization.metadata.items()}
    production = load_production_model(PURCHASE_MODEL_NAME, _uri(built))
    assert str(metadata["model_version"]) == production.version
    assert metadata["refit_run"].endswith(f"/runs/{metadata['refit_run_id']}")
    assert metadata["refit_rows"] > 0 and metadata["refit_positives"] > 0
    (in_sample,) = query(
        built.paths, "SELECT count(*) FROM gold.user_item_features WHERE dataset IN ('train', 'validation')"
    )[0]
    assert metadata["rows_not_published"] == in_sample > 0
    assert "in-sample" in metadata["rows_not_published_why"]
    assert "refit" in metadata["rows_published"] and "production" in metadata["rows_published"]
    cart = built.instance.get_latest_materialization_event(dg.AssetKey(["gold", "cart_abandonment_scores"]))
    assert "refit_run_id" not in cart.asset_materialization.metadata  # no forward carts: no refit


def test_predicted_purchase_is_published_as_parquet(built):
    path = built.paths.published / "predicted_purchase.parquet"
    published = pd.read_parquet(path)
    assert SEED_COLUMNS <= set(published.columns)
    assert len(published) == query(built.paths, "SELECT count(*) FROM ecommerce.predicted_purchase")[0][0]
    assert set(published["dataset"]) == {"test", "score"}
    assert dict(published.groupby("dataset")["scored_by"].unique().map(list)) == {
        "test": ["production"],
        "score": ["refit"],
    }
    assert published[["model_version", "mlflow_run_id", "trained_at", "threshold"]].notna().all().all()
    assert published["predicted_prob"].between(0, 1).all()
    assert not list(built.paths.published.glob(".*tmp*"))


def _predicted_purchase(paths, instance) -> dict:
    """predicted_purchase materialized alone; its metadata."""
    result = dg.materialize([predicted_purchase], resources=build_resources(paths), instance=instance)
    (event,) = result.get_asset_materialization_events()
    return {key: value.value for key, value in event.materialization.metadata.items()}


def _table_version(paths) -> tuple:
    """The lake's entry of ecommerce.predicted_purchase: a rewrite makes a new one (new id and snapshot)."""
    return query(
        paths,
        f"""SELECT t.table_id, t.begin_snapshot FROM __ducklake_metadata_{LAKE}.ducklake_table AS t
            JOIN __ducklake_metadata_{LAKE}.ducklake_schema AS s USING (schema_id)
            WHERE s.schema_name = 'ecommerce' AND t.table_name = 'predicted_purchase'
              AND t.end_snapshot IS NULL AND s.end_snapshot IS NULL""",
    )


def _change_one_forward_row(paths, table: str, assignment: str, keys: str) -> None:
    """`UPDATE table SET assignment` on the first forward-looking row (dataset 'score') by `keys`."""
    with build_resources(paths)["duckdb"].get_connection() as con:
        (changed,) = con.execute(
            f"""UPDATE {table} SET {assignment}
                WHERE ({keys}) = (SELECT ({keys}) FROM {table} WHERE dataset = 'score' ORDER BY ALL LIMIT 1)"""
        ).fetchone()
    assert changed == 1


def test_predicted_purchase_is_kept_while_its_rows_are_unchanged(built_copy, instance):
    """A day inside the purchase week changes no prediction: the table is not rewritten nor the
    file republished. A changed prediction rewrites both; a missing file is published again."""
    path = built_copy.published / "predicted_purchase.parquet"
    version, stamp = _table_version(built_copy), path.stat().st_mtime_ns
    assert len(version) == 1

    kept = _predicted_purchase(built_copy, instance)
    assert kept["rewritten"] is False and kept["rewritten_why"] == UNCHANGED_WHY
    assert _table_version(built_copy) == version and path.stat().st_mtime_ns == stamp
    assert (
        kept["dagster/row_count"]
        == query(built_copy, "SELECT count(*) FROM gold.ecommerce_predictions WHERE dataset IN ('test', 'score')")[0][0]
        > 0
    )
    assert kept["published"] == str(path) and "score" in kept["per_cutoff"]
    assert "predicted_prob" in {column.name for column in kept["dagster/column_schema"].columns}

    _change_one_forward_row(
        built_copy, "gold.ecommerce_predictions", "predicted_prob = 1 - predicted_prob", "visitorid, itemid, cutoff"
    )
    rewritten = _predicted_purchase(built_copy, instance)
    assert rewritten["rewritten"] is True and "differ" in rewritten["rewritten_why"]
    assert _table_version(built_copy) != version and path.stat().st_mtime_ns != stamp
    published = pd.read_parquet(path)
    expected = query(built_copy, "SELECT sum(predicted_prob) FROM ecommerce.predicted_purchase")[0][0]
    assert published["predicted_prob"].sum() == pytest.approx(expected)
    # Still in the consumer order after a rewrite.
    assert published[["cutoff"]].equals(published[["cutoff"]].sort_values("cutoff", kind="stable"))

    path.unlink()
    version = _table_version(built_copy)
    republished = _predicted_purchase(built_copy, instance)
    assert republished["rewritten"] is True and "missing" in republished["rewritten_why"]
    assert len(pd.read_parquet(path)) == republished["dagster/row_count"]
    assert _predicted_purchase(built_copy, instance)["rewritten"] is False


def _latest_snapshot(paths) -> int:
    return query(paths, f"SELECT max(snapshot_id) FROM __ducklake_metadata_{LAKE}.ducklake_snapshot")[0][0]


def test_a_refresh_with_nothing_new_to_score_writes_nothing(built_copy, instance):
    """Every published row already has its current prediction: no row scored, no commit to the lake. A
    feature row rebuilt since (a new `features_built_at`) is scored again, and only it."""

    def score() -> dict:
        resources = {**build_resources(built_copy), **build_ml_resources()}
        result = dg.materialize([ecommerce_predictions], resources=resources, instance=instance)
        (event,) = result.get_asset_materialization_events()
        return {key: value.value for key, value in event.materialization.metadata.items()}

    total = query(built_copy, "SELECT count(*) FROM gold.ecommerce_predictions")[0][0]
    snapshot = _latest_snapshot(built_copy)
    unchanged = score()
    assert (unchanged["rows_scored_now"], unchanged["rows_kept"]) == (0, total)
    assert _latest_snapshot(built_copy) == snapshot

    _change_one_forward_row(
        built_copy,
        "gold.user_item_features",
        "features_built_at = features_built_at + INTERVAL 1 SECOND",
        "user_id, item_id, cutoff",
    )
    rescored = score()
    assert (rescored["rows_scored_now"], rescored["rows_kept"]) == (1, total - 1)
    assert _latest_snapshot(built_copy) > snapshot
    assert query(built_copy, "SELECT count(*) FROM gold.ecommerce_predictions")[0][0] == total
