"""Run the real scoring service (`ecom-assets serve`, uvicorn) on a free loopback port, for tests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from ecom_assets.settings import EcomPaths


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ApiServer:
    url: str
    process: subprocess.Popen
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def copy_registry(source: EcomPaths, target: Path) -> str:
    """A private copy of a built MLflow registry (the artifacts it points at are only read)."""
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(source.mlflow_db, target / "mlflow.db")
    return f"sqlite:///{target / 'mlflow.db'}"


@contextmanager
def running_api(tracking_uri: str, home: Path, log: Path, startup_seconds: float = 180, **env: str):
    """`ecom-assets serve` in a subprocess; yields once /health answers, stops it afterwards."""
    port = free_port()
    environment = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, "ECOM_HOME": str(home),
                   "MLFLOW_SKIP_PIP_REQUIREMENTS_CHECK": "true", **env}
    with open(log, "wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "ecom_assets.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
             "--log-level", "warning"], stdout=sink, stderr=subprocess.STDOUT, env=environment)
    server = ApiServer(f"http://127.0.0.1:{port}", process, log)
    try:
        deadline = time.monotonic() + startup_seconds
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the API exited with {process.returncode}:\n{server.output()}")
            try:
                if httpx.get(f"{server.url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the API did not answer within {startup_seconds}s:\n{server.output()}")
            time.sleep(0.3)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
