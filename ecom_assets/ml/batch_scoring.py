"""Reading model inputs from the warehouse and scoring them: bounded samples, chunked batch scoring.

Big feature tables never land in pandas whole: training reads a bounded random sample per split,
batch scoring reads one chunk of rows at a time and writes (keys, probability) back to DuckDB.

Only out-of-sample rows are published: the holdout (test) split, scored by the registered
production model, which never saw it; and the forward-looking (score) split, scored by the
production model refit on every labelled row (`ml/refit.py`). Train and validation rows are
in-sample for production (fitted on train, threshold chosen on validation), so their scores
would flatter it; they are not scored.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ecom_assets.lakehouse.warehouse import (
    keyed_sample,
    run_sql_file,
    same_rows,
    scratch_folder,
    table_exists,
    transaction,
)
from ecom_assets.ml.feature_specs import FeatureSpec, ModelTask, coerce, names
from ecom_assets.ml.training import SPLITS, TrainingConfig, predict_proba


def load_labelled_sample(
    con: duckdb.DuckDBPyConnection,
    table: str,
    label: str,
    max_train_rows: int,
    max_eval_rows: int,
    keys: Sequence[str],
    seed: int = 0,
) -> pd.DataFrame:
    """Labelled rows of each split, at most `max_*_rows` each (`keyed_sample`: a seeded hash of the `keys`),
    in key order."""
    parts = []
    for split in SPLITS:
        limit = max_train_rows if split == "train" else max_eval_rows
        labelled = f"(SELECT * FROM {table} WHERE dataset = '{split}' AND {label} IS NOT NULL)"
        parts.append(
            con.execute(f"SELECT * FROM ({keyed_sample(labelled, keys, limit, seed)}) ORDER BY {', '.join(keys)}").df()
        )
    non_empty = [p for p in parts if len(p)]
    return pd.concat(non_empty, ignore_index=True) if non_empty else parts[0]


def load_training_sample(con: duckdb.DuckDBPyConnection, task: ModelTask, config: TrainingConfig) -> pd.DataFrame:
    """A task's labelled rows as training reads them: the config's caps and seed, in key order."""
    return load_labelled_sample(
        con,
        task.feature_table,
        task.label,
        config.max_train_rows,
        config.max_eval_rows,
        keys=task.keys,
        seed=config.seed,
    )


HOLDOUT, FORWARD = "test", "score"
IN_SAMPLE = ("train", "validation")  # what production was fitted and tuned on: never published
PRODUCTION_SCORER, REFIT_SCORER = "production", "refit"


@dataclass(frozen=True)
class Scorer:
    """The model that scores one split, and the provenance every row it scores carries."""

    split: str
    scored_by: str  # PRODUCTION_SCORER or REFIT_SCORER
    model: Any
    model_version: int  # the registered version (a refit carries the version it refits)
    mlflow_run_id: str
    trained_at: str  # ISO 8601, UTC
    threshold: float


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
    where: str = "TRUE",
) -> BatchScore:
    """Write `target(keys..., predicted_prob)` for every row of `source` matching `where`, a chunk at a time.

    One scan of `source`, streamed in Arrow batches of `chunk_rows`: memory holds one batch's features
    and scores, whatever the table's size. The stream holds the connection until it ends, so each batch's
    scores go to a scratch Parquet file (32 B a row, 0.85 GB for 27M rows had they waited in memory),
    loaded into `target` once the stream is read; the file is removed whether scoring succeeds or not.
    """
    key_list = ", ".join(keys)
    columns = ", ".join(dict.fromkeys([*keys, *names(specs)]))
    started = time.perf_counter()
    rows = 0
    with tempfile.TemporaryDirectory(prefix="scores-", dir=scratch_folder(con)) as scratch:
        scores_file = Path(scratch) / "scores.parquet"
        writer = None
        try:
            batches = con.execute(f"SELECT {columns} FROM {source} WHERE {where}").to_arrow_reader(chunk_rows)
            for batch in batches:  # the connection runs nothing else until the stream is read to its end
                probabilities = predict_proba(model, coerce(batch.select(names(specs)).to_pandas(), specs))
                scores = batch.select(list(keys)).append_column("predicted_prob", pa.array(probabilities, pa.float64()))
                if writer is None:
                    writer = pq.ParquetWriter(scores_file, scores.schema)
                writer.write_batch(scores)
                rows += batch.num_rows
        finally:
            if writer is not None:
                writer.close()
        # The keys' types are the source's: the scores' Arrow types are cast back to them on insert.
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {target} AS SELECT {key_list}, CAST(NULL AS DOUBLE) AS predicted_prob "
            f"FROM {source} LIMIT 0"
        )
        if rows:
            con.execute(
                f"INSERT INTO {target} SELECT {key_list}, predicted_prob FROM read_parquet(?)", [str(scores_file)]
            )
    return BatchScore(rows, time.perf_counter() - started)


def split_rows(con: duckdb.DuckDBPyConnection, source: str) -> dict[str, int]:
    """Rows per split (`dataset`) of a feature table."""
    return dict(con.execute(f"SELECT dataset, count(*) FROM {source} GROUP BY dataset").fetchall())


def score_splits(
    con: duckdb.DuckDBPyConnection,
    scorers: Sequence[Scorer],
    source: str,
    keys: Sequence[str],
    specs: Sequence[FeatureSpec],
    target: str,
    chunk_rows: int = 500_000,
) -> dict[str, BatchScore]:
    """Score each scorer's split of `source`: temp tables `target(keys..., predicted_prob, scored_by)`
    and `<target>_scorers(scored_by, model_version, mlflow_run_id, trained_at, threshold)`.

    Splits no scorer names (train, validation) get no row. Returns the batch timing per scorer.
    """
    if len({s.scored_by for s in scorers}) != len(scorers):
        raise ValueError(f"one scorer per scored_by, got {[s.scored_by for s in scorers]}")
    key_list = ", ".join(keys)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {target} AS SELECT {key_list}, CAST(NULL AS DOUBLE) AS predicted_prob, "
        f"CAST(NULL AS VARCHAR) AS scored_by FROM {source} LIMIT 0"
    )
    timings = {}
    for scorer in scorers:
        part = f"{target}_{scorer.scored_by}"
        timings[scorer.scored_by] = score_table(
            con, scorer.model, source, keys, specs, part, chunk_rows, where=f"dataset = '{scorer.split}'"
        )
        con.execute(f"INSERT INTO {target} SELECT *, CAST(? AS VARCHAR) FROM {part}", [scorer.scored_by])
        con.execute(f"DROP TABLE {part}")
    _provenance(con, scorers, f"{target}_scorers")
    return timings


def _provenance(con: duckdb.DuckDBPyConnection, scorers: Sequence[Scorer], table: str) -> None:
    """The temp table `table(scored_by, split, model_version, mlflow_run_id, trained_at, threshold)`."""
    provenance = pd.DataFrame(
        {
            "scored_by": [s.scored_by for s in scorers],
            "split": [s.split for s in scorers],
            "model_version": [int(s.model_version) for s in scorers],
            "mlflow_run_id": [s.mlflow_run_id for s in scorers],
            "trained_at": [_utc(s.trained_at) for s in scorers],
            "threshold": [float(s.threshold) for s in scorers],
        }
    )
    con.register("scorers_frame", provenance)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT scored_by, split, "
        "CAST(model_version AS INTEGER) AS model_version, mlflow_run_id, "
        "CAST(trained_at AS TIMESTAMP) AS trained_at, CAST(threshold AS DOUBLE) AS threshold FROM scorers_frame"
    )
    con.unregister("scorers_frame")


# Every feature row carries when it was computed; a prediction carries it too. A prediction stands while
# its row is unchanged (same stamp), in the same split, and its scorer is the same model run.
STAMP = "features_built_at"
# What a current prediction matches besides its keys, as (prediction column, feature side) pairs: `f` is
# its feature row, `m` the scorer of that row's split. `_current_pairs` adds the keys; every test of
# "current" in `publish_scores` is built from those pairs alone.
CURRENT_BY = (
    ("dataset", "f.dataset"),
    (STAMP, f"f.{STAMP}"),
    ("scored_by", "m.scored_by"),
    ("mlflow_run_id", "m.mlflow_run_id"),
)


@dataclass
class PublishedScores:
    scored: dict[str, BatchScore]  # per scorer: the rows scored now
    kept: int  # predictions kept as they were
    dropped: int  # predictions removed: their row changed or left the published splits, or a new model


def publish_scores(
    con: duckdb.DuckDBPyConnection,
    scorers: Sequence[Scorer],
    source: str,
    keys: dict[str, str],
    specs: Sequence[FeatureSpec],
    temp: str,
    table: str,
    build_sql: Path,
    chunk_rows: int = 500_000,
) -> PublishedScores:
    """Bring the predictions `table` up to date with the feature table `source`: score only its rows in
    the scorers' splits that `table` holds no current prediction of (scorer's split, model run and the
    row's `features_built_at`), build their rows with `build_sql` (the temp view `unscored` of their
    features, `temp` scores and `<temp>_scorers` in, the temp view `new_predictions` out), drop the
    predictions no longer current and append the new ones, in one transaction. `keys`: the prediction's
    key column -> the feature's. A new production version or refit has a new run:
    every row of its split is scored again."""
    _provenance(con, scorers, f"{temp}_scorers")
    incremental = table_exists(con, table) and STAMP in _columns(con, table)
    pairs = _current_pairs(keys)
    scored_rows = f"{source} AS f JOIN {temp}_scorers AS m ON m.split = f.dataset"  # each row with its scorer
    is_current = " AND ".join(f"p.{p} = {f}" for p, f in pairs)
    if incremental and _all_current(con, scored_rows, table, pairs):
        # A day inside the purchase week: nothing to score, nothing to drop, so no write at all.
        kept = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        con.execute(f"DROP TABLE IF EXISTS {temp}_scorers")
        return PublishedScores({s.scored_by: BatchScore(0, 0.0) for s in scorers}, kept, 0)
    # `unscored` is a view over the lake, never a copy of the features (millions of rows, dozens of
    # columns): a first build reads the scorers' splits whole; an update keeps only the keys to score.
    splits = f"SELECT f.* FROM {source} AS f WHERE f.dataset IN (SELECT split FROM {temp}_scorers)"
    if incremental:
        feature_keys = ", ".join(f"f.{f}" for f in keys.values())
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE unscored_keys AS SELECT {feature_keys}, f.dataset FROM {scored_rows} "
            f"WHERE NOT EXISTS (SELECT 1 FROM {table} AS p WHERE {is_current})"
        )
        match = " AND ".join(f"k.{f} = f.{f}" for f in [*keys.values(), "dataset"])
        splits = f"SELECT f.* FROM {source} AS f SEMI JOIN unscored_keys AS k ON {match}"
    con.execute(f"CREATE OR REPLACE TEMP VIEW unscored AS {splits}")
    scored = score_splits(con, scorers, "unscored", list(keys.values()), specs, temp, chunk_rows)
    run_sql_file(con, build_sql)
    kept = dropped = 0
    with transaction(con):
        if incremental:
            before = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            still = f"SELECT 1 FROM {scored_rows} WHERE {is_current}"
            dropped = con.execute(f"DELETE FROM {table} AS p WHERE NOT EXISTS ({still})").fetchone()[0]
            kept = before - dropped
            con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM new_predictions")
        else:
            con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM new_predictions")
    for view in ("new_predictions", "unscored"):
        con.execute(f"DROP VIEW IF EXISTS {view}")
    for name in ("unscored_keys", temp, f"{temp}_scorers"):
        con.execute(f"DROP TABLE IF EXISTS {name}")
    return PublishedScores(scored, kept, dropped)


def _current_pairs(keys: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """(prediction column, feature side) pairs a current prediction matches: its keys, then CURRENT_BY."""
    return (*((p, f"f.{f}") for p, f in keys.items()), *CURRENT_BY)


def _all_current(
    con: duckdb.DuckDBPyConnection, scored_rows: str, table: str, pairs: Sequence[tuple[str, str]]
) -> bool:
    """Whether `table` holds a current prediction of every one of `scored_rows` (`f` and `m`) and nothing
    else: the same `pairs` on both sides (`warehouse.same_rows`: one scan per side, no join; a type that
    differs between the sides only means "no")."""
    return same_rows(
        con,
        f"(SELECT {', '.join(f for _, f in pairs)} FROM {scored_rows})",
        f"(SELECT {', '.join(f'p.{p}' for p, _ in pairs)} FROM {table} AS p)",
    )


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return [row[0] for row in con.execute(f"DESCRIBE {table}").fetchall()]


def _utc(iso: str) -> dt.datetime:
    """An ISO 8601 time as naive UTC (DuckDB TIMESTAMP); one without an offset is taken as UTC."""
    if not iso:
        raise ValueError("a scoring model without trained_at: every published row must say when its model was fit")
    moment = dt.datetime.fromisoformat(iso)
    return moment.astimezone(dt.UTC).replace(tzinfo=None) if moment.tzinfo else moment
