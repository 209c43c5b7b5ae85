"""The lake's write lock: one writing process at a time, waiting visibly, naming whom it waits for.

No Dagster import. Readers never take it (lakehouse/lake.py). A writer holds it while it writes:
DuckLake's SQLite catalog refuses a second committing writer ("database is locked") instead of
queueing it. `held` waits instead, sleeping between attempts (doubling up to `max_sleep_seconds`),
reports whom it waits for every `report_every_seconds`, and after `timeout_seconds` raises
`WarehouseLocked` naming the holder, whose process id the lock file holds. The kernel drops the
lock (`flock`) when its process dies, so a killed process never leaves the warehouse locked.

Within one process the lock is reentrant per thread: a step that opens a second connection while
it holds one goes on, and other threads of the process wait their turn.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ecom_assets import processes


class WarehouseLocked(RuntimeError):
    """The warehouse stayed locked by another process for longer than the configured wait."""


_in_process = threading.RLock()
_held: dict[str, tuple[int, int]] = {}  # lock file -> (file descriptor, depth), under _in_process


def lock_holder(lock_file: Path) -> str:
    """The process whose id the lock file holds: `pid 42 (python -m streamlit ...)`."""
    try:
        return processes.describe(int(lock_file.read_text().split()[0]))
    except (OSError, ValueError, IndexError):
        return "another process"


@contextmanager
def held(
    lock_file: Path,
    *,
    timeout_seconds: float,
    log: Callable[[str], None],
    report_every_seconds: float = 30.0,
    max_sleep_seconds: float = 2.0,
) -> Iterator[None]:
    """Hold the write lock `lock_file` while the block runs, waiting for it first (see the module)."""
    key = str(lock_file)
    started = time.monotonic()
    if not _in_process.acquire(timeout=timeout_seconds):
        raise WarehouseLocked(f"Another thread of this process held the warehouse for {timeout_seconds:g} s")
    try:
        if key in _held:
            fd, depth = _held[key]
            _held[key] = (fd, depth + 1)
        else:
            fd = _acquire(lock_file, started, timeout_seconds, log, report_every_seconds, max_sleep_seconds)
            _held[key] = (fd, 1)
        try:
            yield
        finally:
            fd, depth = _held[key]
            if depth > 1:
                _held[key] = (fd, depth - 1)
            else:
                del _held[key]
                os.close(fd)  # releases the flock
    finally:
        _in_process.release()


def _acquire(
    lock_file: Path,
    started: float,
    timeout_seconds: float,
    log: Callable[[str], None],
    report_every_seconds: float,
    max_sleep_seconds: float,
) -> int:
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    reported_at: float | None = None
    sleep = 0.05
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass
        else:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            return fd
        waited = time.monotonic() - started
        holder = lock_holder(lock_file)
        if waited >= timeout_seconds:
            os.close(fd)
            raise WarehouseLocked(
                f"The warehouse ({lock_file.parent}) is still being written by {holder} after {waited:.0f} s. "
                "Wait for that run, stop it, or wait longer with ECOM_WAREHOUSE_LOCK_TIMEOUT_SECONDS "
                f"(now {timeout_seconds:g})."
            )
        now = time.monotonic()
        if reported_at is None or now - reported_at >= report_every_seconds:
            reported_at = now
            log(
                f"waiting for the warehouse write lock held by {holder} ({waited:.0f} s so far, "
                f"giving up after {timeout_seconds:g} s)"
            )
        time.sleep(min(sleep, max_sleep_seconds, max(timeout_seconds - waited, 0.01)))
        sleep *= 2
