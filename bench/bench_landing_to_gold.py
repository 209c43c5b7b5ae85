"""Landing -> bronze -> silver -> gold at scale, against the floor of simply reading the files and
against the plain-DuckDB script a user would write instead.

    python bench/bench_landing_to_gold.py [--events 20000000] [--home DIR]

Generates REES46-format files (unless --home already has landing files), then runs, one after the
other on the same files, each in a fresh process:

  floor     a bare DuckDB scan of the files (every column parsed to its sniffed type once);
  baseline  bench/plain_duckdb_baseline.py: typed read_csv + SELECT DISTINCT, 30-minute LAG
            sessionization and a users table, into a fresh DuckDB file in a temp dir;
  least     the same script with --lake --least-work: the least the issue's load asks for (typed read with
            rejects stored, repeats by hash, an event date, into a DuckLake), sessions and users; no
            bronze, no line numbers, no checks, no Dagster: a lower bound for the project;
  project   every file ingested (bronze, silver, checks), then the two gold tables (sessions, users).

It prints wall time, CPU time (user + sys) and peak RSS of each (from os.wait4) and the ratios
project / floor and project / baseline. On a shared machine wall time grows with the others' load;
CPU time much less, so compare versions by it when the machine is not idle.
Targets: project within 8x the floor and faster than the baseline, peak memory under 4 GB.
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
from ecom_assets.assets.gold import DIM_USERS
from ecom_assets.definitions import build_definitions
from ecom_assets.lakehouse.landing import list_landing_files
from ecom_assets.ecom_home import EcomPaths
from ecom_assets.one_shot import build_stale_sessions, ingest_landing_files

paths = EcomPaths.from_env().ensure()
defs = build_definitions(paths)
with dg.instance_for_test() as instance:
    for path, result in ingest_landing_files(defs, instance, list_landing_files(paths.landing)):
        assert result.success, path
    for result in build_stale_sessions(defs, instance):  # the sessions of every day, one run per range
        assert result.success
    gold = dg.materialize(defs.assets, instance=instance, resources=defs.resources, selection=[DIM_USERS])
    assert gold.success
"""


BASELINE = Path(__file__).with_name("plain_duckdb_baseline.py")


def measured(code: str | list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """Run ``code`` (Python source, or a script and its arguments) in a fresh interpreter; return
    (wall seconds, peak RSS in GB, CPU seconds: user + sys)."""
    argv = ["-c", textwrap.dedent(code)] if isinstance(code, str) else code
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, *argv], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"step failed:\n{stderr.decode()[-3000:]}")
    return wall, usage.ru_maxrss / 1024**2, usage.ru_utime + usage.ru_stime  # ru_maxrss is in KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000_000)
    parser.add_argument("--home", type=Path, help="reuse this ECOM_HOME (its landing files) instead of a temp one")
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="bench_ecom_"))
    landing = home / "landing"
    scratch = Path(tempfile.mkdtemp(prefix="bench_baseline_"))  # the baseline's fresh DuckDB file
    env = {**os.environ, "ECOM_HOME": str(home), "MLFLOW_SKIP_PIP_REQUIREMENTS_CHECK": "true"}
    try:
        if not list(landing.glob("*.csv*")):
            wall, rss, _ = measured(GENERATE.format(landing=str(landing), events=args.events), env)
            print(f"generate {args.events:,} events: {wall:7.1f} s, peak RSS {rss:.2f} GB")
        for stale in (home / "lake.sqlite", home / "lake.sqlite-wal", home / "lake.sqlite-shm"):
            stale.unlink(missing_ok=True)
        shutil.rmtree(home / "lake", ignore_errors=True)
        files = sorted(landing.glob("*.csv*"))
        size = sum(f.stat().st_size for f in files) / 1024**3
        print(f"{len(files)} landing file(s), {size:.2f} GB of CSV in {landing}")
        scan = measured(BARE_SCAN.format(pattern=str(landing / "*.csv*")), env)
        baseline = measured([str(BASELINE), *map(str, files), "--db", str(scratch / "baseline.duckdb")], env)
        least = measured(
            [str(BASELINE), *map(str, files), "--db", str(scratch / "least.sqlite"), "--lake", "--least-work"], env
        )
        project = measured(LANDING_TO_GOLD, env)
        print(f"\n{'step':<48} {'wall s':>8} {'CPU s':>8} {'peak RSS GB':>12} {'x floor':>8}")
        for label, (wall, rss, cpu) in (
            ("floor: bare typed scan of the files", scan),
            ("baseline: plain DuckDB script (sessions, users)", baseline),
            ("least work: the project's lower bound", least),
            ("project: landing -> bronze -> silver -> gold", project),
        ):
            print(f"{label:<48} {wall:8.1f} {cpu:8.1f} {rss:12.2f} {wall / scan[0]:8.1f}")
        ratio = project[0] / scan[0]
        print(
            f"\nproject / floor:    {ratio:5.1f}x (target <= 8x and peak RSS < 4 GB: "
            f"{'met' if ratio <= 8 and project[1] < 4 else 'NOT met'})"
        )
        print(f"project / baseline: {project[0] / baseline[0]:5.1f}x wall, {project[1] / baseline[1]:5.1f}x peak RSS")
        print(f"least work / baseline: {least[0] / baseline[0]:5.2f}x wall (below 1: room for the project to win)")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if args.home is None:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
