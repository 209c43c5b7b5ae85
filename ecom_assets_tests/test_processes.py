"""processes: a pid that is gone, a zombie, or a number reused by a newer process is not running."""

from __future__ import annotations

import os
import signal
import subprocess
import time

from ecom_assets import processes
from ecom_assets_tests.pool_runs import dead_pid


def test_this_process_runs_and_a_finished_one_does_not():
    assert processes.is_running(os.getpid(), seen_at=time.time())
    assert not processes.is_running(dead_pid())
    assert not processes.is_running(0)


def test_a_killed_child_not_yet_reaped_is_not_running():
    child = subprocess.Popen(["sleep", "30"])
    try:
        os.kill(child.pid, signal.SIGKILL)
        time.sleep(0.3)  # now a zombie: its pid still exists until we wait() for it
        assert not processes.is_running(child.pid)
    finally:
        child.wait()


def test_a_pid_seen_before_its_process_started_was_reused():
    """After a reboot or in a new container, the recorded pid may belong to a newer process."""
    started = processes.started_at(os.getpid())
    assert started is not None and started <= time.time()
    assert not processes.is_running(os.getpid(), seen_at=started - 3600)


def test_a_process_is_described_by_its_command_line():
    child = subprocess.Popen(["sleep", "30"])
    try:
        deadline = time.monotonic() + 5
        while processes.describe(child.pid) == f"pid {child.pid}" and time.monotonic() < deadline:
            time.sleep(0.02)  # Popen may return before the child has exec'd `sleep`
        assert processes.describe(child.pid) == f"pid {child.pid} (sleep 30)"
    finally:
        child.kill()
        child.wait()
    gone = dead_pid()
    assert processes.describe(gone) == f"pid {gone}"
