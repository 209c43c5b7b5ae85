"""Run the real scoring service (`ecom-assets serve`, uvicorn) on a free loopback port, for tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ecom_assets.ecom_home import EcomPaths
from ecom_assets.ml.tracking import tracking_uri
from ecom_assets_tests.servers import free_port, serving


@dataclass
class ApiServer:
    url: str
    process: subprocess.Popen
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def copy_registry(source: EcomPaths, target: Path) -> str:
    """A private copy of a built MLflow registry (the artifacts it points at are only read)."""
    copy = EcomPaths(target)
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(source.mlflow_db, copy.mlflow_db)
    return tracking_uri(copy, configured="")


@contextmanager
def running_api(tracking_uri: str, home: Path, log: Path, startup_seconds: float = 180, **env: str):
    """`ecom-assets serve` in a subprocess; yields once /health answers, stops it afterwards."""
    port = free_port()
    environment = {
        **os.environ,
        "MLFLOW_TRACKING_URI": tracking_uri,
        "ECOM_HOME": str(home),
        "MLFLOW_SKIP_PIP_REQUIREMENTS_CHECK": "true",
        **env,
    }
    command = [
        sys.executable,
        "-m",
        "ecom_assets.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    url = f"http://127.0.0.1:{port}"
    with serving(command, f"{url}/health", log, env=environment, startup_seconds=startup_seconds) as process:
        yield ApiServer(url, process, log)
