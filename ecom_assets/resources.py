"""Resources, configured in one place from environment variables with local defaults that just work."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from ecom_assets.experiment.assignment import DEFAULT_EXPERIMENT_KEY, DEFAULT_TREATMENT_SHARE
from ecom_assets.settings import EcomPaths, env_float, env_str
from ecom_assets.warehouse import ensure_schema, register_experiment_macro

# Every op that opens the warehouse joins this pool; dagster.yaml limits it to one at a time.
WAREHOUSE_POOL = "warehouse"


class EcomSettings(dg.ConfigurableResource):
    """Where the project's files live and the business rules shared by several assets."""

    home: str = ".ecom"
    session_gap_minutes: int = 30
    experiment_key: str = DEFAULT_EXPERIMENT_KEY
    treatment_share: float = DEFAULT_TREATMENT_SHARE

    @property
    def paths(self) -> EcomPaths:
        return EcomPaths(Path(self.home).expanduser().resolve()).ensure()


@contextmanager
def warehouse(db: DuckDBResource, settings: EcomSettings) -> Iterator[duckdb.DuckDBPyConnection]:
    """A warehouse connection with the schema in place and `experiment_group()` registered."""
    with db.get_connection() as con:
        ensure_schema(con)
        register_experiment_macro(con, settings.experiment_key, settings.treatment_share)
        yield con


def build_resources(paths: EcomPaths | None = None) -> dict[str, object]:
    paths = paths or EcomPaths.from_env()
    return {
        "settings": EcomSettings(
            home=str(paths.home),
            session_gap_minutes=int(env_float("ECOM_SESSION_GAP_MINUTES", 30)),
            experiment_key=env_str("ECOM_EXPERIMENT_KEY", DEFAULT_EXPERIMENT_KEY),
            treatment_share=env_float("ECOM_TREATMENT_SHARE", DEFAULT_TREATMENT_SHARE),
        ),
        "duckdb": DuckDBResource(
            database=str(paths.warehouse),
            connection_config={
                # A limit below the machine's memory makes DuckDB spill big sorts to disk.
                "memory_limit": env_str("ECOM_DUCKDB_MEMORY_LIMIT", "2GB"),
                "threads": int(env_float("ECOM_DUCKDB_THREADS", 2)),
                "temp_directory": str(paths.duckdb_spill),
                "preserve_insertion_order": True,
            },
        ),
    }
