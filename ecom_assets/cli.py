"""`ecom-assets`: generate synthetic landing files, run the whole graph headless, prepare DAGSTER_HOME."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import sys
from pathlib import Path

from ecom_assets.ecom_home import EcomPaths


def _generate(args: argparse.Namespace) -> int:
    from ecom_assets.file_store import LANDING, file_store
    from ecom_assets.generator import GeneratorConfig, generate

    config = GeneratorConfig(
        events=args.events,
        days=args.days,
        seed=args.seed,
        start=args.start,
        file_per=args.per,
        treatment_effect=args.treatment_effect,
        drift_from_day=args.drift_from_day,
        gzip=args.gzip,
    )
    truth = Path(args.truth) if args.truth else None
    if args.out:
        files, out = generate(Path(args.out), config, truth_dir=truth), args.out
    else:  # the landing folder, or (cluster profile) the bucket's landing prefix: written, then uploaded
        store = file_store(EcomPaths.from_env())
        with store.output(LANDING) as landing:
            files = generate(landing, config, truth_dir=truth)
        out = store.landing_location
    print(f"wrote {len(files)} file(s) to {out}")
    if args.truth:
        print(f"wrote the hidden truth (users' traits, sessions' intent and checkout odds) to {args.truth}")
    return 0


INTERRUPTED = 130  # the shell's code for a command stopped by Ctrl-C


def _interrupt(signum: int, frame) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _run(args: argparse.Namespace) -> int:
    # SIGTERM (`kill`, `timeout`, a container stop) ends a run as Ctrl-C does. While a run executes
    # Dagster handles both, then puts this handler back for both.
    previous = {signum: signal.signal(signum, _interrupt) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        return _run_and_report(EcomPaths.from_env(), full_refresh=args.full_refresh, retrain=args.retrain)
    except KeyboardInterrupt as exc:
        print(
            f"\ninterrupted{f' ({exc})' if str(exc) else ''}: stopped. A run cut short is marked failed; "
            "`ecom-assets run` again ingests what is not ingested yet and rebuilds (re-runs are idempotent).",
            file=sys.stderr,
        )
        return INTERRUPTED
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _run_and_report(paths: EcomPaths, full_refresh: bool = False, retrain: bool = False) -> int:
    from ecom_assets.one_shot import highlights, run_pipeline, warehouse_summary
    from ecom_assets.resources import build_resources

    try:
        outcome = run_pipeline(paths, full_refresh=full_refresh, retrain=retrain)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    warehouse = build_resources(paths)["duckdb"].target.describe()
    if outcome.nothing_new:
        print(f"warehouse: {warehouse} is up to date; `ecom-assets run --full-refresh` rebuilds it anyway.")
        return 0
    print(f"\nECOM_HOME: {paths.home}\nwarehouse: {warehouse}\n")
    for table, rows in warehouse_summary(paths):
        print(f"  {table:<30} {'(not built)' if rows is None else f'{rows:>12,} rows'}")
    print()
    for line in highlights(paths):
        print(line)
    for check, detail in outcome.warnings.items():
        print(f"warning: {check}: {detail}")
    for failure in outcome.failed_steps + outcome.failed_checks:
        print(f"FAILED: {failure}", file=sys.stderr)
    print(
        f"\n{outcome.runs} run(s): {'all succeeded' if outcome.ok else 'some FAILED (see above)'}."
        " Explore them with `make dev` (Dagster UI on http://127.0.0.1:3000)."
    )
    return 0 if outcome.ok else 1


def _init_home(args: argparse.Namespace) -> int:
    import dagster as dg

    from ecom_assets.one_shot import init_dagster_home
    from ecom_assets.orphan_runs import recover_orphan_runs

    print(init_dagster_home(EcomPaths.from_env().ensure()))
    # `make dev` starts here: runs a reboot or a kill left STARTED would hold the warehouse pool.
    with dg.DagsterInstance.get() as instance:
        for recovered in recover_orphan_runs(instance):
            print(recovered.describe(), file=sys.stderr)
    return 0


def _dev(args: argparse.Namespace) -> int:
    from ecom_assets.dev_server import dagster_dev_command, run

    return run(dagster_dev_command(args.workspace, args.host, args.port))


def _serve(args: argparse.Namespace) -> int:
    # One OpenMP thread per request: concurrent requests already use the cores, and OpenMP's
    # spinning workers on a busy machine make one 10k-row prediction many times slower.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from ecom_assets.serving.api import serve

    serve(host=args.host, port=args.port, log_level=args.log_level)
    return 0


def _worker(args: argparse.Namespace) -> int:
    """A Celery worker for the `celery` executor: Celery's own worker over ecom_assets.celery_app, one
    step at a time per process (--concurrency), in the foreground, replacing this process."""
    from ecom_assets.executors import celery_urls

    celery_urls()  # a missing broker fails here, naming the variable
    argv = [sys.executable, "-m", "celery", "-A", "ecom_assets.celery_app", "worker", "--queues", "dagster"]
    argv += ["--hostname", args.name, "--concurrency", str(args.concurrency), "--loglevel", args.log_level]
    os.execv(sys.executable, argv)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ecom-assets", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="write synthetic REES46-format files into the landing folder")
    gen.add_argument("--events", type=int, default=400_000, help="approximate rows, duplicates included")
    gen.add_argument("--days", type=int, default=61)
    gen.add_argument("--seed", type=int, default=42)
    gen.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2019, 10, 1))
    gen.add_argument("--per", choices=["month", "day"], default="month", help="one file per month or per day")
    gen.add_argument(
        "--treatment-effect",
        type=float,
        default=0.05,
        help="per cart event of a treated user's session, the chance that the new checkout saves the basket",
    )
    gen.add_argument("--drift-from-day", type=int, default=None, help="shift behaviour from this day on")
    gen.add_argument("--gzip", action="store_true", help="write .csv.gz files")
    gen.add_argument(
        "--out", default=None, help="output folder (default: $ECOM_HOME/landing; cluster profile: the bucket's)"
    )
    gen.add_argument(
        "--truth",
        default=None,
        metavar="DIR",
        help="also write the world's hidden variables (Parquet + JSON, never ingested) here, for an oracle",
    )
    gen.set_defaults(func=_generate)

    run = sub.add_parser(
        "run", help="ingest new or changed landing files and materialize the whole graph in-process (if anything new)"
    )
    run.add_argument(
        "--full-refresh", action="store_true", help="ingest every landing file again and rebuild, even if unchanged"
    )
    run.add_argument(
        "--retrain", action="store_true", help="also retrain both models (promoted only if they beat production)"
    )
    run.set_defaults(func=_run)

    init = sub.add_parser(
        "init-home",
        help="create DAGSTER_HOME (default $ECOM_HOME/dagster_home), print it, and fail the runs a killed process left",
    )
    init.set_defaults(func=_init_home)

    dev = sub.add_parser(
        "dev", help="`dagster dev` (UI, daemon, code server) that SIGTERM, SIGINT and SIGHUP stop: `make dev` runs it"
    )
    dev.add_argument("--workspace", "-w", default="workspace.yaml")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=3000)
    dev.set_defaults(func=_dev)

    worker = sub.add_parser(
        "worker", help="a Celery worker for the steps of runs launched with ECOM_EXECUTOR=celery (docs/cluster.md)"
    )
    worker.add_argument("--name", default="ecom@%h", help="the worker's name (%%h: this host's name)")
    worker.add_argument("--concurrency", type=int, default=1, help="steps at a time (one process each)")
    worker.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    worker.set_defaults(func=_worker)

    serve = sub.add_parser("serve", help="the scoring API (FastAPI + uvicorn) over the production models")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    serve.set_defaults(func=_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
