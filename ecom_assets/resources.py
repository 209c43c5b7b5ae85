"""Resources, configured in one place from environment variables with local defaults that just work."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from ecom_assets.experiment.assignment import DEFAULT_EXPERIMENT_KEY, DEFAULT_TREATMENT_SHARE
from ecom_assets.ecom_home import EcomPaths, env_float, env_str
from ecom_assets.lakehouse.warehouse import ensure_schema, register_experiment_macro

# Every op that opens the warehouse joins this pool; dagster.yaml limits it to one at a time.
WAREHOUSE_POOL = "warehouse"


class EcomSettings(dg.ConfigurableResource):
    """Where the project's files live and the business rules shared by several assets."""

    home: str = ".ecom"
    session_gap_minutes: int = 30
    experiment_key: str = DEFAULT_EXPERIMENT_KEY
    treatment_share: float = DEFAULT_TREATMENT_SHARE
    # Simulated checkout uplift on real files (experiment.simulated_purchases): the share of
    # treated users' cart events followed by a purchase of the same item. 0 = off (the default).
    simulated_uplift: float = 0.0
    simulated_uplift_seed: int = 0
    # Monitoring: a drift report warns, and the sensor retrains, at this share of drifted columns.
    drift_threshold: float = 0.5
    drift_sample_rows: int = 5_000
    max_model_age_days: float = 30.0

    @property
    def paths(self) -> EcomPaths:
        return EcomPaths(Path(self.home).expanduser().resolve()).ensure()


@contextmanager
def open_warehouse(db: DuckDBResource, settings: EcomSettings) -> Iterator[duckdb.DuckDBPyConnection]:
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
            simulated_uplift=env_float("ECOM_SIMULATED_UPLIFT", 0.0),
            simulated_uplift_seed=int(env_float("ECOM_SIMULATED_UPLIFT_SEED", 0)),
            drift_threshold=env_float("ECOM_DRIFT_THRESHOLD", 0.5),
            drift_sample_rows=int(env_float("ECOM_DRIFT_SAMPLE_ROWS", 5_000)),
            max_model_age_days=env_float("ECOM_MAX_MODEL_AGE_DAYS", 30),
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


class MLSettings(dg.ConfigurableResource):
    """Where MLflow tracks and registers, and the knobs of the purchase / cart-abandonment models."""

    tracking_uri: str = ""  # empty: sqlite:///<ECOM_HOME>/mlflow.db
    horizon_days: int = 7
    lookback_days: int = 28
    min_history_days: int = 14
    max_cutoffs: int = 8
    gb_max_iter: int = 300
    rf_trees: int = 100
    max_train_rows: int = 300_000
    max_eval_rows: int = 1_000_000
    score_chunk_rows: int = 500_000

    def uri(self, paths: EcomPaths) -> str:
        return self.tracking_uri or f"sqlite:///{paths.mlflow_db}"

    @property
    def windows(self):
        from ecom_assets.ml.feature_specs import FeatureWindows

        return FeatureWindows(self.horizon_days, self.lookback_days, self.min_history_days, self.max_cutoffs)

    @property
    def training(self):
        from ecom_assets.ml.training import TrainingConfig

        return TrainingConfig(gb_max_iter=self.gb_max_iter, rf_trees=self.rf_trees,
                              max_train_rows=self.max_train_rows, max_eval_rows=self.max_eval_rows)


def build_ml_resources() -> dict[str, object]:
    return {
        "ml_settings": MLSettings(
            tracking_uri=env_str("MLFLOW_TRACKING_URI", ""),
            horizon_days=int(env_float("ECOM_ML_HORIZON_DAYS", 7)),
            lookback_days=int(env_float("ECOM_ML_LOOKBACK_DAYS", 28)),
            min_history_days=int(env_float("ECOM_ML_MIN_HISTORY_DAYS", 14)),
            max_cutoffs=int(env_float("ECOM_ML_MAX_CUTOFFS", 8)),
            gb_max_iter=int(env_float("ECOM_ML_GB_MAX_ITER", 300)),
            rf_trees=int(env_float("ECOM_ML_RF_TREES", 100)),
            max_train_rows=int(env_float("ECOM_ML_MAX_TRAIN_ROWS", 300_000)),
            max_eval_rows=int(env_float("ECOM_ML_MAX_EVAL_ROWS", 1_000_000)),
        ),
    }
