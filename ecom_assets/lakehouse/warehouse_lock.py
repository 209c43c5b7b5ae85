"""The lake's write lock: one writing process at a time, waiting visibly, naming whom it waits for.

No Dagster import. Readers never take it (lakehouse/lake.py). A writer holds it while it writes:
DuckLake's SQLite catalog refuses a second committing writer ("database is locked") instead of
queueing it. `held` waits instead, sleeping between attempts (doubling up to `max_sleep_seconds`),
reports whom it waits for every `report_every_seconds`, and after `timeout_seconds` raises
`WarehouseLocked` naming the holder, whose process id the lock file holds. The kernel drops the
lock (`flock`) when its process dies, so a killed process never leaves the warehouse locked.

Within one process the lock is reentrant per thread: a step that opens a second connection while
it holds one goes on, and other threads of the process wait their turn.

In the `cluster` profile, writers run on several machines, which a local `flock` cannot guard:
`held_in_postgres` takes the same lock as a Postgres session-level advisory lock on the lake's
catalog database. Postgres drops it when the holder's connection ends (a killed process too), and
the holder is named from `pg_stat_activity` (its application name carries host and pid).
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from ecom_assets import processes

LAKE_LOCK_KEY = 0x65636F6D  # the advisory lock's key on the catalog database: "ecom"


class WarehouseLocked(RuntimeError):
    """The warehouse stayed locked by another process for longer than the configured wait."""


_in_process = threading.RLock()
_held: dict[str, tuple[object, int]] = {}  # lock key -> (the held lock, depth), under _in_process


def lock_holder(lock_file: Path) -> str:
    """The process whose id the lock file holds: `pid 42 (python -m streamlit ...)`."""
    try:
        return processes.describe(int(lock_file.read_text().split()[0]))
    except (OSError, ValueError, IndexError):
        return "another process"


class _FileLock:
    """A `flock` on a file that holds the holder's pid."""

    def __init__(self, lock_file: Path) -> None:
        self.lock_file, self.where = lock_file, str(lock_file.parent)
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)

    def try_acquire(self) -> bool:
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"{os.getpid()}\n".encode(), 0)
        return True

    def holder(self) -> str:
        return lock_holder(self.lock_file)

    def release(self) -> None:
        os.close(self.fd)  # releases the flock


class _PostgresLock:
    """A session-level advisory lock on a Postgres database, held by this object's connection."""

    def __init__(self, dsn: str) -> None:
        import psycopg2

        self.where = "the lake catalog's Postgres database"
        self.con = psycopg2.connect(dsn, application_name=f"ecom-assets pid {os.getpid()} on {processes.HOST}")
        self.con.autocommit = True

    def _one(self, sql: str, params: tuple = ()):
        with self.con.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchone()

    def try_acquire(self) -> bool:
        return bool(self._one("SELECT pg_try_advisory_lock(%s)", (LAKE_LOCK_KEY,))[0])

    def holder(self) -> str:
        row = self._one(
            "SELECT a.application_name, a.client_addr, a.pid FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.objid = %s LIMIT 1",
            (LAKE_LOCK_KEY,),
        )
        if row is None:
            return "another process"
        name, address, backend = row
        return f"{name or 'a client'} (from {address or 'a local socket'}, Postgres backend {backend})"

    def release(self) -> None:
        self.con.close()  # ends the session, which releases its advisory locks


def held(lock_file: Path, **waiting) -> AbstractContextManager[None]:
    """Hold the write lock `lock_file` while the block runs, waiting for it first (see the module).
    `waiting`: `timeout_seconds`, `log` and optionally `report_every_seconds`, `max_sleep_seconds` (`_holding`)."""
    return _holding(str(lock_file), lambda: _FileLock(lock_file), **waiting)


def held_in_postgres(dsn: str, **waiting) -> AbstractContextManager[None]:
    """`held`, as an advisory lock on the Postgres database `dsn` (libpq form): the cluster profile's."""
    return _holding(f"postgres:{dsn}", lambda: _PostgresLock(dsn), **waiting)


@contextmanager
def _holding(
    key: str,
    open_lock: Callable[[], _FileLock | _PostgresLock],
    *,
    timeout_seconds: float,
    log: Callable[[str], None],
    report_every_seconds: float = 30.0,
    max_sleep_seconds: float = 2.0,
) -> Iterator[None]:
    started = time.monotonic()
    if not _in_process.acquire(timeout=timeout_seconds):
        raise WarehouseLocked(f"Another thread of this process held the warehouse for {timeout_seconds:g} s")
    try:
        if key in _held:
            lock, depth = _held[key]
            _held[key] = (lock, depth + 1)
        else:
            lock = _acquire(open_lock(), started, timeout_seconds, log, report_every_seconds, max_sleep_seconds)
            _held[key] = (lock, 1)
        try:
            yield
        finally:
            lock, depth = _held[key]
            if depth > 1:
                _held[key] = (lock, depth - 1)
            else:
                del _held[key]
                lock.release()
    finally:
        _in_process.release()


def _acquire(
    lock: _FileLock | _PostgresLock,
    started: float,
    timeout_seconds: float,
    log: Callable[[str], None],
    report_every_seconds: float,
    max_sleep_seconds: float,
) -> _FileLock | _PostgresLock:
    reported_at: float | None = None
    sleep = 0.05
    while True:
        if lock.try_acquire():
            return lock
        waited = time.monotonic() - started
        holder = lock.holder()
        if waited >= timeout_seconds:
            lock.release()
            raise WarehouseLocked(
                f"The warehouse ({lock.where}) is still being written by {holder} after {waited:.0f} s. "
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
