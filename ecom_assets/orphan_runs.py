"""Runs whose process is gone: found, marked failed, their pool slots freed.

One process executes a run: `ecom-assets run` executes its runs itself, the daemon (`make dev`)
starts a run worker per run. When that process is killed (kill -9, out of memory, a reboot, a
stopped container) nothing reports the run's end: it stays STARTED and keeps its `warehouse` pool
slot, and with the pool limited to one, every later run would wait for that slot forever.

Which process executes a run: the tags `ecom-assets run` sets (`process_tags`), or else the pid
Dagster logs in an engine event once the steps start ("Executing steps in process (pid: ...)"; a
run worker also logs "Started process for run (pid: ...)"). A run is orphaned when that process no
longer runs (`processes.is_running`, which also tells a pid reused since). Only this machine's
processes can be checked: on a shared (Postgres) instance a run is judged only if its tags name
this host; a SQLite instance lives on one machine's disk, so its runs ran here, or in an earlier
container on the same volume, whose processes are gone as well.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import dagster as dg

from ecom_assets import processes

HOST_TAG, PID_TAG = "ecom/host", "ecom/pid"
PARTITION_TAG = "dagster/partition"
_IN_PROGRESS = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


def process_tags() -> dict[str, str]:
    """Tags naming the process that executes a run (this one), for runs executed in-process."""
    return {HOST_TAG: processes.HOST, PID_TAG: str(os.getpid())}


def run_label(run: dg.DagsterRun) -> str:
    """`run 1a2b3c4d (ingest_landing_file, 2019-Oct.csv)`: what a person recognises a run by."""
    partition = run.tags.get(PARTITION_TAG)
    return f"run {run.run_id[:8]} ({run.job_name}{f', {partition}' if partition else ''})"


@dataclass(frozen=True)
class RecoveredRun:
    """A run that kept its slots after its process ended, and what was done about it."""

    run: dg.DagsterRun  # as found, before recovery
    pid: int | None  # the dead process; None for a run that had ended but still held slots

    def describe(self) -> str:
        status = self.run.status.value
        if self.pid is None:
            return f"{run_label(self.run)} had ended ({status}) but still held pool slots: freed them"
        return (
            f"{run_label(self.run)} was left {status} by process {self.pid}, which is gone (killed, out of "
            "memory or a reboot): marked it failed and freed its pool slots"
        )


def _on_one_machine(instance: dg.DagsterInstance) -> bool:
    storage = instance.run_storage
    storage = getattr(storage, "_storage", storage)  # `storage: sqlite:` wraps the run storage
    return "sqlite" in type(storage).__module__


def executing_process(instance: dg.DagsterInstance, record: dg.RunRecord) -> tuple[int, float] | None:
    """(pid, a time it was known alive) of the process executing the run, or None if unknown here."""
    tags = record.dagster_run.tags
    if PID_TAG in tags:
        if tags.get(HOST_TAG) == processes.HOST or _on_one_machine(instance):
            return int(tags[PID_TAG]), record.create_timestamp.timestamp()
        return None
    if not _on_one_machine(instance):
        return None
    events = instance.get_records_for_run(
        record.dagster_run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT, ascending=False
    ).records
    for event in events:  # the latest first: the process that executes the steps
        data = event.event_log_entry.dagster_event.engine_event_data
        pid = data.metadata.get("pid") if data else None
        if pid is not None and str(pid.value).isdigit():
            return int(pid.value), event.event_log_entry.timestamp
    return None


def recover_orphan_runs(instance: dg.DagsterInstance) -> list[RecoveredRun]:
    """Mark failed every in-progress run whose process is gone, and free the pool slots (held or
    queued for) of those runs and of runs that have ended or no longer exist. Returns what it did."""
    recovered: list[RecoveredRun] = []
    for record in instance.get_run_records(filters=dg.RunsFilter(statuses=_IN_PROGRESS)):
        run = record.dagster_run
        process = executing_process(instance, record)
        if process is None or processes.is_running(*process):
            continue
        message = (
            f"Marked {'canceled' if run.status == dg.DagsterRunStatus.CANCELING else 'failed'} by ecom-assets: "
            f"the process that executed this run (pid {process[0]} on {processes.HOST}) is gone, killed "
            "or stopped by a reboot. Its pool slots were freed."
        )
        if run.status == dg.DagsterRunStatus.CANCELING:
            instance.report_run_canceled(run, message)
        else:
            instance.report_run_failed(run, message)
        _free_slots(instance, run.run_id)
        recovered.append(RecoveredRun(run, process[0]))
    if instance.event_log_storage.supports_global_concurrency_limits:
        for run_id in instance.event_log_storage.get_concurrency_run_ids():
            run = instance.get_run_by_id(run_id)
            if run is not None and not run.is_finished:
                continue
            _free_slots(instance, run_id)
            if run is not None:
                recovered.append(RecoveredRun(run, None))
    return recovered


def _free_slots(instance: dg.DagsterInstance, run_id: str) -> None:
    if instance.event_log_storage.supports_global_concurrency_limits:
        instance.event_log_storage.free_concurrency_slots_for_run(run_id)
