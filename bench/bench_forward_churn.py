"""How many forward-looking purchase rows would one new day change, if the forward cutoff moved with the data?

    python bench/bench_forward_churn.py [--events 2000000] [--days 60]

Why the forward cutoff sits on the weekly calendar (docs/models.md, "The forward cutoff"). Generates N
events over D days (the generator's defaults, one file per month) and takes its last day as "the new
day": with a decision point at the data's end, the forward cutoff moves from that day's midnight to the
next, its 28-day lookback slides by a day, and a row (user x item with an event in the lookback) changes
when any of its features does:

  every row                  days_since_last_interaction, days_since_first_interaction and
                             user_days_since_last_event grow by one day (the recency features);
  user or item active        besides recency: the item's popularity (item_views, item_visitors ...) or
  on the new day             the user's activity (user_events, user_sessions ...) changed;
  ... or on the day leaving  the same for the day that left the lookback.
  the lookback

It reads the generated CSV files with DuckDB (no warehouse): the shares are properties of the data.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import tempfile
from pathlib import Path

import duckdb

from ecom_assets.generator import GeneratorConfig, generate

START, LOOKBACK_DAYS = dt.date(2019, 10, 1), 28


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--days", type=int, default=60)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="forward_churn_"))
    try:
        files = generate(root, GeneratorConfig(events=args.events, days=args.days, start=START, seed=42))
        new_day = START + dt.timedelta(days=args.days - 1)
        cutoff = new_day + dt.timedelta(days=1)  # the forward cutoff after the new day; the day before it
        leaving = new_day - dt.timedelta(days=LOOKBACK_DAYS)  # in yesterday's lookback, not in today's
        con = duckdb.connect()
        con.execute(
            "CREATE TABLE e AS SELECT CAST(date_trunc('day', CAST(event_time[:19] AS TIMESTAMP)) AS DATE) AS day, "
            "user_id AS u, product_id AS i FROM read_csv(?, all_varchar = true)",
            [[str(f) for f in files]],
        )
        con.execute(
            "CREATE TABLE p AS SELECT DISTINCT u, i FROM e WHERE day >= ? AND day < ?",
            [cutoff - dt.timedelta(days=LOOKBACK_DAYS), cutoff],
        )
        con.execute("CREATE TABLE nd AS SELECT DISTINCT u, i FROM e WHERE day = ?", [new_day])
        con.execute("CREATE TABLE dd AS SELECT DISTINCT u, i FROM e WHERE day = ?", [leaving])
        rows = con.execute("SELECT count(*) FROM p").fetchone()[0]
        new_user_or_item = "u IN (SELECT u FROM nd) OR i IN (SELECT i FROM nd)"
        cases = {
            "pair with events on the new day": "(u, i) IN (SELECT (u, i) FROM nd)",
            "user active on the new day": "u IN (SELECT u FROM nd)",
            "user or item active on the new day": new_user_or_item,
            "... or on the day leaving the lookback": f"{new_user_or_item} OR u IN (SELECT u FROM dd) "
            "OR i IN (SELECT i FROM dd)",
            "any row (recency features)": "TRUE",
        }
        print(
            f"{args.events:,} events over {args.days} days; new day {new_day}, forward rows at {cutoff}: {rows:,} "
            f"(user x item pairs with an event in [{cutoff - dt.timedelta(days=LOOKBACK_DAYS)}, {cutoff}))"
        )
        print(f"\n{'forward rows whose features the new day changes, if the cutoff moves daily':<72} {'rows':>9} share")
        for name, where in cases.items():
            changed = con.execute(f"SELECT count(*) FROM p WHERE {where}").fetchone()[0]
            print(f"  {name:<70} {changed:>9,} {changed / rows:6.1%}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
