"""`ecom-assets dev`: `dagster dev` that SIGTERM, SIGINT and SIGHUP stop, however it was started.

Why not `dagster dev` straight from `make dev`: `dagster dev` maps SIGTERM onto its SIGINT handler, and
a command started in the background of a non-interactive shell (`make dev &` in a script, CI, some
process managers) inherits SIGINT *ignored*. Python then keeps SIGINT ignored, so SIGTERM is ignored
too: make forwards the SIGTERM it gets to its recipe and waits for it forever, and the UI, the daemon
and the code servers keep running.

This launcher catches the signals itself (whatever dispositions and mask it inherited), starts
`dagster dev` in its own process group with SIGINT back to its default, and turns the first stop
signal into one SIGINT to `dagster dev`: its graceful path (it stops the webserver and the daemon,
and its code server). Once `dagster dev` has exited, or after `GRACE_SECONDS` if it has
not, whatever is left in its process group (a code server, a run worker) gets SIGTERM, then SIGKILL.
The group stays in the caller's session: a signal to make's process group reaches this launcher,
which forwards it; a session-wide kill reaches everything.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

# An idle `dagster dev` stops in about 2 s; the daemon waits for a sensor tick in flight (up to 30 s,
# then 60 s more in `dagster dev`). 8 s keeps the whole stop within a process manager's usual 10 s.
GRACE_SECONDS = 8.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def dagster_dev_command(workspace: str, host: str, port: int) -> list[str]:
    return [sys.executable, "-m", "dagster", "dev", "-w", workspace, "-h", host, "-p", str(port)]


def run(command: list[str], grace_seconds: float = GRACE_SECONDS) -> int:
    """Run `command` in its own process group until it exits or a stop signal ends it; return its code.

    Stopped by a signal, returns 128 + that signal's number, as a shell reports it.
    """
    received: list[int] = []
    # SIGHUP left ignored stays ignored (`nohup make dev`). Handlers first, then the mask: a signal
    # pending while blocked is handled, not lost. Across exec, handled signals go back to their
    # default, so `dagster dev` starts with SIGINT at its default: Python's KeyboardInterrupt.
    signums = [s for s in STOP_SIGNALS if s != signal.SIGHUP or signal.getsignal(s) != signal.SIG_IGN]
    for signum in signums:
        signal.signal(signum, lambda signum, frame: received.append(signum))
    signal.pthread_sigmask(signal.SIG_UNBLOCK, signums)
    child = subprocess.Popen(command, process_group=0)
    try:
        while not received and child.poll() is None:
            time.sleep(0.2)
        if child.poll() is None:
            _signal(child.pid, signal.SIGINT)  # one SIGINT, however many signals came
        deadline = time.monotonic() + grace_seconds
        while child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        _clear_group(child)
    return 128 + received[0] if received else child.returncode


def _clear_group(child: subprocess.Popen[bytes], seconds: float = 3.0) -> None:
    """End what is left of `child`'s process group: all of it if `child` is stuck, else what it left behind."""
    if child.poll() is None:
        _signal(child.pid, signal.SIGKILL, group=True)
        child.wait()
        return
    _signal(child.pid, signal.SIGTERM, group=True)  # e.g. a code server or a run worker it did not stop
    deadline = time.monotonic() + seconds
    while _signal(child.pid, 0, group=True) and time.monotonic() < deadline:
        time.sleep(0.1)
    _signal(child.pid, signal.SIGKILL, group=True)


def _signal(pid: int, signum: int, group: bool = False) -> bool:
    """Send `signum` to a process or, with `group`, to its process group; False when there is none."""
    try:
        (os.killpg if group else os.kill)(pid, signum)
    except ProcessLookupError:
        return False
    return True
