"""The sessions step alone: `event_days.stage_sessions` over an existing ECOM_HOME's silver.

    python bench/bench_sessions.py ECOM_HOME [--start 2019-10-01 --end 2019-12-01] [--repeat N]

Stages the sessions of [start, end) (default: every day of silver.events) into a temporary table, as
`gold/fact_user_sessions` does, and prints the sessions, wall and CPU seconds (user + sys of this
process, DuckDB's threads included) and the peak RSS. Nothing is written to the lake. CPU time is what
to compare on a shared machine. The warehouse's settings: 2 threads, DuckDB memory capped at 2 GB.
Build a home with `bench/bench_landing_to_gold.py --events 20000000 --home DIR` (or `ecom-assets run`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import tempfile
import time
from pathlib import Path

from bench_silver_load import cpu_seconds  # (a sibling script: bench/ is on sys.path when this one runs)

from ecom_assets.ecom_home import EcomPaths
from ecom_assets.lakehouse import event_days, lake, warehouse
from ecom_assets.resources import EcomSettings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("home", type=Path)
    parser.add_argument("--start", type=dt.date.fromisoformat, help="first day (default: silver's first)")
    parser.add_argument("--end", type=dt.date.fromisoformat, help="the day after the last (default: silver's)")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    settings = EcomSettings()
    with tempfile.TemporaryDirectory(prefix="bench_sessions_") as spill:
        config = {"threads": 2, "memory_limit": "2GB", "temp_directory": spill}
        con = lake.connect(lake.local_target(EcomPaths(args.home).lake_catalog), config)
        try:
            run(con, args, settings)
        finally:
            con.close()


def run(con, args: argparse.Namespace, settings: EcomSettings) -> None:
    """Stage the range's sessions `args.repeat` times, printing each time's figures."""
    warehouse.define_macros(con)
    warehouse.register_experiment_macro(con, settings.experiment_key, settings.treatment_share)
    first, last = con.execute("SELECT min(event_time)::DATE, max(event_time)::DATE FROM silver.events").fetchone()
    start = dt.datetime.combine(args.start or first, dt.time())
    end = dt.datetime.combine(args.end or last + dt.timedelta(days=1), dt.time())
    events = con.execute("SELECT count(*) FROM silver.events").fetchone()[0]
    print(f"{events:,} events in silver; sessions of {start:%Y-%m-%d} to {end:%Y-%m-%d}")
    for _ in range(args.repeat):
        wall, cpu = time.perf_counter(), cpu_seconds()
        sessions = event_days.stage_sessions(con, start, end, settings.session_gap_minutes)
        wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB on Linux, as in the other benches
        print(f"{sessions:,} sessions: {wall:.2f} s wall, {cpu:.2f} s CPU, peak RSS {peak:.2f} GB")


if __name__ == "__main__":
    main()
