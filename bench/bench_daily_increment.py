"""What one more day costs: the daily cycle on a big warehouse against the same day on a 1-day warehouse.

    python bench/bench_daily_increment.py [--events 20000000] [--days 60] [--day-events 300000]
    python bench/bench_daily_increment.py --smoke      # 200k events over 60 days, a 3,333-event day

Issue 12, "a day's data costs a day's work": landing one day's file and running the daily cycle
(`ecom-assets run`, i.e. one_shot.run_pipeline: ingest what is in landing, then refresh everything
downstream of silver) should cost about what it costs on a warehouse holding one day, not what a
rebuild of the history costs. Target: at most 3x the 1-day warehouse.

Two ECOM_HOMEs under a temp dir, each with its own Dagster instance (DAGSTER_HOME inside it) and MLflow
registry (the local default under ECOM_HOME):

  big    N events over D days from 2019-10-01 (`ecom-assets generate` defaults: one file per month,
         `--history-per day` for one file per day);
  1-day  only the last day of that history (2019-10-01 + D - 1), N / D events, one day file, and a copy
         of the big home's MLflow registry (taken after the big home's cycles): the same production
         models, so both homes run the same daily job (`refresh_warehouse`: score and report, no
         training). One day of history cannot train models of its own.

Each is built with run_pipeline (the big one then gets a no-op run: nothing new landed), then gets the
new day file:
M events dated the day after the history (2019-10-01 + D), generated once by the generator
(GeneratorConfig(days=1, start=<that day>, file_per="day"), another seed: returning user ids, new
sessions) and copied into both landing folders. Every run is a fresh process
(`run_pipeline(EcomPaths.from_env())`, as `ecom-assets run` calls it), timed from its log lines:

  setup    before the first ingest (definitions, the run lock, orphan-run recovery)
  files    ingest runs in the cycle (the landing files run_pipeline selected)
  ingest   all of them
  new file the ingest run of the new day file alone
  sessions the build_sessions runs of the days the files changed (and the day on either side)
  refresh  the refresh run (everything downstream of silver; its job is printed: refresh_warehouse,
           or refresh_and_retrain when the home has no production model yet)
  total    run_pipeline, start to end; `process` adds interpreter start and imports
The new day's place in the week matters to the purchase features (ml/feature_cutoffs.py): with the
default 60 days the new day is 2019-11-30, a Saturday, inside the forward cutoff's week (no purchase row
computed or scored); `--days 61` makes it 2019-12-01, the Sunday that closes the week (the new forward
and test cutoffs computed and scored: the weekly cost). The step table at the end, from the home's
Dagster instance, says where the refresh time went. Peak RSS is the child's (os.wait4). Only public
functions of the package are used (generator, EcomPaths, one_shot.run_pipeline, ml.tracking.rehome_registry),
so the script does not depend on how the warehouse is stored.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

START = dt.date(2019, 10, 1)  # the generator's default start
HISTORY_SEED, PREVIOUS_DAY_SEED, NEW_DAY_SEED = 42, 43, 44

# One daily cycle, as `ecom-assets run` does it, timed from run_pipeline's own log lines. Afterwards the
# slowest steps of the refresh run, from the Dagster instance (best effort: printed as-is if it fails).
RUN = r"""
import datetime as dt, json, time
t0, began = time.perf_counter(), dt.datetime.now(dt.timezone.utc)
from ecom_assets.ecom_home import EcomPaths
from ecom_assets.one_shot import run_pipeline
imported = time.perf_counter()
marks = []
outcome = run_pipeline(EcomPaths.from_env(), log=lambda message: marks.append((time.perf_counter(), str(message))))
end = time.perf_counter()
refresh_job, steps = None, {}
try:
    import dagster as dg
    from ecom_assets.one_shot import init_dagster_home
    init_dagster_home(EcomPaths.from_env())  # the instance run_pipeline used
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_run_records(filters=dg.RunsFilter(created_after=began))  # this cycle's, newest first
        refresh = [r.dagster_run for r in runs if r.dagster_run.job_name.startswith("refresh")]
        if refresh:
            refresh_job = refresh[0].job_name
            success = dg.DagsterEventType.STEP_SUCCESS
            for event in instance.get_records_for_run(refresh[0].run_id, of_type=success, limit=10_000).records:
                entry = event.event_log_entry
                steps[entry.step_key] = entry.dagster_event.event_specific_data.duration_ms / 1000
        elif runs:
            steps = {f"(no refresh run among {sorted({r.dagster_run.job_name for r in runs})})": 0.0}
except Exception as exc:
    steps = {f"(step times unavailable: {exc!r})": 0.0}
print(json.dumps({
    "imports": imported - t0, "start": imported, "end": end, "marks": marks, "runs": outcome.runs,
    "failed_steps": outcome.failed_steps, "failed_checks": outcome.failed_checks,
    "refresh_job": refresh_job, "steps": steps,
}))
"""

INGESTING = re.compile(r"\[\d+/\d+\] ingesting (?P<name>.+)$")
REBUILDING = "rebuilding everything downstream of silver"  # a prefix: the message goes on
SESSIONIZING = "sessionizing "  # a prefix: one message per range of stale days


@dataclass
class Cycle:
    """One run_pipeline in a fresh process."""

    process: float
    peak_rss_gb: float
    total: float
    setup: float | None = None
    ingest: float | None = None
    new_file: float | None = None
    sessions: float | None = None
    refresh: float | None = None
    files: int = 0
    refresh_job: str | None = None  # None: no refresh ran
    failed: list[str] = field(default_factory=list)
    steps: dict[str, float] = field(default_factory=dict)


def run_cycle(home: Path, new_file: str | None = None) -> Cycle:
    env = {
        **os.environ,
        "ECOM_HOME": str(home),
        "DAGSTER_HOME": str(home / "dagster_home"),
        "MLFLOW_TRACKING_URI": "",  # blank: the local default under ECOM_HOME, never the developer's registry
        "MLFLOW_SKIP_PIP_REQUIREMENTS_CHECK": "true",
    }
    with tempfile.TemporaryFile() as stderr:  # stdout is read to the end, then os.wait4 keeps the rusage
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", RUN], env=env, stdout=subprocess.PIPE, stderr=stderr, cwd=home)
        stdout = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        process = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        proc.stdout.close()
        if proc.returncode != 0:
            stderr.seek(0)
            sys.exit(f"run_pipeline failed in {home}:\n{stderr.read().decode()[-4000:]}")
    report = json.loads(stdout.decode().strip().splitlines()[-1])
    cycle = Cycle(
        process=process,
        peak_rss_gb=peak_rss_gb(usage),
        total=report["end"] - report["start"],
        failed=report["failed_steps"] + report["failed_checks"],
        steps=report["steps"],
        refresh_job=report["refresh_job"],
    )
    ingests = [(t, m["name"]) for t, message in report["marks"] if (m := INGESTING.match(message))]
    rebuild = next((t for t, message in report["marks"] if message.startswith(REBUILDING)), None)
    cycle.files = len(ingests)
    if ingests or rebuild is not None or not report["runs"]:  # else run_pipeline's log lines changed: totals only
        first = ingests[0][0] if ingests else None
        sessions = next((t for t, message in report["marks"] if message.startswith(SESSIONIZING)), None)
        after_ingests = sessions or rebuild or report["end"]
        cycle.setup = (first or after_ingests) - report["start"]
        cycle.ingest = after_ingests - first if first else 0.0
        cycle.sessions = (rebuild or report["end"]) - sessions if sessions is not None else 0.0
        cycle.refresh = report["end"] - rebuild if rebuild is not None else 0.0
        ends = [t for t, _ in ingests[1:]] + [after_ingests]
        cycle.new_file = next((end - t for (t, name), end in zip(ingests, ends) if name == new_file), None)
    return cycle


def peak_rss_gb(usage) -> float:
    return usage.ru_maxrss / 1024**2  # ru_maxrss is in KiB on Linux


def generate(out: Path, events: int, days: int, start: dt.date, seed: int, per: str) -> list[Path]:
    from ecom_assets.generator import GeneratorConfig
    from ecom_assets.generator import generate as write_files

    return write_files(out, GeneratorConfig(events=events, days=days, start=start, seed=seed, file_per=per))


def copy_into_landing(file: Path, home: Path) -> None:
    landing = home / "landing"
    landing.mkdir(parents=True, exist_ok=True)
    tmp = landing / f".{file.name}.part"  # not a landing file name: a watching sensor never sees half a file
    shutil.copyfile(file, tmp)
    tmp.rename(landing / file.name)


def copy_registry(source: Path, target: Path) -> None:
    """The big home's MLflow registry (its production models) into the 1-day home, paths rewritten: a day
    of history cannot train, and without models the 1-day home would neither score nor report drift."""
    from ecom_assets.ml.tracking import rehome_registry

    shutil.copyfile(source / "mlflow.db", target / "mlflow.db")
    shutil.copytree(source / "mlartifacts", target / "mlartifacts")
    rehome_registry(target / "mlflow.db", str(source), str(target))  # artifact URIs and sources name the home


def fmt(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000_000, help="events in the big warehouse's history")
    parser.add_argument("--days", type=int, default=60, help="days of history")
    parser.add_argument("--day-events", type=int, default=300_000, help="events in the new day's file")
    parser.add_argument("--history-per", choices=["month", "day"], default="month", help="history files per ...")
    parser.add_argument("--smoke", action="store_true", help="200k events over 60 days, a 3,333-event day (minutes)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (both ECOM_HOMEs) and print it")
    args = parser.parse_args()
    if args.smoke:
        args.events, args.days = 200_000, 60
        args.day_events = args.events // args.days
    root = Path(tempfile.mkdtemp(prefix="bench_increment_"))
    big, one_day, staging = root / "big", root / "one_day", root / "new_day"
    previous_day, new_day = START + dt.timedelta(days=args.days - 1), START + dt.timedelta(days=args.days)
    try:
        t = time.perf_counter()
        history = generate(big / "landing", args.events, args.days, START, HISTORY_SEED, args.history_per)
        previous = generate(one_day / "landing", args.events // args.days, 1, previous_day, PREVIOUS_DAY_SEED, "day")
        (new_file,) = generate(staging, args.day_events, 1, new_day, NEW_DAY_SEED, "day")
        print(
            f"generated in {time.perf_counter() - t:.1f} s: big = {args.events:,} events over {args.days} days "
            f"from {START} ({len(history)} file(s)); 1-day = {args.events // args.days:,} events on "
            f"{previous_day} ({previous[0].name}); new day = {args.day_events:,} events on {new_day} ({new_file.name})"
        )
        cycles: dict[tuple[str, str], Cycle] = {}
        for label, home in (("big", big), ("1-day", one_day)):
            if label == "1-day":
                copy_registry(big, one_day)
            cycles[label, "build"] = run_cycle(home)
            if label == "big":
                cycles[label, "no-op"] = run_cycle(home)
            copy_into_landing(new_file, home)
            cycles[label, "increment"] = run_cycle(home, new_file.name)
            print(f"{label} warehouse measured", flush=True)
        report(cycles, args, new_file.name)
        if args.keep:
            print(f"\nkept: {root}")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


def report(cycles: dict[tuple[str, str], Cycle], args: argparse.Namespace, new_file: str) -> None:
    print(
        f"\n{'warehouse':<9} {'run':<9} {'files':>5} {'setup':>6} {'ingest':>7} {'new file':>8} {'sessions':>8} "
        f"{'refresh':>8} "
        f"{'total':>7} {'process':>8} {'peak RSS GB':>11}  refresh job"
    )
    for (label, run), c in cycles.items():
        print(
            f"{label:<9} {run:<9} {c.files:>5} {fmt(c.setup):>6} {fmt(c.ingest):>7} {fmt(c.new_file):>8} "
            f"{fmt(c.sessions):>8} {fmt(c.refresh):>8} {fmt(c.total):>7} {fmt(c.process):>8} "
            f"{c.peak_rss_gb:11.2f}  {c.refresh_job or '-'}"
        )
    print("(seconds; 'new file' is the ingest run of", new_file, "alone, 'total' is run_pipeline start to end)")
    big, small = cycles["big", "increment"], cycles["1-day", "increment"]
    ratio = big.total / small.total
    print(
        f"\nincrement into big / into 1-day warehouse: {ratio:.1f}x total "
        f"(target <= 3x: {'met' if ratio <= 3 else 'NOT met'})"
    )
    for name in ("new_file", "sessions", "refresh"):
        a, b = getattr(big, name), getattr(small, name)
        if a is not None and b:
            print(f"  {name.replace('_', ' ')}: {a / b:.1f}x ({a:.1f} s / {b:.1f} s)")
    if big.refresh_job != small.refresh_job:
        print(f"  NOT like for like: the big warehouse ran {big.refresh_job}, the 1-day one {small.refresh_job}")
    print(f"increment into big / full build of big: {big.total / cycles['big', 'build'].total:.2f}x")
    noop = cycles["big", "no-op"]
    print(f"no-op run on big: {noop.total:.1f} s run_pipeline, {noop.process:.1f} s with the process start")
    for (label, run), c in cycles.items():
        for failure in c.failed:
            print(f"warning: {label} {run}: {failure}")
    print(f"\nslowest refresh steps, increment into big (1-day in brackets; {args.events:,} events):")
    for step, seconds in sorted(big.steps.items(), key=lambda kv: -kv[1])[:10]:
        print(f"  {step:<60} {seconds:7.1f} s  ({small.steps.get(step, float('nan')):.1f} s)")
    if big.steps and big.refresh:
        steps = sum(big.steps.values())
        print(
            f"  all {len(big.steps)} steps: {steps:.1f} s; the rest of the refresh, {big.refresh - steps:.1f} s, "
            "is the run around them (start, step launches, event writes)"
        )


if __name__ == "__main__":
    main()
