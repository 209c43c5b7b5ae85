"""Is a process still there, and what is it: for runs and locks left behind by a killed process.

No Dagster import. On Linux, /proc also gives a process's start time, so a pid reused after a
reboot or in a new container (pids restart from 1) is not taken for the process that recorded it.
Elsewhere only "a process with this pid exists" is known.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

HOST = socket.gethostname()
# /proc/stat's boot time has one-second resolution: a process may look up to that much younger.
_CLOCK_SLACK_SECONDS = 2.0


def _stat_fields(pid: int) -> list[str] | None:
    """Fields 3 and onwards of /proc/<pid>/stat (state first), or None off Linux or once it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()  # the command name (field 2) may hold spaces and ')'


def _boot_time() -> float:
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    raise OSError("no btime in /proc/stat")


def started_at(pid: int) -> float | None:
    """When the process started (Unix time), or None when that cannot be known."""
    fields = _stat_fields(pid)
    if fields is None:
        return None
    try:
        return _boot_time() + int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: start, in clock ticks
    except (OSError, ValueError, IndexError):
        return None


def is_running(pid: int, seen_at: float | None = None) -> bool:
    """Whether the process `pid`, known to be alive at `seen_at` (Unix time), still runs.

    False when no such process exists, when it is a zombie (killed, not yet reaped by its parent),
    or when the process now holding that pid started after `seen_at`: the number was reused.
    """
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    fields = _stat_fields(pid)
    if fields is None:
        return True
    if fields[0] in ("Z", "X"):
        return False
    start = started_at(pid)
    return seen_at is None or start is None or start <= seen_at + _CLOCK_SLACK_SECONDS


def describe(pid: int) -> str:
    """`pid 4242 (python -m ecom_assets.cli run)`: the pid with its command line when it can be read."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return f"pid {pid}"
    command = " ".join(part.decode(errors="replace") for part in argv if part)
    if len(command) > 160:
        command = command[:157] + "..."
    return f"pid {pid} ({command})" if command else f"pid {pid}"
