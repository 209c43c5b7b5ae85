"""The cluster rehearsal's backfill with 1 and with 2 Celery workers on this machine (issue 15).

    python bench/bench_cluster_backfill.py [--events 400000] [--days 61] [--workers 0 1 2]

Starts the rehearsal's services on loopback (ecom_assets_tests/cluster_services.py: Postgres, moto's S3
server, Redis), generates the files once, and for each worker count: uploads them to a fresh prefix of
the bucket, starts that many `ecom-assets worker` processes (each in its own empty folder), and times
the one-shot (`run_pipeline`: an ingest run per file, the sessions backfill over every day partition,
then the refresh with both trainings) with ECOM_EXECUTOR=celery. Prints per worker count the wall time
of the whole and of each run, and the steps each worker executed; then the speed-up. `0` workers is the
same cluster profile with ECOM_EXECUTOR=in_process (every step in the run's process): the services'
cost without the executor's.

On this machine the services, the orchestrating process and the workers share 2 cores: the figures
say what a second worker buys when the steps have a core to themselves; docs/cluster.md reads them.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dagster as dg  # noqa: E402

from ecom_assets.ecom_home import EcomPaths  # noqa: E402
from ecom_assets.generator import GeneratorConfig, generate  # noqa: E402
from ecom_assets_tests import cluster_services  # noqa: E402
from ecom_assets_tests.cluster_services import BUCKET  # noqa: E402


def _run_walls(instance: dg.DagsterInstance) -> list[tuple[str, float]]:
    walls = []
    for record in sorted(instance.get_run_records(), key=lambda r: r.storage_id):
        if record.start_time and record.end_time:
            walls.append((record.dagster_run.job_name, record.end_time - record.start_time))
    return walls


def _steps_per_worker(instance: dg.DagsterInstance) -> collections.Counter:
    counts: collections.Counter = collections.Counter()
    for run in instance.get_runs():
        for entry in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
            metadata = entry.dagster_event.event_specific_data.metadata or {}
            if entry.step_key and "Celery worker" in metadata:
                counts[metadata["Celery worker"].value] += 1
    return counts


def backfill(services, broker: str, files: Path, workers: int, root: Path) -> float:
    from ecom_assets.one_shot import init_dagster_home, run_pipeline

    prefix = f"bench{workers}"
    env = {
        **cluster_services.isolated_env(services, prefix),
        "ECOM_EXECUTOR": "celery" if workers else "in_process",
        "ECOM_CELERY_BROKER_URL": broker,
    }
    os.environ.update(env)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    s3 = services.s3()
    for f in sorted(files.iterdir()):
        s3.upload_file(str(f), BUCKET, f"{prefix}/files/landing/{f.name}")
    home = EcomPaths(root / f"home{workers}")
    os.environ["ECOM_HOME"] = str(home.home)
    os.environ["DAGSTER_HOME"] = str(root / f"dagster_home{workers}")
    with (
        cluster_services.celery_workers(env, workers, root / f"workers{workers}") if workers else nullcontext(),
        dg.DagsterInstance.from_config(init_dagster_home(home)) as instance,
    ):
        started = time.monotonic()
        outcome = run_pipeline(home, instance, log=lambda line: print(f"  {line}", flush=True))
        wall = time.monotonic() - started
        print(
            f"\n{workers} worker(s): {wall:.1f} s, {outcome.runs} runs, failed steps: {outcome.failed_steps or 'none'}"
        )
        for job, seconds in _run_walls(instance):
            print(f"  {job:<24} {seconds:7.1f} s")
        for name, count in sorted(_steps_per_worker(instance).items()):
            print(f"  {name}: {count} steps")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--days", type=int, default=61)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2], help="0: steps in the run's process")
    args = parser.parse_args()
    if missing := cluster_services.missing() or ("" if cluster_services.redis_bin() else "redis-server"):
        sys.exit(f"the rehearsal needs {missing}")
    root = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    try:
        files = root / "files"
        generate(files, GeneratorConfig(events=args.events, days=args.days))
        print(f"{args.events:,} events over {args.days} days: {', '.join(sorted(p.name for p in files.iterdir()))}")
        walls = {}
        with cluster_services.cluster_services() as services, cluster_services.redis_server() as broker:
            for count in args.workers:
                walls[count] = backfill(services, broker, files, count, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print("\nworkers  wall (s)")
    for count, wall in walls.items():
        print(f"{count:>7}  {wall:8.1f}")
    if 1 in walls and 2 in walls:
        print(f"speed-up with 2 workers: {walls[1] / walls[2]:.2f}x")


if __name__ == "__main__":
    main()
