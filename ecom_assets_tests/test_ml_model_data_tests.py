"""ml.model_data_tests: every data test on the model tables finds the rows planted to break it."""

from __future__ import annotations

import pytest

from ecom_assets.lakehouse.data_tests import find_violations
from ecom_assets.lakehouse.warehouse import ensure_schema
from ecom_assets.ml.model_data_tests import ML_DATA_TESTS
from ecom_assets.resources import build_resources


@pytest.mark.parametrize("test", ML_DATA_TESTS, ids=lambda t: f"{t.table}/{t.name}")
def test_each_ml_data_test_can_fail(paths, test):
    with build_resources(paths)["duckdb"].get_connection() as con:
        ensure_schema(con)
        con.execute("CREATE SCHEMA IF NOT EXISTS insights")
        _plant(con, test)
        assert find_violations(con, test).count > 0


_MODEL_COLUMNS = (
    "'production' AS scored_by, 3 AS model_version, 'run' AS mlflow_run_id, "
    "TIMESTAMP '2019-10-08' AS trained_at, 0.2 AS threshold"
)


def test_predictions_completeness_names_every_problem_and_passes_a_clean_table(paths):
    """The purchase plant breaks five rules at once: each is reported; fixed, the table passes."""
    (test,) = [t for t in ML_DATA_TESTS if t.table == "gold.ecommerce_predictions"]
    with build_resources(paths)["duckdb"].get_connection() as con:
        ensure_schema(con)
        _plant(con, test)
        found = con.execute(f"SELECT DISTINCT problem FROM ({test.offending_rows_sql})").fetchall()
        problems = {row[0] for row in found}
        assert problems == {
            "probability outside [0, 1]",
            "no model named",
            "no prediction",
            "in-sample row published",
            "duplicate prediction",
        }
        con.execute(f"""CREATE OR REPLACE TABLE gold.ecommerce_predictions AS
            SELECT cutoff, user_id AS visitorid, item_id AS itemid, dataset, 0.5 AS predicted_prob, {_MODEL_COLUMNS}
            FROM gold.user_item_features WHERE dataset IN ('test', 'score')""")
        assert find_violations(con, test).count == 0


def _plant(con, test) -> None:
    table = test.table
    if table == "gold.ecommerce_predictions":
        con.execute(
            "CREATE TABLE gold.user_item_features AS SELECT TIMESTAMP '2019-10-01' AS cutoff, range AS user_id, "
            "1 AS item_id, ['test', 'test', 'score', 'train'][range + 1] AS dataset FROM range(4)"
        )
        # user 0: p > 1; user 1: no run id, twice; user 2 (score): missing; user 3 (train): in-sample, published
        con.execute(f"""CREATE TABLE gold.ecommerce_predictions AS
            SELECT TIMESTAMP '2019-10-01' AS cutoff, visitorid, 1 AS itemid, dataset, p AS predicted_prob,
                   {_MODEL_COLUMNS.replace("'run'", "run")}
            FROM (VALUES (0, 'test', 1.5, 'run'), (1, 'test', 0.5, NULL), (1, 'test', 0.5, NULL),
                         (3, 'train', 0.5, 'run'))
                 AS t(visitorid, dataset, p, run)""")
    elif table == "gold.cart_abandonment_scores":
        con.execute("CREATE TABLE gold.cart_session_features AS SELECT 'a' AS session_id, 'test' AS dataset")
        con.execute(
            "CREATE TABLE gold.cart_abandonment_scores AS SELECT 'a' AS session_id, 'test' AS dataset, "
            f"0.5 AS predicted_prob, {_MODEL_COLUMNS} FROM range(2)"
        )  # duplicated
    else:  # an insight with a 'rate' above 1
        con.execute(f"CREATE TABLE {table} AS SELECT 1.2 AS conversion_rate, 0.1 AS predicted_conversion_rate")
