"""The headless one-shot: register every landing file, ingest each, rebuild everything downstream.

What `make demo` calls after generating data and what a cron job without a Dagster daemon calls.
It recovers the runs a killed process left behind and waits for its turn at the warehouse itself,
visibly and interruptibly (warehouse_turns, orphan_runs).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import dagster as dg

from ecom_assets import run_summary
from ecom_assets.definitions import build_definitions
from ecom_assets.ecom_home import EcomPaths
from ecom_assets.lakehouse.landing import list_landing_files
from ecom_assets.orphan_runs import process_tags, recover_orphan_runs
from ecom_assets.partitions import landing_files
from ecom_assets.resources import WAREHOUSE_POOL, build_resources
from ecom_assets.sensors import landing_run_key, landing_sensor
from ecom_assets.warehouse_turns import one_run_at_a_time, wait_for_pool, watching_pool


@dataclass
class PipelineOutcome:
    runs: int = 0
    failed_steps: list[str] = field(default_factory=list)
    failed_checks: list[str] = field(default_factory=list)
    warnings: dict[str, str] = field(default_factory=dict)  # the latest warning per check

    @property
    def ok(self) -> bool:
        return not self.failed_steps and not self.failed_checks


def init_dagster_home(paths: EcomPaths) -> str:
    """A persistent Dagster instance under ECOM_HOME (unless DAGSTER_HOME says otherwise)."""
    home = paths.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        with resources.as_file(resources.files("ecom_assets").joinpath("dagster.yaml")) as src:
            shutil.copyfile(src, config)
    os.environ["DAGSTER_HOME"] = str(home)
    return str(home)


def _collect(result: dg.ExecuteInProcessResult, label: str, outcome: PipelineOutcome) -> None:
    outcome.runs += 1
    for event in result.all_events:
        if event.is_step_failure:
            outcome.failed_steps.append(f"{label}: {event.step_key}: {event.message}")
    for evaluation in result.get_asset_check_evaluations():
        if evaluation.passed:
            continue
        check = f"{evaluation.asset_key.to_user_string()} / {evaluation.check_name}"
        detail = evaluation.description or ""
        if evaluation.severity == dg.AssetCheckSeverity.WARN:
            outcome.warnings[check] = detail
        else:
            outcome.failed_checks.append(f"{label}: {check}: {detail}")


# Dagster's own tag names (public in the UI and GraphQL, not exported by the Python API).
RUN_KEY_TAG, SENSOR_NAME_TAG = "dagster/run_key", "dagster/sensor_name"


def landing_run_tags(path) -> dict[str, str]:
    """Tag a headless ingest as the landing sensor would, so the daemon (`make dev`) does not ingest
    the same file version again."""
    stat = path.stat()
    return {
        RUN_KEY_TAG: landing_run_key(path.name, stat.st_size, stat.st_mtime_ns),
        SENSOR_NAME_TAG: landing_sensor.name,
    }


# What Dagster records when Ctrl-C or SIGTERM reaches a run (in a step, or between steps).
_INTERRUPTIONS = {"KeyboardInterrupt", "DagsterExecutionInterruptedError"}


def _interrupted(result: dg.ExecuteInProcessResult) -> bool:
    for event in result.all_events:
        error = getattr(event.event_specific_data, "error", None) if event.is_failure else None
        while error is not None:
            if error.cls_name in _INTERRUPTIONS:
                return True
            error = error.cause
    return False


def execute_when_free(
    job: dg.JobDefinition,
    instance: dg.DagsterInstance,
    log: Callable[[str], None] = print,
    tags: dict[str, str] | None = None,
    **kwargs,
) -> dg.ExecuteInProcessResult:
    """Execute `job` in this process once the warehouse pool can give it a slot.

    Waits in `wait_for_pool` (visible, interruptible, recovering orphan runs) rather than in
    Dagster's step loop, tags the run with this process so that a later run can tell if it is
    orphaned, and watches the pool while it executes. Raises KeyboardInterrupt when the run was
    interrupted (Dagster only records it in the run): the caller stops instead of going on.
    """
    wait_for_pool(instance, WAREHOUSE_POOL, log)
    run_id = str(uuid.uuid4())
    with watching_pool(instance, run_id, WAREHOUSE_POOL, log):
        result = job.execute_in_process(
            instance=instance, raise_on_error=False, run_id=run_id, tags={**(tags or {}), **process_tags()}, **kwargs
        )
    if _interrupted(result):
        raise KeyboardInterrupt(f"in run {run_id[:8]} of {job.name}")
    return result


def ingest_landing_files(
    defs: dg.Definitions, instance: dg.DagsterInstance, files: list[Path], log: Callable[[str], None] = print
) -> Iterator[tuple[Path, dg.ExecuteInProcessResult]]:
    """Register each landing file as a partition and run the ingest job on it, one file at a time."""
    known = set(instance.get_dynamic_partitions(landing_files.name))
    new = [f.name for f in files if f.name not in known]
    if new:
        instance.add_dynamic_partitions(landing_files.name, new)
    ingest = defs.resolve_job_def("ingest_landing_file")
    for index, path in enumerate(files, start=1):
        log(f"[{index}/{len(files)}] ingesting {path.name}")
        yield (path, execute_when_free(ingest, instance, log, tags=landing_run_tags(path), partition_key=path.name))


def run_pipeline(
    paths: EcomPaths | None = None, instance: dg.DagsterInstance | None = None, log: Callable[[str], None] = print
) -> PipelineOutcome:
    paths = (paths or EcomPaths.from_env()).ensure()
    files = list_landing_files(paths.landing)
    if not files:
        raise FileNotFoundError(
            f"No *.csv or *.csv.gz files in {paths.landing}. Generate data with `ecom-assets generate` "
            "or copy REES46 / RetailRocket exports there."
        )
    if instance is None:
        init_dagster_home(paths)
        instance = dg.DagsterInstance.get()
    defs = build_definitions(paths)
    outcome = PipelineOutcome()
    with one_run_at_a_time(paths, log):
        for recovered in recover_orphan_runs(instance):
            log(recovered.describe())
        for path, result in ingest_landing_files(defs, instance, files, log=log):
            _collect(result, path.name, outcome)
        log("rebuilding everything downstream of silver")
        refresh = defs.resolve_job_def("refresh_warehouse")
        _collect(execute_when_free(refresh, instance, log), "refresh_warehouse", outcome)
    return outcome


def warehouse_summary(paths: EcomPaths) -> list[tuple[str, int | None]]:
    if not paths.warehouse.exists():
        return []
    # Same configuration as the pipeline's resource: DuckDB refuses a second, different one in-process.
    with build_resources(paths)["duckdb"].get_connection() as con:
        return run_summary.table_rows(con)


def highlights(paths: EcomPaths) -> list[str]:
    """What a person wants to know after a run: the A/B verdict, the models, where the files are."""
    if not paths.warehouse.exists():
        return run_summary.highlights(None, paths)
    with build_resources(paths)["duckdb"].get_connection() as con:
        return run_summary.highlights(con, paths)
