"""ml/batch_scoring.py `score_table`: streamed scores land in a temp table with the source's key types,
through a scratch Parquet file in DuckDB's spill folder that is gone afterwards, failed or not."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from ecom_assets.ml.batch_scoring import score_table
from ecom_assets.ml.feature_specs import FeatureSpec

SPECS = (FeatureSpec("views", "views"), FeatureSpec("carts", "carts"))
KEYS = ("cutoff", "user_id", "item_id")


@pytest.fixture
def spill(tmp_path):
    folder = tmp_path / "duckdb_tmp"
    folder.mkdir()
    return folder


@pytest.fixture
def con(spill):
    connection = duckdb.connect(config={"temp_directory": str(spill)})
    # Key types a round trip through pandas would change (DATE, INTEGER, UBIGINT); features as the lake has them.
    connection.execute(
        "CREATE TABLE features AS SELECT DATE '2019-11-03' + CAST(i % 2 AS INTEGER) AS cutoff, "
        "CAST(i AS INTEGER) AS user_id, CAST(1000 + i AS UBIGINT) AS item_id, "
        "CAST(i % 7 AS BIGINT) AS views, CAST(i % 3 AS DOUBLE) AS carts, "
        "CASE WHEN i % 4 = 0 THEN 'test' ELSE 'score' END AS dataset FROM range(40) AS t(i)"
    )
    yield connection
    connection.close()


@pytest.fixture
def model(con):
    frame = con.execute("SELECT views, carts FROM features").df().astype(np.float64)
    return LogisticRegression().fit(frame, (frame["views"] + frame["carts"] > 4).astype(int))


def test_scores_every_matching_row_with_the_source_key_types(con, model, spill):
    result = score_table(con, model, "features", KEYS, SPECS, "scores", chunk_rows=4, where="dataset = 'score'")

    assert result.rows == 30
    types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE scores)").fetchall())
    assert types == {"cutoff": "DATE", "user_id": "INTEGER", "item_id": "UBIGINT", "predicted_prob": "DOUBLE"}
    got = con.execute("SELECT * FROM scores ORDER BY user_id").df()
    expected = con.execute(f"SELECT {', '.join(KEYS)}, views, carts FROM features WHERE dataset = 'score'").df()
    expected = expected.sort_values("user_id", ignore_index=True)
    pd.testing.assert_frame_equal(got[list(KEYS)], expected[list(KEYS)])
    want = model.predict_proba(expected[["views", "carts"]].astype(np.float64))[:, 1]
    np.testing.assert_allclose(got["predicted_prob"], want)
    assert list(spill.iterdir()) == []  # the scratch file went with its folder


def test_no_matching_row_gives_an_empty_table(con, model, spill):
    assert score_table(con, model, "features", KEYS, SPECS, "scores", where="FALSE").rows == 0
    assert con.execute("SELECT count(*) FROM scores").fetchone()[0] == 0
    assert list(spill.iterdir()) == []


def test_a_failure_mid_stream_leaves_no_scratch_file(con, model, spill):
    # A feature the model cannot take in the last batch: earlier batches are already in the scratch file.
    con.execute("UPDATE features SET carts = NULL WHERE user_id = 39")

    with pytest.raises(ValueError, match="NaN"):
        score_table(con, model, "features", KEYS, SPECS, "scores", chunk_rows=4)

    assert list(spill.iterdir()) == []
