"""The headless one-shot: ingest the new or changed landing files, rebuild everything downstream if anything is new.

What `make demo` calls after generating data and what a cron job without a Dagster daemon calls.
It recovers the runs a killed process left behind and waits for its turn at the warehouse itself,
visibly and interruptibly (warehouse_turns, orphan_runs).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import dagster as dg
from dagster._core.code_pointer import ModuleCodePointer
from dagster._core.definitions.job_base import InMemoryJob
from dagster._core.definitions.reconstruct import ReconstructableJob, ReconstructableRepository
from dagster._core.definitions.repository_definition.valid_definitions import SINGLETON_REPOSITORY_NAME
from dagster._core.execution.api import (
    ExecuteRunWithPlanIterable,
    create_execution_plan,
    execute_run,
    job_execution_iterator,
)
from dagster._core.execution.context_creation_job import (
    PlanOrchestrationContextManager,
    orchestration_context_event_generator,
)
from dagster._core.execution.execute_in_process import merge_run_tags
from dagster._core.execution.execution_result import ExecutionResult
from dagster._core.origin import JobPythonOrigin, RepositoryPythonOrigin
from dagster._core.remote_origin import RemoteJobOrigin, RemoteRepositoryOrigin
from dagster._core.workspace.load import location_origin_from_module_name

from ecom_assets import run_summary
from ecom_assets.definitions import build_definitions
from ecom_assets.ecom_home import EcomPaths
from ecom_assets.executors import runs_on_workers
from ecom_assets.file_store import file_store
from ecom_assets.jobs import LAKE_SNAPSHOT_KEEP_HOURS
from ecom_assets.lakehouse import event_days, lake
from ecom_assets.lakehouse.file_versions import LandingFileVersion, already_ingested, known_digests, versions_of
from ecom_assets.ml.feature_cutoffs import forget_built_cutoffs
from ecom_assets.ml.feature_specs import CART_TASK, PURCHASE_TASK, names
from ecom_assets.ml.tracking import outdated_contract, production_version, tracking_uri
from ecom_assets.orphan_runs import process_tags, recover_orphan_runs
from ecom_assets.partitions import landing_files
from ecom_assets.profile import cluster_config
from ecom_assets.resources import WAREHOUSE_POOL, build_resources
from ecom_assets.sensors import landing_version_tags, last_ingests, stale_session_ranges
from ecom_assets.warehouse_turns import one_run_at_a_time, wait_for_pool, watching_pool


@dataclass
class PipelineOutcome:
    runs: int = 0
    failed_steps: list[str] = field(default_factory=list)
    failed_checks: list[str] = field(default_factory=list)
    warnings: dict[str, str] = field(default_factory=dict)  # the latest warning per check
    nothing_new: bool = False  # no file to ingest and the warehouse refreshed since the last ingest: no run

    @property
    def ok(self) -> bool:
        return not self.failed_steps and not self.failed_checks


def init_dagster_home(paths: EcomPaths) -> str:
    """A persistent Dagster instance under ECOM_HOME (unless DAGSTER_HOME says otherwise); in the
    cluster profile its storage is on Postgres (dagster_cluster.yaml)."""
    home = paths.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        name = "dagster_cluster.yaml" if cluster_config() is not None else "dagster.yaml"
        with resources.as_file(resources.files("ecom_assets").joinpath(name)) as src:
            shutil.copyfile(src, config)
    os.environ["DAGSTER_HOME"] = str(home)
    return str(home)


def _collect(result: ExecutionResult, label: str, outcome: PipelineOutcome) -> None:
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


# What launched a run, in the UI's tags: the one-shot's own runs are not the sensor's or the schedule's.
LAUNCHED_BY_TAG, LAUNCHED_BY = "ecom/launched_by", "ecom-assets run"


# The code location `make dev` loads (workspace.yaml, pyproject.toml's [tool.dagster]): the one-shot's
# runs belong to its jobs, so the UI lists them on the job's page, the timeline and the run's origin.
CODE_LOCATION_NAME, DEFINITIONS_MODULE, DEFINITIONS_FUNCTION = (
    "ecom_assets",
    "ecom_assets.definitions",
    "load_definitions",
)


def job_origins(job_name: str) -> tuple[RemoteJobOrigin, JobPythonOrigin]:
    """(remote origin, Python origin) of `job_name` in the code location, as a run launched from the
    Dagster UI records them."""
    location = location_origin_from_module_name(DEFINITIONS_MODULE, None, None, CODE_LOCATION_NAME)
    remote = RemoteJobOrigin(RemoteRepositoryOrigin(location, SINGLETON_REPOSITORY_NAME), job_name)
    pointer = ModuleCodePointer(DEFINITIONS_MODULE, DEFINITIONS_FUNCTION, None)
    return remote, JobPythonOrigin(job_name, RepositoryPythonOrigin(sys.executable, pointer))


def _runnable(job: dg.JobDefinition) -> InMemoryJob | ReconstructableJob:
    """The job as the executor needs it: in memory for the in-process executor; reconstructable by name
    from the code location for any other (a Celery worker loads the definitions itself)."""
    if not runs_on_workers(job.executor_def):
        return InMemoryJob(job_def=job.as_ephemeral_job(resource_defs={}, input_values={}))
    pointer = ModuleCodePointer(DEFINITIONS_MODULE, DEFINITIONS_FUNCTION, None)
    return ReconstructableRepository(pointer, executable_path=sys.executable).get_reconstructable_job(job.name)


def execute_as_the_code_location(
    job: dg.JobDefinition,
    instance: dg.DagsterInstance,
    run_id: str,
    tags: Mapping[str, str],
    partition_key: str | None = None,
) -> ExecutionResult:
    """`job.execute_in_process`, with the run recorded as a run of the code location's job, and its steps
    on the job's executor (ecom_assets/executors.py).

    `execute_in_process` creates a run without an origin, which the UI shows on no job page, on no
    timeline, and always executes in process. This is its body (dagster 1.13: JobDefinition.
    execute_in_process and core_execute_in_process) with the origins added to the run it creates;
    with another executor the run is executed from the reconstructable job (`execute_run`).
    """
    ephemeral = job.as_ephemeral_job(resource_defs={}, input_values={})
    run_config: Mapping[str, object] = {}
    if partition_key and ephemeral.partitioned_config:
        run_config = ephemeral.partitioned_config.get_run_config_for_partition_key(partition_key)
    run_tags = merge_run_tags(job, partition_key, tags, None, instance, run_config)
    runnable = _runnable(job)
    plan = create_execution_plan(
        runnable, run_config=run_config, instance_ref=instance.get_ref() if instance.is_persistent else None
    )
    remote_origin, code_origin = job_origins(job.name)
    run = instance.create_run_for_job(
        job_def=ephemeral,
        execution_plan=plan,
        run_id=run_id,
        run_config=run_config,
        tags={**ephemeral.run_tags, **run_tags},
        remote_job_origin=remote_origin,
        job_code_origin=code_origin,
    )
    if isinstance(runnable, ReconstructableJob):
        return execute_run(runnable, run, instance)
    output_capture: dict = {}
    events = list(
        ExecuteRunWithPlanIterable(
            execution_plan=plan,
            iterator=job_execution_iterator,
            execution_context_manager=PlanOrchestrationContextManager(
                context_event_generator=orchestration_context_event_generator,
                job=runnable,
                execution_plan=plan,
                dagster_run=run,
                instance=instance,
                run_config=run_config,
                executor_defs=None,
                output_capture=output_capture,
                raise_on_error=False,
            ),
        )
    )
    return dg.ExecuteInProcessResult(
        job_def=ephemeral, event_list=events, dagster_run=instance.get_run_by_id(run_id), output_capture=output_capture
    )


# What Dagster records when Ctrl-C or SIGTERM reaches a run (in a step, or between steps).
_INTERRUPTIONS = {"KeyboardInterrupt", "DagsterExecutionInterruptedError"}


def _interrupted(result: ExecutionResult) -> bool:
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
    partition_key: str | None = None,
) -> ExecutionResult:
    """Execute `job` in this process, as a run of the code location's job, once the warehouse pool
    can give it a slot.

    Waits in `wait_for_pool` (visible, interruptible, recovering orphan runs) rather than in
    Dagster's step loop, tags the run with what launched it and with this process (so that a later
    run can tell if it is orphaned), and watches the pool while it executes. Raises
    KeyboardInterrupt when the run was interrupted (Dagster only records it in the run): the caller
    stops instead of going on.
    """
    wait_for_pool(instance, WAREHOUSE_POOL, log)
    run_id = str(uuid.uuid4())
    run_tags = {**(tags or {}), LAUNCHED_BY_TAG: LAUNCHED_BY, **process_tags()}
    with watching_pool(instance, run_id, WAREHOUSE_POOL, log):
        result = execute_as_the_code_location(job, instance, run_id, run_tags, partition_key)
    if _interrupted(result):
        raise KeyboardInterrupt(f"in run {run_id[:8]} of {job.name}")
    return result


def landing_file_versions(instance: dg.DagsterInstance, files: Sequence[Path]) -> list[LandingFileVersion]:
    """Each file's content version; a file is hashed unless an ingest run recorded its digest under its
    current stat key (size, mtime)."""
    return versions_of(files, known_digests(last_ingests(instance).values()))[0]


def select_landing_files(
    instance: dg.DagsterInstance, files: Sequence[Path], full_refresh: bool = False, log: Callable[[str], None] = print
) -> list[LandingFileVersion]:
    """The files to ingest: those whose content the newest ingest run of their name (the one-shot's or
    the landing sensor's) did not ingest, or all of them with `full_refresh`."""
    lasts = last_ingests(instance)
    versions = versions_of(files, known_digests(lasts.values()))[0]
    if full_refresh:
        log(f"full refresh: ingesting all {len(versions)} file(s) again")
        return versions
    selected = [file for file in versions if not already_ingested(file, lasts.get(file.name))]
    if skipped := len(versions) - len(selected):
        log(f"skipping {skipped} unchanged file(s), already ingested with the same content")
    return selected


# The jobs that rebuild everything downstream of silver from what is ingested.
REFRESH_JOBS = ("refresh_warehouse", "refresh_and_retrain")


def refresh_pending(instance: dg.DagsterInstance) -> bool:
    """Whether the warehouse may lag what is ingested: no refresh yet, the newest refresh did not
    succeed (failed, interrupted, still running), or an ingest succeeded after the newest successful
    refresh started (a run that stopped between its ingests and its refresh, the landing sensor)."""
    refreshes = [r for job in REFRESH_JOBS for r in instance.get_run_records(dg.RunsFilter(job_name=job), limit=1)]
    if not refreshes:
        return True
    newest = max(refreshes, key=lambda record: record.storage_id)
    if newest.dagster_run.status != dg.DagsterRunStatus.SUCCESS or newest.start_time is None:
        return True
    ingests = instance.get_run_records(
        dg.RunsFilter(job_name="ingest_landing_file", statuses=[dg.DagsterRunStatus.SUCCESS]), limit=1
    )
    return bool(ingests) and (ingests[0].end_time or float("inf")) > newest.start_time


def ingest_landing_files(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    files: Sequence[Path | LandingFileVersion],
    log: Callable[[str], None] = print,
) -> Iterator[tuple[Path, ExecutionResult]]:
    """Register each landing file as a partition and run the ingest job on it, one file at a time,
    tagged with the file's content version (`files` as paths are versioned here)."""
    paths = [f.path if isinstance(f, LandingFileVersion) else f for f in files]
    versions = {f.name: f for f in files if isinstance(f, LandingFileVersion)}
    unversioned = [path for path in paths if path.name not in versions]
    if unversioned:
        versions.update((f.name, f) for f in landing_file_versions(instance, unversioned))
    known = set(instance.get_dynamic_partitions(landing_files.name))
    new = [path.name for path in paths if path.name not in known]
    if new:
        instance.add_dynamic_partitions(landing_files.name, new)
    ingest = defs.resolve_job_def("ingest_landing_file")
    for index, path in enumerate(paths, start=1):
        log(f"[{index}/{len(paths)}] ingesting {path.name}")
        # A file gone since the listing has no version: its run records it missing.
        tags = landing_version_tags(versions[path.name]) if path.name in versions else {}
        yield (path, execute_when_free(ingest, instance, log, tags=tags, partition_key=path.name))


def build_stale_sessions(
    defs: dg.Definitions, instance: dg.DagsterInstance, log: Callable[[str], None] = print
) -> Iterator[ExecutionResult]:
    """Sessionize the days the loads changed: one run per range of consecutive stale days."""
    job = defs.resolve_job_def("build_sessions")
    for start, end, _ in stale_session_ranges(defs.resources["duckdb"]):
        log(f"sessionizing {(end - start).days} day(s) from {start} to {end - dt.timedelta(days=1)}")
        yield execute_when_free(job, instance, log, tags=event_days.partition_range_tags(start, end))


TASKS = (PURCHASE_TASK, CART_TASK)


def untrained_models(paths: EcomPaths) -> str:
    """Why this run must train before it scores, else "": a home with no production model has nothing
    to score with. (Training is otherwise off the daily path: weekly_retrain, the drift sensor.)"""
    uri = tracking_uri(paths)
    missing = [t.registered_model for t in TASKS if production_version(uri, t.registered_model) is None]
    return f"no production version of {', '.join(missing)} yet" if missing else ""


def outdated_models(paths: EcomPaths) -> str:
    """Why the production models cannot score today's features, else "": an upgrade changed the
    feature contract they were trained on. Such a home trains on its next run, even with nothing new."""
    uri = tracking_uri(paths)
    if uri == tracking_uri(paths, configured="") and not paths.mlflow_db.exists():
        return ""  # no registry yet: nothing trained, and a no-op run stays free of MLflow's start-up
    outdated = [t.registered_model for t in TASKS if outdated_contract(uri, t.registered_model, names(t.specs))]
    return f"{', '.join(outdated)} in production reads an older feature contract" if outdated else ""


def run_pipeline(
    paths: EcomPaths | None = None,
    instance: dg.DagsterInstance | None = None,
    log: Callable[[str], None] = print,
    retrain: bool = False,
    full_refresh: bool = False,
) -> PipelineOutcome:
    """Ingest the landing files not ingested as they are (all of them with `full_refresh`), then rebuild
    everything downstream of silver, unless nothing was ingested since the last successful refresh."""
    paths = (paths or EcomPaths.from_env()).ensure()
    store = file_store(paths)
    files = store.list_landing()  # the landing folder, or the bucket's landing prefix (cluster)
    if not files:
        raise FileNotFoundError(
            f"No *.csv or *.csv.gz files in {store.landing_location}. Generate data with `ecom-assets generate` "
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
        selected = select_landing_files(instance, files, full_refresh, log)
        for path, result in ingest_landing_files(defs, instance, selected, log=log):
            _collect(result, path.name, outcome)
        stale = stale_session_ranges(defs.resources["duckdb"])  # a sessions run that failed or was cut short
        outdated = outdated_models(paths)
        if not (selected or full_refresh or retrain or stale or outdated or refresh_pending(instance)):
            log("nothing new since the last run: every landing file is ingested and the warehouse refreshed")
            outcome.nothing_new = True
            return outcome
        if full_refresh:
            with defs.resources["duckdb"].get_connection() as con:
                event_days.forget_built_days(con)  # the cart features follow the session days
                forget_built_cutoffs(con)
        for result in build_stale_sessions(defs, instance, log):
            _collect(result, "build_sessions", outcome)
        why_train = untrained_models(paths) or outdated
        if why_train or retrain:
            job_name = "refresh_and_retrain"
            why = why_train or "retraining asked for"
            log(f"rebuilding everything downstream of silver and training the models ({why})")
        else:
            job_name = "refresh_warehouse"
            log("rebuilding everything downstream of silver, scoring with the production models")
        _collect(execute_when_free(defs.resolve_job_def(job_name), instance, log), job_name, outcome)
        if outcome.ok:  # what the nightly_lake_maintenance schedule does under the daemon, for cron homes
            with defs.resources["duckdb"].get_connection() as con:
                lake.expire_old_snapshots(con, LAKE_SNAPSHOT_KEEP_HOURS)
    return outcome


def _no_lake_yet(paths: EcomPaths) -> bool:
    # In the cluster profile the catalog is a Postgres database: there is always one to read.
    return cluster_config() is None and not paths.lake_catalog.exists()


def warehouse_summary(paths: EcomPaths) -> list[tuple[str, int | None]]:
    if _no_lake_yet(paths):
        return []
    with build_resources(paths)["duckdb"].read_connection() as con:
        return run_summary.table_rows(con)


def highlights(paths: EcomPaths) -> list[str]:
    """What a person wants to know after a run: the A/B verdict, the models, where the files are."""
    if _no_lake_yet(paths):
        return run_summary.highlights(None, paths)
    with build_resources(paths)["duckdb"].read_connection() as con:
        return run_summary.highlights(con, paths)
