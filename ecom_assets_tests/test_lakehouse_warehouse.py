"""lakehouse/warehouse.py's `would_change`, on a real lake: whether `CREATE OR REPLACE TABLE t AS <select>`
would change t, whatever the order of the rows."""

from __future__ import annotations

import pytest

from ecom_assets.lakehouse.warehouse import would_change
from ecom_assets.resources import build_resources

ROWS = "(VALUES (1, 'a', 0.25), (2, 'b', NULL), (3, 'c', 0.75)) AS v(id, name, prob)"


@pytest.fixture
def lake(paths):
    """A writer's connection to a fresh lake holding demo.t: three rows, written in id order."""
    with build_resources(paths)["duckdb"].get_connection() as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS demo")
        con.execute(f"CREATE TABLE demo.t AS SELECT * FROM {ROWS} ORDER BY id")
        yield con


def test_the_same_rows_in_another_order_would_not_change_the_table(lake):
    assert not would_change(lake, "demo.t", f"SELECT * FROM {ROWS} ORDER BY id DESC")
    assert not would_change(lake, "demo.t", f"SELECT * FROM {ROWS} ORDER BY name DESC, prob")
    assert not would_change(lake, "demo.t", "SELECT * FROM demo.t")


@pytest.mark.parametrize(
    "select",
    [
        f"SELECT id, name, CASE WHEN id = 2 THEN 0.5 ELSE prob END AS prob FROM {ROWS}",  # a NULL became a value
        f"SELECT id, CASE WHEN id = 3 THEN 'C' ELSE name END AS name, prob FROM {ROWS}",  # one value changed
        f"SELECT * FROM {ROWS} WHERE id <> 1",  # a row dropped
        f"SELECT * FROM {ROWS} UNION ALL SELECT * FROM {ROWS} WHERE id = 2",  # a row duplicated
        f"SELECT * FROM {ROWS} UNION ALL SELECT * FROM {ROWS}",  # every row duplicated: the count changes
        f"SELECT id, name, prob, 1 AS extra FROM {ROWS}",  # a column added
        f"SELECT name, id, prob FROM {ROWS}",  # the same columns in another order
        f"SELECT id, name, prob::FLOAT AS prob FROM {ROWS}",  # a column's type
    ],
)
def test_a_changed_value_row_or_column_would_change_the_table(lake, select):
    assert would_change(lake, "demo.t", select)


def test_duplicated_rows_do_not_cancel_out(lake):
    """{1, 1, 2} against {2, 3, 3}: the same count, and the same xor of the row hashes (pairs cancel);
    the sum of the hashes tells them apart."""
    table = f"SELECT * FROM {ROWS} WHERE id <> 3 UNION ALL SELECT * FROM {ROWS} WHERE id = 1"
    other = f"SELECT * FROM {ROWS} WHERE id <> 1 UNION ALL SELECT * FROM {ROWS} WHERE id = 3"
    lake.execute(f"CREATE OR REPLACE TABLE demo.t AS {table}")
    xor = "SELECT count(*), bit_xor(hash(*COLUMNS(*))) FROM ({})"
    assert lake.execute(xor.format(table)).fetchone() == lake.execute(xor.format(other)).fetchone()
    assert not would_change(lake, "demo.t", table)
    assert would_change(lake, "demo.t", other)


def test_a_missing_table_would_change(lake):
    assert would_change(lake, "demo.absent", f"SELECT * FROM {ROWS}")
    assert would_change(lake, "nowhere.t", f"SELECT * FROM {ROWS}")


def test_an_empty_table_and_an_empty_select(lake):
    lake.execute("CREATE TABLE demo.empty AS SELECT * FROM demo.t WHERE false")
    assert not would_change(lake, "demo.empty", "SELECT * FROM demo.t WHERE id > 10")
    assert would_change(lake, "demo.empty", "SELECT * FROM demo.t")
    assert would_change(lake, "demo.t", "SELECT * FROM demo.t WHERE false")
