"""Reading model inputs from the warehouse and scoring them: bounded samples, chunked batch scoring.

Big feature tables never land in pandas whole: training reads a bounded random sample per split,
batch scoring reads one chunk of rows at a time and writes (keys, probability) back to DuckDB.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd

from ecom_assets.ml.feature_specs import FeatureSpec, coerce, names
from ecom_assets.ml.training import SPLITS, predict_proba


def load_labelled_sample(
    con: duckdb.DuckDBPyConnection,
    table: str,
    label: str,
    max_train_rows: int,
    max_eval_rows: int,
    order_by: str,
    seed: int = 0,
) -> pd.DataFrame:
    """Labelled rows of each split, at most `max_*_rows` each (a reservoir sample), in key order."""
    parts = []
    for split in SPLITS:
        limit = max_train_rows if split == "train" else max_eval_rows
        parts.append(
            con.execute(
                f"SELECT * FROM (SELECT * FROM {table} WHERE dataset = ? AND {label} IS NOT NULL) "
                f"USING SAMPLE reservoir({int(limit)} ROWS) REPEATABLE ({int(seed)}) ORDER BY {order_by}",
                [split],
            ).df()
        )
    non_empty = [p for p in parts if len(p)]
    return pd.concat(non_empty, ignore_index=True) if non_empty else parts[0]


@dataclass
class BatchScore:
    rows: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else float("inf")


def score_table(
    con: duckdb.DuckDBPyConnection,
    model: Any,
    source: str,
    keys: Sequence[str],
    specs: Sequence[FeatureSpec],
    target: str,
    chunk_rows: int = 500_000,
) -> BatchScore:
    """Write `target(keys..., predicted_prob)` for every row of `source`, a chunk at a time.

    Chunks are hash buckets of the keys, so memory stays bounded by about `chunk_rows` rows
    whatever the table's size.
    """
    total = con.execute(f"SELECT count(*) FROM {source}").fetchone()[0]
    chunks = max(1, math.ceil(total / chunk_rows))
    key_list = ", ".join(keys)
    columns = ", ".join(dict.fromkeys([*keys, *names(specs)]))
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {target} AS SELECT {key_list}, CAST(NULL AS DOUBLE) AS predicted_prob "
        f"FROM {source} LIMIT 0"
    )
    started = time.perf_counter()
    for chunk in range(chunks):
        frame = con.execute(f"SELECT {columns} FROM {source} WHERE hash({key_list}) % {chunks} = {chunk}").df()
        if frame.empty:
            continue
        scores = frame[list(keys)].copy()
        scores["predicted_prob"] = predict_proba(model, coerce(frame, specs))
        con.register("scores_chunk", scores)
        con.execute(f"INSERT INTO {target} SELECT * FROM scores_chunk")
        con.unregister("scores_chunk")
    return BatchScore(total, time.perf_counter() - started)
