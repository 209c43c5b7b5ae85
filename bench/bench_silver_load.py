"""Where one landing file's load goes: `load_bronze` and `load_silver` statement by statement.

    python bench/bench_silver_load.py LANDING_DIR [--files N] [--lake DIR]

Loads the landing files of LANDING_DIR (sorted, the first N) into a fresh lake (a temp dir, or
--lake DIR, emptied first), without Dagster, and prints per file the wall and CPU seconds (user +
sys of this process, DuckDB's threads included) of bronze and silver, then every statement that
took over 50 ms. CPU time is what to compare on a shared machine: wall time grows with the others'
load. Make files with `ecom-assets generate --events 2000000 --out DIR` (two monthly files).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

from ecom_assets.lakehouse import ingest, lake, warehouse
from ecom_assets.lakehouse.landing import list_landing_files


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class TimedConnection:
    """A DuckDB connection that records (wall, cpu, statement) of every `execute`."""

    def __init__(self, con) -> None:
        self._con = con
        self.timings: list[tuple[float, float, str]] = []

    def execute(self, sql, params=None):
        wall, cpu = time.perf_counter(), cpu_seconds()
        result = self._con.execute(sql, params)
        self.timings.append((time.perf_counter() - wall, cpu_seconds() - cpu, " ".join(sql.split())))
        return result

    def __getattr__(self, name):
        return getattr(self._con, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("landing", type=Path)
    parser.add_argument("--files", type=int, help="only the first N files")
    parser.add_argument("--lake", type=Path, help="the lake's folder (emptied first); default: a temp dir")
    args = parser.parse_args()
    files = list_landing_files(args.landing)[: args.files]
    home = args.lake or Path(tempfile.mkdtemp(prefix="bench_silver_"))
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    # the warehouse's own settings (resources.py): 2 threads, DuckDB memory capped at 2 GB
    config = {"threads": 2, "memory_limit": "2GB", "temp_directory": str(home / "duckdb_tmp")}
    con = TimedConnection(lake.connect(lake.local_target(home / "lake.sqlite"), config, create=True))
    warehouse.ensure_schema(con)
    try:
        for path in files:
            con.timings.clear()
            wall, cpu = time.perf_counter(), cpu_seconds()
            ingest.load_bronze(con, path)
            bronze = time.perf_counter() - wall, cpu_seconds() - cpu
            wall, cpu = time.perf_counter(), cpu_seconds()
            report = ingest.load_silver(con, path.name)
            silver = time.perf_counter() - wall, cpu_seconds() - cpu
            print(
                f"{path.name}: {report.bronze_lines:,} lines -> {report.events:,} events, {report.duplicates:,} "
                f"duplicates, {report.quarantined:,} quarantined (balanced: {report.balanced})\n"
                f"  bronze {bronze[0]:6.2f} s wall {bronze[1]:6.2f} s CPU; silver {silver[0]:6.2f} s wall "
                f"{silver[1]:6.2f} s CPU"
            )
            for statement_wall, statement_cpu, sql in con.timings:
                if statement_wall > 0.05:
                    print(f"    {statement_wall:6.2f} {statement_cpu:6.2f}  {sql[:100]}")
    finally:
        con.close()
        if args.lake is None:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
