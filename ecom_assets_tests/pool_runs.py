"""Runs as a killed process leaves them: an instance with dagster.yaml's `warehouse` pool, a pid that
no longer runs, a STARTED run holding the slot."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from ecom_assets.resources import WAREHOUSE_POOL


@contextmanager
def pooled_instance() -> Iterator[dg.DagsterInstance]:
    """A test instance whose `warehouse` pool has one slot, as dagster.yaml configures it."""
    with dg.instance_for_test(overrides={"concurrency": {"pools": {"default_limit": 1}}}) as instance:
        instance.event_log_storage.set_concurrency_slots(WAREHOUSE_POOL, 1)
        yield instance


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def started_run(instance: dg.DagsterInstance, tags: dict[str, str] | None = None, holds_slot=True) -> dg.DagsterRun:
    """A STARTED run holding the warehouse slot, as a process killed inside a step leaves it."""
    run = instance.add_run(
        dg.DagsterRun(
            job_name="ingest_landing_file", run_id=str(uuid.uuid4()), status=dg.DagsterRunStatus.STARTED, tags=tags
        )
    )
    if holds_slot:
        claim = instance.event_log_storage.claim_concurrency_slot(WAREHOUSE_POOL, run.run_id, "bronze__events")
        assert claim.is_claimed
    return run


def pool(instance: dg.DagsterInstance):
    return instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL)
