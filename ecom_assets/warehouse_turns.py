"""Taking turns at the warehouse without hanging: the run lock, the pool wait and the pool watch.

Runs that write the warehouse take turns through the `warehouse` pool (dagster.yaml: limit 1).
Dagster's own wait for a pool slot, inside a run, only logs at DEBUG, spins a core, and honours
Ctrl-C or SIGTERM only once it gets the slot; and a slot kept by a killed run is never given back
(orphan_runs). So `ecom-assets run` does the waiting itself, before each run:

- `one_run_at_a_time`: one `ecom-assets run` per ECOM_HOME; a second one waits for the first to end
  rather than interleaving with it step by step (each waiting in Dagster's spin for the other).
- `wait_for_pool`: until the pool has a free slot, recovering orphan runs on every look, saying
  who holds the slot, sleeping in between: Ctrl-C and SIGTERM stop it at once.
- `watching_pool`: while a run executes, if one of its steps still has to wait (a run of the
  daemon took the slot between two steps), say so at INFO and recover a holder that dies meanwhile.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import dagster as dg

from ecom_assets import processes
from ecom_assets.ecom_home import EcomPaths
from ecom_assets.orphan_runs import recover_orphan_runs, run_label

RUN_LOCK_FILE = "ecom-assets-run.lock"  # in ECOM_HOME; holds the pid of the `ecom-assets run` running


@contextmanager
def one_run_at_a_time(
    paths: EcomPaths, log: Callable[[str], None], poll_seconds: float = 1.0, report_every_seconds: float = 30.0
) -> Iterator[None]:
    """Hold ECOM_HOME's run lock while the block runs, waiting for it first. The kernel releases
    the lock when its process ends, however it ends: nothing is left to clean up after a kill."""
    with open(paths.home / RUN_LOCK_FILE, "a+") as handle:
        started, reported_at = time.monotonic(), None
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                pass
            now = time.monotonic()
            if reported_at is None or now - reported_at >= report_every_seconds:
                reported_at = now
                handle.seek(0)
                pid = handle.read().strip()
                holder = processes.describe(int(pid)) if pid.isdigit() else "another process"
                log(
                    f"waiting for the `ecom-assets run` of {holder} to finish with {paths.home} "
                    f"({now - started:.0f} s so far; Ctrl-C stops)"
                )
            time.sleep(poll_seconds)
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def pool_holders(info) -> list[str]:
    """Run ids that keep `info`'s pool from giving a slot now (holding or queued), [] when one is free.

    `info` is the storage's ConcurrencyKeyInfo. A pool without a limit never blocks; nor does one
    with a default limit whose slots Dagster has not created yet (it does on the first claim).
    """
    if info.limit is None or (info.slot_count == 0 and info.limit > 0):
        return []
    assigned = [step for step in info.pending_steps if step.assigned_timestamp is not None]
    queued = [step for step in info.pending_steps if step.assigned_timestamp is None]
    if len(assigned) < info.slot_count and not queued:
        return []
    return list(dict.fromkeys(step.run_id for step in assigned + queued))


def _describe_runs(instance: dg.DagsterInstance, run_ids: list[str]) -> str:
    described = []
    for run_id in run_ids[:3]:
        run = instance.get_run_by_id(run_id)
        if run is None:
            described.append(f"run {run_id[:8]}")
            continue
        described.append(f"{run_label(run)} {run.status.value}")
    more = f" and {len(run_ids) - 3} more" if len(run_ids) > 3 else ""
    return ", ".join(described) + more


def wait_for_pool(
    instance: dg.DagsterInstance,
    pool: str,
    log: Callable[[str], None],
    poll_seconds: float = 1.0,
    report_every_seconds: float = 30.0,
) -> None:
    """Return once `pool` can give a slot at once. Each look first recovers orphan runs (telling
    `log`), since a holder may die while we wait. A KeyboardInterrupt (Ctrl-C, or SIGTERM as the CLI
    maps it) ends the wait between two looks."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return
    started, reported_at = time.monotonic(), None
    while True:
        for recovered in recover_orphan_runs(instance):
            log(recovered.describe())
        info = storage.get_concurrency_info(pool)
        holders = pool_holders(info)
        if not holders and info.limit != 0:
            return
        now = time.monotonic()
        if reported_at is None or now - reported_at >= report_every_seconds:
            reported_at = now
            why = (
                f"taken by {_describe_runs(instance, holders)}"
                if holders
                else "whose limit is 0 (raise it in the Dagster UI: Deployment > Concurrency)"
            )
            log(f"waiting for a slot of the '{pool}' pool, {why} ({now - started:.0f} s so far; Ctrl-C stops)")
        time.sleep(poll_seconds)


@contextmanager
def watching_pool(
    instance: dg.DagsterInstance,
    run_id: str,
    pool: str,
    log: Callable[[str], None],
    poll_seconds: float = 2.0,
    report_every_seconds: float = 30.0,
) -> Iterator[None]:
    """While the block executes run `run_id`: whenever one of its steps waits for `pool`, report who
    holds it and recover orphan runs, so that a holder dying meanwhile cannot stall the step."""
    storage = instance.event_log_storage
    stop = threading.Event()

    def watch() -> None:
        waiting_since = reported_at = None
        while not stop.wait(poll_seconds):
            try:
                info = storage.get_concurrency_info(pool)
                waiting = any(s.run_id == run_id and s.assigned_timestamp is None for s in info.pending_steps)
                # With a distributed executor a run's own steps queue for the slot one of them holds:
                # that is its turn-taking, not a wait on somebody else.
                if not waiting or any(s.run_id == run_id and s.assigned_timestamp for s in info.pending_steps):
                    waiting_since = reported_at = None
                    continue
                for recovered in recover_orphan_runs(instance):
                    log(recovered.describe())
                now = time.monotonic()
                waiting_since = waiting_since or now
                if reported_at is None or now - reported_at >= report_every_seconds:
                    reported_at = now
                    holders = [h for h in pool_holders(storage.get_concurrency_info(pool)) if h != run_id]
                    log(
                        f"run {run_id[:8]} waits for a slot of the '{pool}' pool, taken by "
                        f"{_describe_runs(instance, holders) or 'nobody any more'} ({now - waiting_since:.0f} s so far)"
                    )
            except Exception as exc:  # a watch must never break the run it watches
                log(f"pool watch: {type(exc).__name__}: {exc}")

    if not storage.supports_global_concurrency_limits:
        yield
        return
    thread = threading.Thread(target=watch, name=f"pool-watch-{run_id[:8]}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
