"""What `ecommerce/predicted_purchase` costs on a day with no new purchase prediction (a day inside the
purchase week): comparing its rows with the table (`warehouse.would_change`) against rewriting them.

    ECOM_HOME=<a built home> python bench/bench_predicted_purchase.py [--repeat 3]

On a home built by `ecom-assets run` (the table and published/predicted_purchase.parquet exist). It
leaves the home as it was: the rewrite (the asset's SQL, its ORDER BY, then the Parquet snapshot,
written to a temp folder) runs in a transaction that is rolled back. Printed, best of --repeat:
  compare   would_change: the SELECT's and the table's row count and fingerprint, one query
  rewrite   CREATE OR REPLACE TABLE ... ORDER BY, then COPY to Parquet (what every day cost before)
  asset     the asset materialized alone (dg.materialize, an ephemeral instance): nothing new, so
            it compares and keeps the table (its metadata says rewritten: False)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import dagster as dg

from ecom_assets.assets.predictions import predicted_purchase
from ecom_assets.ecom_home import EcomPaths
from ecom_assets.lakehouse.warehouse import run_sql_file, scalar, would_change
from ecom_assets.ml import SQL
from ecom_assets.publishing import publish_parquet
from ecom_assets.resources import build_resources, open_warehouse

TABLE = "ecommerce.predicted_purchase"


def _best(repeat: int, step) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    paths = EcomPaths.from_env()
    resources = build_resources(paths)
    with tempfile.TemporaryDirectory() as scratch, open_warehouse(resources["duckdb"], resources["settings"]) as con:
        run_sql_file(con, SQL / "ecommerce_predicted_purchase_rows.sql")
        rows = scalar(con, f"SELECT count(*) FROM {TABLE}")
        changed = would_change(con, TABLE, "SELECT * FROM predicted_purchase_rows")
        compare = _best(args.repeat, lambda: would_change(con, TABLE, "SELECT * FROM predicted_purchase_rows"))

        def rewrite() -> None:
            con.execute("BEGIN TRANSACTION")
            try:
                run_sql_file(con, SQL / "ecommerce_predicted_purchase.sql")
                publish_parquet(con, TABLE, Path(scratch) / "predicted_purchase.parquet")
            finally:
                con.execute("ROLLBACK")

        rewrite_s = _best(args.repeat, rewrite)
    print(f"{TABLE}: {rows:,} rows; would change: {changed}")
    print(f"compare (would_change)           {compare:7.2f} s")
    print(f"rewrite + publish (rolled back)  {rewrite_s:7.2f} s   {rewrite_s / compare:.1f}x the compare")
    with dg.instance_for_test() as instance:
        start = time.perf_counter()
        result = dg.materialize([predicted_purchase], resources=resources, instance=instance)
        asset_s = time.perf_counter() - start
    (event,) = result.get_asset_materialization_events()
    rewritten = event.materialization.metadata["rewritten"].value
    print(f"asset, materialized alone        {asset_s:7.2f} s   rewritten: {rewritten}")


if __name__ == "__main__":
    main()
