"""Real servers for tests: a subprocess on a free loopback port, used once it answers, then stopped."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serving(
    command: list[str],
    health_url: str,
    log: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    healthy: Callable[[httpx.Response], bool] = lambda response: response.status_code == 200,
    startup_seconds: float = 180,
) -> Iterator[subprocess.Popen]:
    """Run ``command``; yield the process once ``health_url`` answers ``healthy``; stop it afterwards.

    Fails with the server's own output when it exits early or does not come up in time.
    """
    with open(log, "wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env, cwd=cwd)
    tail = lambda: log.read_text(errors="replace")[-4000:]  # noqa: E731
    try:
        deadline = time.monotonic() + startup_seconds
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{command[0]} exited with {process.returncode}:\n{tail()}")
            try:
                if healthy(httpx.get(health_url, timeout=2)):
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{health_url} did not answer within {startup_seconds:.0f} s:\n{tail()}")
            time.sleep(0.3)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def resident_mb(pid: int) -> float:
    """A process's resident memory (VmRSS) in MiB, from /proc: psutil is not a dependency."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")
