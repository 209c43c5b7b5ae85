"""Models at scale: feature build time, training time, scoring throughput and holdout metrics.

    .venv/bin/python bench/bench_models.py                      # 20M generated events (long on 2 cores)
    .venv/bin/python bench/bench_models.py --events 2000000     # a quicker look
    ECOM_BENCH_HOME=/path/to/ecom_home .venv/bin/python bench/bench_models.py   # reuse an ingested home

Generates REES46-shaped events into a temporary ECOM_HOME (unless one is given), ingests them
through the Dagster ingestion job, builds the gold tables and both feature tables in SQL, then for
each task trains gradient boosting, logistic regression, random forest and the recency-only
reference exactly as the training assets do (same bounded training sample, same time split,
threshold and champion on validation), scores the whole feature table with the champion in chunks,
and prints one table per task: each model's holdout metrics beside their baselines (base rate of
the named positive class = no-skill PR-AUC, PR-AUC lift, Brier skill score; for the purchase model
candidate coverage and recall over all purchases). Nothing is registered in MLflow: this measures
the models, not the registry.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg
import pandas as pd

from ecom_assets.definitions import build_definitions
from ecom_assets.ecom_home import EcomPaths
from ecom_assets.generator import GeneratorConfig, generate
from ecom_assets.lakehouse.event_days import publish_sessions, stage_sessions
from ecom_assets.lakehouse.landing import list_landing_files
from ecom_assets.lakehouse.warehouse import ensure_schema, scalar, table_exists
from ecom_assets.ml.batch_scoring import load_training_sample, score_table
from ecom_assets.ml.feature_cutoffs import refresh_user_item_features
from ecom_assets.ml.feature_days import refresh_cart_session_features
from ecom_assets.ml.feature_specs import CART_TASK, PURCHASE_TASK, FeatureWindows
from ecom_assets.ml.lifecycle import purchase_candidate_coverage
from ecom_assets.ml.training import TrainingConfig, predict_proba, quality_verdicts, train_and_compare
from ecom_assets.one_shot import ingest_landing_files
from ecom_assets.resources import MLSettings, build_resources, open_warehouse, resolved


def _timed(label: str, fn, *args, **kwargs):
    started = time.perf_counter()
    value = fn(*args, **kwargs)
    seconds = time.perf_counter() - started
    print(f"  {label}: {seconds:,.1f} s", flush=True)
    return value, seconds


def ingest(paths: EcomPaths) -> None:
    files = list_landing_files(paths.landing)
    defs = build_definitions(paths)
    with dg.instance_for_test() as instance:
        for path, result in ingest_landing_files(defs, instance, files):
            if not result.success:
                sys.exit(f"ingesting {path.name} failed")


def build_gold(paths: EcomPaths, windows: FeatureWindows) -> dict[str, float]:
    resources = build_resources(paths)
    gap = resolved(resources["settings"]).session_gap_minutes  # as the gold asset
    timings = {}
    with open_warehouse(resources["duckdb"], resources["settings"]) as con:
        ensure_schema(con)
        first, last = con.execute("SELECT min(event_time)::DATE, max(event_time)::DATE FROM silver.events").fetchone()
        start = dt.datetime.combine(first, dt.time())
        end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time())

        def sessions() -> None:  # every day in one range, as a full refresh of the sessions asset does
            stage_sessions(con, start, end, gap)
            publish_sessions(con, start, end, dt.datetime.now(dt.UTC))

        _, timings["gold_fact_user_sessions"] = _timed("gold.fact_user_sessions", sessions)
        _, timings["gold_user_item_features.sql"] = _timed(
            "gold_user_item_features.sql", refresh_user_item_features, con, windows, everything=True
        )
        _, timings["gold_cart_session_features.sql"] = _timed(
            "gold_cart_session_features.sql", refresh_cart_session_features, con, windows.horizon_days, everything=True
        )
        for table in (
            "silver.events",
            "gold.fact_user_sessions",
            "gold.user_item_features",
            "gold.cart_session_features",
        ):
            print(f"  {table}: {scalar(con, f'SELECT count(*) FROM {table}'):,} rows")
    return timings


def bench_task(paths: EcomPaths, task, config: TrainingConfig) -> pd.DataFrame:
    print(f"\n== {task.what} ({task.feature_table}) ==", flush=True)
    resources = build_resources(paths)
    with open_warehouse(resources["duckdb"], resources["settings"]) as con:
        frame, _ = _timed("read bounded labelled sample", load_training_sample, con, task, config)
        coverage = purchase_candidate_coverage(con, task.feature_table, task.label) if task is PURCHASE_TASK else None
    result = train_and_compare(
        frame, task.specs, task.label, config, what=task.what, log=lambda m: print("  " + m, flush=True)
    )
    print(result.counts.to_string())
    print(f"  positive class: {result.positive_class}; champion on validation PR-AUC: {result.champion_family}")
    if coverage:
        print(
            f"  candidate coverage: {coverage['candidate_coverage']:.4f} of "
            f"{coverage['purchased_pairs']:,.0f} (user, item) pairs bought in the test window have a candidate row"
        )
    rows = []
    for family, fitted in result.families.items():
        started = time.perf_counter()
        predict_proba(fitted.model, result.X_test)
        in_memory = len(result.X_test) / (time.perf_counter() - started)
        rows.append(
            {
                "model": family,
                "role": result.role(family),
                "train_rows": result.trained_rows,
                "fit_s": round(fitted.fit_seconds, 1),
                "predict_rows_per_s": round(in_memory),
                **{k: round(v, 4) for k, v in fitted.test.items()},
                "threshold": round(fitted.threshold, 4),
                **(
                    {"recall_over_all_purchases": round(fitted.test["recall"] * coverage["candidate_coverage"], 4)}
                    if coverage
                    else {}
                ),
            }
        )
    with open_warehouse(resources["duckdb"], resources["settings"]) as con:
        batch = score_table(
            con,
            result.champion.model,
            task.feature_table,
            task.keys,
            task.specs,
            "bench_scores",
            chunk_rows=MLSettings().score_chunk_rows,
        )
    print(
        f"  batch scoring ({result.champion_family}, whole table, DuckDB in and out): {batch.rows:,} rows in "
        f"{batch.seconds:,.1f} s = {batch.rows_per_second:,.0f} rows/s"
    )
    table = pd.DataFrame(rows).set_index("model")
    print(table.to_markdown())
    print(quality_verdicts(result).to_markdown(index=False))
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000_000)
    parser.add_argument("--days", type=int, default=61)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--home",
        default=os.environ.get("ECOM_BENCH_HOME"),
        help="reuse this ECOM_HOME (ingested or with landing files) instead of generating",
    )
    parser.add_argument("--max-train-rows", type=int, default=TrainingConfig.max_train_rows)
    parser.add_argument("--keep", action="store_true", help="keep the generated temporary home")
    args = parser.parse_args(argv)

    os.environ.setdefault("MLFLOW_SKIP_PIP_REQUIREMENTS_CHECK", "true")
    temporary = None
    if args.home:
        paths = EcomPaths(Path(args.home).expanduser().resolve()).ensure()
    else:
        temporary = Path(tempfile.mkdtemp(prefix="ecom_bench_models_"))
        paths = EcomPaths(temporary / "ecom_home").ensure()
    os.environ["ECOM_HOME"] = str(paths.home)
    config = TrainingConfig(max_train_rows=args.max_train_rows)
    windows = FeatureWindows()
    print(f"ECOM_HOME {paths.home}\ntraining config: {config.params()}\nfeature windows: {windows}", flush=True)
    try:
        if not list_landing_files(paths.landing) and not paths.lake_catalog.exists():
            _timed(
                f"generate {args.events:,} events",
                generate,
                paths.landing,
                GeneratorConfig(events=args.events, days=args.days, seed=args.seed),
                lambda _: None,
            )
        resources = build_resources(paths)
        with resources["duckdb"].get_connection() as con:
            ingested = table_exists(con, "silver.events") and scalar(con, "SELECT count(*) FROM silver.events")
        if not ingested:
            _timed("ingest landing -> bronze -> silver", ingest, paths)
        build_gold(paths, windows)
        for task in (PURCHASE_TASK, CART_TASK):
            bench_task(paths, task, config)
    finally:
        if temporary and not args.keep:
            shutil.rmtree(temporary, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
