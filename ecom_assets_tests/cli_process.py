"""`ecom-assets` in a subprocess whose output a test reads as it comes, to act at a given moment."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time


class CliProcess:
    """`python -m ecom_assets.cli <args>` with stdout and stderr merged, read line by line."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ecom_assets.cli", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            env={**os.environ, **(env or {})},
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_for(self, text: str, timeout: float) -> str:
        """The first line (from now on) containing `text`; fails with the output's tail if it never comes."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                raise AssertionError(f"exited ({self.process.wait()}) before {text!r}:\n{self.tail()}")
            self.lines.append(line)
            if text in line:
                return line
        raise AssertionError(f"no {text!r} within {timeout:.0f} s:\n{self.tail()}")

    def finish(self, timeout: float) -> int:
        """Wait for the exit (killing it if it takes longer than `timeout`) and keep the rest of the output."""
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"still running after {timeout:.0f} s:\n{self.tail()}") from None
        while (line := self._queue.get(timeout=10)) is not None:
            self.lines.append(line)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.lines[-lines:])

    def cpu_seconds(self) -> float:
        """CPU time the process has used so far (Linux)."""
        with open(f"/proc/{self.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
