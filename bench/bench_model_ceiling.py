"""How close the models get to the best score possible on the synthetic world (the oracle row).

    .venv/bin/python bench/bench_model_ceiling.py                     # 400k events, a few minutes
    .venv/bin/python bench/bench_model_ceiling.py --events 60000 --reps 100

Generates events with the world's hidden variables (`generate(..., truth_dir=...)`), runs the whole
graph as `ecom-assets run` does (ingest, gold, features, training), refits every model family on
the same bounded training sample as the training assets (`train_and_compare`, nothing registered),
then scores every labelled holdout (test) row with each family and with the oracle:

- purchase (label `converted`, positive = the user buys the item in the week after the cutoff): the
  world's own probability, a Monte-Carlo share from re-simulating that week `--reps` times from every
  user's hidden state at the cutoff (intent, favourites, taste, price sensitivity, arm);
- cart abandonment (positive = `abandoned_cart`, no purchase later in the session): 1 minus the
  session's hidden checkout probability (its intent, the user's taste and price sensitivity, the
  first carted item's price and, for treated users, the session's cart-event count, so a slightly
  generous ceiling). The join is an as-of join on (user_id, session_start).

The oracle is the ceiling: no model that reads only the events can beat it, beyond noise.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from ecom_assets.ecom_home import EcomPaths
from ecom_assets.generator import TRUTH_FILES, GeneratorConfig, generate, purchase_oracle
from ecom_assets.ml.batch_scoring import load_training_sample
from ecom_assets.ml.feature_specs import CART_TASK, PURCHASE_TASK, FeatureWindows, coerce
from ecom_assets.ml.training import TrainingConfig, predict_proba, train_and_compare
from ecom_assets.one_shot import run_pipeline
from ecom_assets.resources import build_resources


def holdout_rows(paths: EcomPaths, task) -> pd.DataFrame:
    with build_resources(paths)["duckdb"].read_connection() as con:
        return con.execute(
            f"SELECT * FROM {task.feature_table} WHERE dataset = 'test' AND {task.label} IS NOT NULL"
        ).df()


def fitted_families(paths: EcomPaths, task, config: TrainingConfig) -> dict:
    with build_resources(paths)["duckdb"].read_connection() as con:
        frame = load_training_sample(con, task, config)
    result = train_and_compare(frame, task.specs, task.label, config, what=task.what)
    return {family: fitted.model for family, fitted in result.families.items()}


def purchase_ceiling(rows: pd.DataFrame, truth: Path, reps: int) -> np.ndarray:
    cutoffs = sorted(pd.to_datetime(rows["cutoff"]).unique())
    oracle = purchase_oracle(truth, [c.to_pydatetime() for c in cutoffs], FeatureWindows().horizon_days, reps)
    keyed = rows[["cutoff", "user_id", "item_id"]].astype({"user_id": "int64", "item_id": "int64"})
    keyed["cutoff"] = pd.to_datetime(keyed["cutoff"])
    merged = keyed.merge(oracle, on=["cutoff", "user_id", "item_id"], how="left")
    return merged["p_oracle"].fillna(0.0).to_numpy()


def cart_ceiling(rows: pd.DataFrame, truth: Path) -> np.ndarray:
    """P(abandon) = 1 - the hidden checkout probability of the generated session the row starts in."""
    con = duckdb.connect()
    con.register("rows_df", rows[["user_id", "session_start"]].reset_index())
    p_checkout = con.execute(
        f"""SELECT t.p_checkout
            FROM rows_df r ASOF LEFT JOIN '{truth / TRUTH_FILES[1]}' t
              ON t.user_id = r.user_id AND t.session_start <= r.session_start
            ORDER BY r.index"""
    ).fetchnumpy()["p_checkout"]
    p_checkout = np.asarray(p_checkout, dtype=float)
    # A pipeline session that merged two generated ones starts in one without a cart: the mean.
    return 1.0 - np.where(np.isnan(p_checkout), np.nanmean(p_checkout), p_checkout)


def scores(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    return {"roc_auc": roc_auc_score(y, p), "pr_auc": average_precision_score(y, p)}


def report(task, rows: pd.DataFrame, models: dict, oracle: np.ndarray) -> pd.DataFrame:
    y = rows[task.label].astype(int).to_numpy()
    X = coerce(rows, task.specs)
    table = {family: scores(y, predict_proba(model, X)) for family, model in models.items()}
    table["oracle (hidden variables)"] = scores(y, oracle)
    frame = pd.DataFrame(table).T
    frame["base_rate"] = y.mean()  # = the PR-AUC of a no-skill ranking
    frame["pr_auc_lift"] = frame["pr_auc"] / y.mean()
    positives = f"{y.sum():,} positive ({task.label} = 1), base rate {y.mean():.4f}"
    print(f"\n== {task.what}: {len(y):,} holdout rows, {positives} ==")
    print(frame.round(4).to_markdown())
    return frame


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--days", type=int, default=61)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--reps", type=int, default=200, help="Monte-Carlo re-simulations of the label week")
    parser.add_argument("--keep", action="store_true", help="keep the temporary ECOM_HOME")
    args = parser.parse_args(argv)
    print("$ " + shlex.join([Path(sys.executable).name, *sys.argv]), flush=True)

    os.environ.setdefault("MLFLOW_SKIP_PIP_REQUIREMENTS_CHECK", "true")
    temporary = Path(tempfile.mkdtemp(prefix="ecom_bench_ceiling_"))
    paths = EcomPaths(temporary / "ecom_home").ensure()
    truth = temporary / "truth"
    os.environ["ECOM_HOME"] = str(paths.home)
    os.environ.pop("MLFLOW_TRACKING_URI", None)  # the temporary home's own registry
    try:
        started = time.perf_counter()
        generate(paths.landing, GeneratorConfig(events=args.events, days=args.days, seed=args.seed), None, truth)
        print(f"generated {args.events:,} events with the hidden truth: {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        with dg.instance_for_test() as instance:
            outcome = run_pipeline(paths, instance, log=lambda _: None)
        print(f"ecom-assets run (whole graph): {time.perf_counter() - started:.1f} s, ok={outcome.ok}", flush=True)
        config = TrainingConfig()
        for task, ceiling in (
            (PURCHASE_TASK, lambda rows: purchase_ceiling(rows, truth, args.reps)),
            (CART_TASK, lambda rows: cart_ceiling(rows, truth)),
        ):
            started = time.perf_counter()
            rows = holdout_rows(paths, task)
            report(task, rows, fitted_families(paths, task, config), ceiling(rows))
            print(f"  ({time.perf_counter() - started:.1f} s)")
    finally:
        if args.keep:
            print(f"kept {temporary}")
        else:
            shutil.rmtree(temporary, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
