"""Landing -> bronze -> silver -> gold at scale, against the floor of simply reading the files.

    python bench/bench_landing_to_gold.py [--events 20000000] [--home DIR]

Generates REES46-format files (unless --home already has landing files), times a bare DuckDB scan
of them (the floor: every column parsed to its sniffed type once), then ingests every file and builds the three gold
tables in a fresh process, reporting wall time and peak RSS of each step (from os.wait4).
Targets: ingest + gold within 6x the bare scan, peak memory under 4 GB.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

GENERATE = """
from pathlib import Path
from ecom_assets.generator import GeneratorConfig, generate
generate(Path({landing!r}), GeneratorConfig(events={events}))
"""

BARE_SCAN = """
import duckdb
con = duckdb.connect(config={{"threads": 2}})
print(con.execute("SELECT count(*), max(COLUMNS(*)) FROM read_csv({pattern!r})").fetchone()[0])
"""

LANDING_TO_GOLD = """
import dagster as dg
from ecom_assets.assets.gold import DIM_USERS, FACT_USER_SESSIONS
from ecom_assets.definitions import build_definitions
from ecom_assets.lakehouse.landing import list_landing_files
from ecom_assets.ecom_home import EcomPaths
from ecom_assets.one_shot import ingest_landing_files

paths = EcomPaths.from_env().ensure()
defs = build_definitions(paths)
with dg.instance_for_test() as instance:
    for path, result in ingest_landing_files(defs, instance, list_landing_files(paths.landing)):
        assert result.success, path
    gold = dg.materialize(
        defs.assets, instance=instance, resources=defs.resources,
        selection=[FACT_USER_SESSIONS, DIM_USERS],
    )
    assert gold.success
"""


def measured(code: str, env: dict[str, str]) -> tuple[float, float]:
    """Run ``code`` in a fresh interpreter; return (wall seconds, peak RSS in GB)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"step failed:\n{stderr.decode()[-3000:]}")
    return wall, usage.ru_maxrss / 1024**2  # ru_maxrss is in KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000_000)
    parser.add_argument("--home", type=Path, help="reuse this ECOM_HOME (its landing files) instead of a temp one")
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="bench_ecom_"))
    landing = home / "landing"
    env = {**os.environ, "ECOM_HOME": str(home), "MLFLOW_SKIP_PIP_REQUIREMENTS_CHECK": "true"}
    try:
        if not list(landing.glob("*.csv*")):
            wall, rss = measured(GENERATE.format(landing=str(landing), events=args.events), env)
            print(f"generate {args.events:,} events: {wall:7.1f} s, peak RSS {rss:.2f} GB")
        for stale in (home / "warehouse.duckdb", home / "warehouse.duckdb.wal"):
            stale.unlink(missing_ok=True)
        size = sum(f.stat().st_size for f in landing.glob("*.csv*")) / 1024**3
        scan_wall, scan_rss = measured(BARE_SCAN.format(pattern=str(landing / "*.csv*")), env)
        print(f"bare scan of {size:.2f} GB of CSV:  {scan_wall:7.1f} s, peak RSS {scan_rss:.2f} GB")
        wall, rss = measured(LANDING_TO_GOLD, env)
        ratio = wall / scan_wall
        print(
            f"landing -> gold:          {wall:7.1f} s, peak RSS {rss:.2f} GB "
            f"({ratio:.1f}x the bare scan; target <= 6x, < 4 GB: "
            f"{'met' if ratio <= 6 and rss < 4 else 'NOT met'})"
        )
    finally:
        if args.home is None:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
