"""Resources, configured in one place from environment variables with local defaults that just work.

Every setting is a field of a resource below with its default stated once (here, or in the plain
dataclass it feeds: `TrainingConfig`, `FeatureWindows`) and the variable that sets it named beside
it. `build_resources` / `build_ml_resources` feed each field whose variable is set: text and whole
numbers as `dg.EnvVar` / `dg.EnvVar.int`, which Dagster reads when a run or a sensor tick starts (a
bad value fails it, naming the variable); decimals when the definitions are built, since Dagster
has no float EnvVar. An unset or blank variable keeps the default.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource
from pydantic import Field

from ecom_assets.ecom_home import DEFAULT_HOME, EcomPaths, env_float, env_str
from ecom_assets.experiment.assignment import DEFAULT_EXPERIMENT_KEY, DEFAULT_TREATMENT_SHARE
from ecom_assets.file_store import LocalFiles, S3Files, file_store
from ecom_assets.lakehouse import lake, warehouse_lock
from ecom_assets.lakehouse.lake import lake_data_path, lake_lock_file
from ecom_assets.lakehouse.warehouse import define_macros, ensure_schema, register_experiment_macro
from ecom_assets.ml.feature_specs import FeatureWindows
from ecom_assets.ml.tracking import tracking_uri
from ecom_assets.ml.training import TrainingConfig
from ecom_assets.profile import CLUSTER, LOCAL, ClusterConfig, active_profile, cluster_config

# Every op that opens the warehouse joins this pool; dagster.yaml limits it to one at a time.
WAREHOUSE_POOL = "warehouse"

DUCKDB_MEMORY_LIMIT = "2GB"  # ECOM_DUCKDB_MEMORY_LIMIT
DUCKDB_THREADS = 2  # ECOM_DUCKDB_THREADS


def _env(variable: str, default: Any, description: str) -> Any:
    """A field that `variable` sets (see `_from_environment`); the UI shows the description."""
    return Field(default=default, description=f"{description} ({variable})", json_schema_extra={"env": variable})


class EcomSettings(dg.ConfigurableResource):
    """Where the project's files live and the business rules shared by several assets."""

    home: str = DEFAULT_HOME  # build_resources passes ECOM_HOME, resolved
    session_gap_minutes: int = _env("ECOM_SESSION_GAP_MINUTES", 30, "Inactivity that ends a session, minutes")
    experiment_key: str = _env("ECOM_EXPERIMENT_KEY", DEFAULT_EXPERIMENT_KEY, "Salt of the A/B assignment hash")
    treatment_share: float = _env("ECOM_TREATMENT_SHARE", DEFAULT_TREATMENT_SHARE, "Share of users in treatment")
    # Simulated checkout uplift on real files (experiment.simulated_purchases): the share of
    # treated users' cart events followed by a purchase of the same item. 0 = off (the default).
    simulated_uplift: float = _env("ECOM_SIMULATED_UPLIFT", 0.0, "Simulated checkout uplift, 0 = off")
    simulated_uplift_seed: int = _env("ECOM_SIMULATED_UPLIFT_SEED", 0, "Seed of the simulated uplift")
    # Monitoring: a drift report warns, and the sensor retrains, at this share of drifted columns.
    drift_threshold: float = _env("ECOM_DRIFT_THRESHOLD", 0.5, "Share of drifted columns that retrains")
    drift_sample_rows: int = _env("ECOM_DRIFT_SAMPLE_ROWS", 5_000, "Rows per side of a drift report")
    max_model_age_days: float = _env("ECOM_MAX_MODEL_AGE_DAYS", 30.0, "Age that makes a model stale, days")
    # Silver's plausibility rules (docs/data.md): lines outside them go to quarantine with the reason.
    earliest_event_time: str = _env("ECOM_EARLIEST_EVENT_TIME", "2000-01-01", "Events before this are implausible")
    max_days_after_landing: float = _env(
        "ECOM_MAX_DAYS_AFTER_LANDING", 1.0, "Events later than landing + this are implausible, days"
    )
    max_price: float = _env("ECOM_MAX_PRICE", 1_000_000.0, "Prices above this are implausible")

    @property
    def paths(self) -> EcomPaths:
        return EcomPaths(Path(self.home).expanduser().resolve()).ensure()

    @property
    def files(self) -> LocalFiles | S3Files:
        """Landing files, published snapshots and reports: ECOM_HOME's folders, or the bucket (cluster)."""
        return file_store(self.paths)


class MLSettings(dg.ConfigurableResource):
    """Where MLflow tracks and registers, and the knobs of the purchase / cart-abandonment models."""

    tracking_uri: str = _env("MLFLOW_TRACKING_URI", "", "MLflow tracking and registry; blank: ECOM_HOME/mlflow.db")
    ui_url: str = _env("ECOM_MLFLOW_UI_URL", "http://127.0.0.1:5000", "MLflow UI address the Dagster UI links to")
    horizon_days: int = _env("ECOM_ML_HORIZON_DAYS", FeatureWindows.horizon_days, "Days a purchase label looks ahead")
    lookback_days: int = _env("ECOM_ML_LOOKBACK_DAYS", FeatureWindows.lookback_days, "Days of history per feature")
    min_history_days: int = _env(
        "ECOM_ML_MIN_HISTORY_DAYS", FeatureWindows.min_history_days, "History before the first cutoff, days"
    )
    max_cutoffs: int = _env("ECOM_ML_MAX_CUTOFFS", FeatureWindows.max_cutoffs, "Labelled cutoffs at most")
    cutoff_anchor: str = _env(
        "ECOM_ML_CUTOFF_ANCHOR",
        FeatureWindows.cutoff_anchor,
        "A day the weekly cutoffs fall on (every horizon_days from it), ISO date",
    )
    forward_cutoff: str = _env(
        "ECOM_ML_FORWARD_CUTOFF",
        FeatureWindows.forward_cutoff,
        "The scored cutoff: 'calendar' (this week's, rescored weekly) or 'data_end' (rescored daily)",
    )
    gb_max_iter: int = _env("ECOM_ML_GB_MAX_ITER", TrainingConfig.gb_max_iter, "Gradient-boosting iterations")
    rf_trees: int = _env("ECOM_ML_RF_TREES", TrainingConfig.rf_trees, "Random-forest trees")
    max_train_rows: int = _env("ECOM_ML_MAX_TRAIN_ROWS", TrainingConfig.max_train_rows, "Training sample rows")
    max_eval_rows: int = _env("ECOM_ML_MAX_EVAL_ROWS", TrainingConfig.max_eval_rows, "Validation/test rows")
    max_refit_rows: int = _env(
        "ECOM_ML_MAX_REFIT_ROWS", TrainingConfig.max_refit_rows, "Rows the production refit is fitted on"
    )
    promotion_margin: float = _env(
        "ECOM_ML_PROMOTION_MARGIN",
        TrainingConfig.promotion_margin,
        "Holdout PR-AUC a challenger must gain over production (beyond bootstrap noise) to be promoted",
    )
    score_chunk_rows: int = 500_000

    def uri(self, paths: EcomPaths) -> str:
        return tracking_uri(paths, self.tracking_uri)

    @property
    def windows(self) -> FeatureWindows:
        return FeatureWindows(
            self.horizon_days,
            self.lookback_days,
            self.min_history_days,
            self.max_cutoffs,
            self.cutoff_anchor,
            self.forward_cutoff,
        )

    @property
    def training(self) -> TrainingConfig:
        return TrainingConfig(
            gb_max_iter=self.gb_max_iter,
            rf_trees=self.rf_trees,
            max_train_rows=self.max_train_rows,
            max_eval_rows=self.max_eval_rows,
            max_refit_rows=self.max_refit_rows,
            promotion_margin=self.promotion_margin,
        )


def _from_environment(resource: type[dg.ConfigurableResource]) -> dict[str, Any]:
    """Constructor arguments for the fields whose variable is set; the others keep their default."""
    config: dict[str, Any] = {}
    for name, field in resource.model_fields.items():
        variable = (field.json_schema_extra or {}).get("env")
        if not variable or not env_str(variable, ""):
            continue
        if field.annotation is float:
            config[name] = env_float(variable, field.default)  # no float EnvVar: read now, a bad value named
        elif field.annotation is int:
            config[name] = dg.EnvVar.int(variable)
        else:
            config[name] = dg.EnvVar(variable)
    return config


R = TypeVar("R", bound=dg.ConfigurableResource)
_ENV_VAR_TYPES = (dg.EnvVar, type(dg.EnvVar.int("_")))  # the class of EnvVar.int is not exported


def resolved(resource: R) -> R:
    """`resource` with its `dg.EnvVar` fields read now, as Dagster does when a run starts.

    For code that uses a resource outside a run (a script, the bench, a test opening the warehouse):
    there a field fed by an EnvVar still holds the placeholder, not the value.
    """
    if any(isinstance(getattr(resource, name), _ENV_VAR_TYPES) for name in type(resource).model_fields):
        return resource.process_config_and_initialize()
    return resource


@contextmanager
def open_warehouse(
    db: DuckDBResource, settings: EcomSettings, *, writer: bool = True
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A warehouse connection with the schema in place and `experiment_group()` registered: a
    writer's (holding the write lock), or with `writer=False` a reader's, which may still write
    inside `db.write_lock()`."""
    settings = resolved(settings)
    with db.get_connection() if writer else db.read_connection() as con:
        if writer:
            ensure_schema(con)
        register_experiment_macro(con, settings.experiment_key, settings.treatment_share)
        _set_plausibility_rules(con, settings)
        yield con


def _set_plausibility_rules(con: duckdb.DuckDBPyConnection, settings: EcomSettings) -> None:
    """The bounds silver_parse_*.sql reads; on a connection without them it uses the same defaults."""
    try:
        con.execute("SET VARIABLE ecom_earliest_event_time = CAST(? AS TIMESTAMP)", [settings.earliest_event_time])
    except duckdb.ConversionException as exc:
        raise ValueError(f"ECOM_EARLIEST_EVENT_TIME={settings.earliest_event_time!r} is not a date or time") from exc
    con.execute("SET VARIABLE ecom_max_days_after_landing = ?", [settings.max_days_after_landing])
    con.execute("SET VARIABLE ecom_max_price = ?", [settings.max_price])


def _say_waiting(message: str) -> None:
    # In a run, Dagster captures its logger into the run's log at INFO. Outside one (the CLI's
    # summary, a script) no handler would show it: then stderr.
    logger = dg.get_dagster_logger("ecom_assets.warehouse")
    if logger.hasHandlers():
        logger.info(message)
    else:
        print(f"ecom_assets.warehouse: {message}", file=sys.stderr)


class WarehouseResource(DuckDBResource):
    """The lake (lakehouse/lake.py). In the local profile `database` is its catalog, beside it the
    data folder and the write lock; in the cluster profile the catalog, the bucket and the lock are
    the services ECOM_LAKE_CATALOG_DSN and ECOM_LAKE_DATA_URL name (read when a connection opens).

    `get_connection` is a writer's: it holds the write lock while open, waiting (and saying so) while
    another process writes. `read_connection` takes no lock and sees the last committed snapshot.
    """

    lock_timeout_seconds: float = _env(
        "ECOM_WAREHOUSE_LOCK_TIMEOUT_SECONDS", 600.0, "Wait for another process's warehouse write lock, seconds"
    )
    profile: str = Field(default=LOCAL, description="Deployment profile (ECOM_PROFILE): local or cluster")

    @property
    def database_path(self) -> Path:
        return Path(self.database)

    @property
    def _cluster(self) -> ClusterConfig | None:
        return ClusterConfig.from_env() if self.profile == CLUSTER else None

    @property
    def target(self) -> lake.LakeTarget:
        """Where the lake is, in the active profile."""
        cluster = self._cluster
        return lake.cluster_target(cluster) if cluster else lake.local_target(self.database_path)

    def _connect(self, create: bool = False) -> duckdb.DuckDBPyConnection:
        config = {"custom_user_agent": "dagster", **self.connection_config}
        return lake.connect(self.target, config, create=create)

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self.write_lock():
            fresh = self._cluster is None and not self.database_path.exists()
            con = self._connect(create=True)
            try:
                if fresh or (self._cluster and not _has_tables(con)):
                    ensure_schema(con)  # a reader then finds every table, empty
                yield con
            finally:
                con.close()

    @contextmanager
    def write_lock(self) -> Iterator[None]:
        """Hold the write lock while the block writes on a connection from `read_connection`: a step
        that computes before it writes holds the lock only for the write. In the cluster profile it is
        an advisory lock on the catalog's Postgres database, which guards writers on every machine."""
        cluster = self._cluster
        if cluster:
            lock = warehouse_lock.held_in_postgres(
                cluster.lake_catalog_dsn, timeout_seconds=self.lock_timeout_seconds, log=_say_waiting
            )
        else:
            lock = warehouse_lock.held(
                lake_lock_file(self.database_path), timeout_seconds=self.lock_timeout_seconds, log=_say_waiting
            )
        with lock:
            yield

    @contextmanager
    def read_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        if self._cluster is None and not self.database_path.exists():
            raise FileNotFoundError(
                f"No warehouse at {self.database_path} yet: run `ecom-assets run` (or `make demo`)."
            )
        con = self._connect()
        try:
            define_macros(con)
            yield con
        finally:
            con.close()

    def data_bytes(self) -> int:
        """The lake's size: its folder's in the local profile, the catalogued files' in the cluster one."""
        if self._cluster is None:
            return lake.data_bytes(lake_data_path(self.database_path))
        with self.read_connection() as con:
            return lake.catalogued_bytes(con)


def _has_tables(con: duckdb.DuckDBPyConnection) -> bool:
    return con.execute(f"SELECT count(*) FROM duckdb_tables() WHERE database_name = '{lake.LAKE}'").fetchone()[0] > 0


def _warehouse(paths: EcomPaths) -> WarehouseResource:
    # Plain values read now, not EnvVars: Dagster does not resolve them inside `connection_config`.
    return WarehouseResource(
        database=str(paths.lake_catalog),
        profile=active_profile(),
        connection_config={
            # A limit below the machine's memory makes DuckDB spill big sorts to disk.
            "memory_limit": env_str("ECOM_DUCKDB_MEMORY_LIMIT", DUCKDB_MEMORY_LIMIT),
            "threads": int(env_float("ECOM_DUCKDB_THREADS", DUCKDB_THREADS)),
            "temp_directory": str(paths.duckdb_spill),
            "preserve_insertion_order": True,
        },
        **_from_environment(WarehouseResource),
    )


def build_resources(paths: EcomPaths | None = None) -> dict[str, object]:
    """The warehouse and the shared settings, rooted at `paths` (default: ECOM_HOME)."""
    paths = paths or EcomPaths.from_env()
    cluster_config()  # in the cluster profile, a missing service address fails here, named
    return {
        "settings": EcomSettings(home=str(paths.home), **_from_environment(EcomSettings)),
        "duckdb": _warehouse(paths),
    }


def build_ml_resources() -> dict[str, object]:
    return {"ml_settings": MLSettings(**_from_environment(MLSettings))}
