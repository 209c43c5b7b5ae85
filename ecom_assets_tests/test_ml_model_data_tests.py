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


def _plant(con, test) -> None:
    table = test.table
    if table == "gold.ecommerce_predictions":
        con.execute(
            "CREATE TABLE gold.user_item_features AS SELECT TIMESTAMP '2019-10-01' AS cutoff, "
            "range AS user_id, 1 AS item_id FROM range(3)"
        )
        con.execute(
            "CREATE TABLE gold.ecommerce_predictions AS SELECT TIMESTAMP '2019-10-01' AS cutoff, "
            "0 AS visitorid, 1 AS itemid, 1.5 AS predicted_prob"
        )  # user 1, 2 missing; p > 1
    elif table == "gold.cart_abandonment_scores":
        con.execute("CREATE TABLE gold.cart_session_features AS SELECT 'a' AS session_id")
        con.execute(
            "CREATE TABLE gold.cart_abandonment_scores AS SELECT 'a' AS session_id, 0.5 AS predicted_prob FROM range(2)"
        )  # duplicated
    else:  # an insight with a 'rate' above 1
        con.execute(f"CREATE TABLE {table} AS SELECT 1.2 AS conversion_rate, 0.1 AS predicted_conversion_rate")
