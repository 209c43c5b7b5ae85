"""Where a run writes (ECOM_HOME), and the two plain readers of the environment. No Dagster import.

`env_str` / `env_float` read a variable when called (a blank one counts as unset). They serve code
without Dagster (the scoring service, the CLI) and what must be known when the definitions are
built; resources read the rest through `dg.EnvVar` when a run starts (`ecom_assets.resources`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOME = ".ecom"  # ECOM_HOME when unset, relative to the working directory


@dataclass(frozen=True)
class EcomPaths:
    """The storage layout of DESIGN.md, rooted at ECOM_HOME."""

    home: Path

    @classmethod
    def from_env(cls) -> EcomPaths:
        return cls(Path(env_str("ECOM_HOME", DEFAULT_HOME)).expanduser().resolve())

    @property
    def landing(self) -> Path:
        return self.home / "landing"

    @property
    def lake_catalog(self) -> Path:
        """The warehouse: a DuckLake whose catalog this is, its Parquet files in `lake/` beside it."""
        return self.home / "lake.sqlite"

    @property
    def duckdb_spill(self) -> Path:
        return self.home / "duckdb_tmp"

    @property
    def mlflow_db(self) -> Path:
        return self.home / "mlflow.db"

    @property
    def mlflow_artifacts(self) -> Path:
        return self.home / "mlartifacts"

    @property
    def published(self) -> Path:
        return self.home / "published"

    @property
    def reports(self) -> Path:
        return self.home / "reports"

    @property
    def scratch(self) -> Path:
        """A worker's temp files (ecom_assets/file_store.py): in the cluster profile, a landing file's
        local copy while it is ingested, and snapshots and reports until they are uploaded."""
        return self.home / "scratch"

    @property
    def dagster_home(self) -> Path:
        return Path(env_str("DAGSTER_HOME", "") or self.home / "dagster_home").resolve()

    def ensure(self) -> EcomPaths:
        # In the cluster profile landing/, published/ and reports/ are in the bucket: a worker's home
        # holds only its scratch and spill folders.
        cluster = env_str("ECOM_PROFILE", "local").lower() == "cluster"
        shared = () if cluster else (self.landing, self.published, self.reports)
        for folder in (*shared, self.duckdb_spill, *((self.scratch,) if cluster else ())):
            folder.mkdir(parents=True, exist_ok=True)
        return self


def env_str(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"{name}={raw!r} is not a number") from exc
