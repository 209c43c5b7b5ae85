"""Opening the warehouse while another process holds its file lock: wait, say so, then name the holder.

No Dagster import. DuckDB lets one process write a database file, or several read it. Any other
connection is refused at once ("Could not set lock on file ...: Conflicting lock is held in
<program> (PID n)"), and the orchestrator's DuckDB resource retried for about 100 s before failing the step: a long
read (a notebook, the app) or another process's write failed the pipeline. `connect` waits
instead, sleeping between attempts (doubling up to `max_sleep_seconds`), reports whom it waits for
every `report_every_seconds`, and after `timeout_seconds` raises `WarehouseLocked` naming the
process that holds the lock. The kernel drops a file lock when its process dies, so a killed
process never leaves the warehouse locked.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import duckdb

from ecom_assets import processes

_LOCK_REFUSED = "Could not set lock"
_HOLDER_PID = re.compile(r"\(PID (\d+)\)")


class WarehouseLocked(RuntimeError):
    """The warehouse stayed locked by another process for longer than the configured wait."""


def lock_holder(error: BaseException) -> str:
    """The process named in DuckDB's lock error: `pid 42 (python -m streamlit ...)`."""
    match = _HOLDER_PID.search(str(error))
    return processes.describe(int(match.group(1))) if match else "another process"


def connect(
    database: str,
    config: dict[str, Any],
    *,
    read_only: bool = False,
    timeout_seconds: float,
    log: Callable[[str], None],
    report_every_seconds: float = 30.0,
    max_sleep_seconds: float = 2.0,
) -> duckdb.DuckDBPyConnection:
    """`duckdb.connect`, waiting while another process holds the file's lock (see the module)."""
    started = time.monotonic()
    reported_at: float | None = None
    sleep = 0.05
    while True:
        try:
            return duckdb.connect(database, read_only=read_only, config=config)
        except duckdb.IOException as exc:
            if _LOCK_REFUSED not in str(exc):
                raise
            error = exc
        waited = time.monotonic() - started
        holder = lock_holder(error)
        if waited >= timeout_seconds:
            raise WarehouseLocked(
                f"The warehouse {database} is still locked by {holder} after {waited:.0f} s. Stop that "
                "process (a long query, an open notebook or app, another run), or wait longer with "
                f"ECOM_WAREHOUSE_LOCK_TIMEOUT_SECONDS (now {timeout_seconds:g})."
            ) from error
        now = time.monotonic()
        if reported_at is None or now - reported_at >= report_every_seconds:
            reported_at = now
            log(
                f"waiting for the warehouse lock held by {holder} ({waited:.0f} s so far, "
                f"giving up after {timeout_seconds:g} s)"
            )
        time.sleep(min(sleep, max_sleep_seconds, max(timeout_seconds - waited, 0.01)))
        sleep *= 2
