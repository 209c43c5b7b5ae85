"""Jobs. Their steps run with the code location's executor (ecom_assets/executors.py: in the run's process
by default, or on Celery workers); steps and runs side by side share the warehouse by its write lock
(lakehouse/warehouse_lock.py)."""

import dagster as dg

from ecom_assets.assets.gold import FACT_USER_SESSIONS
from ecom_assets.assets.models import CART_ABANDONMENT_MODEL, PURCHASE_MODEL
from ecom_assets.assets.silver import SILVER_DUPLICATES, SILVER_EVENTS, SILVER_QUARANTINE
from ecom_assets.lakehouse import lake
from ecom_assets.partitions import event_days, landing_files
from ecom_assets.resources import WAREHOUSE_POOL, WarehouseResource

INGESTION = dg.AssetSelection.groups("bronze", "silver")

ingest_landing_file_job = dg.define_asset_job(
    name="ingest_landing_file",
    description="Land one file: bronze lines, then silver events, quarantine and duplicates.",
    selection=INGESTION,
    partitions_def=landing_files,
)

# The sessions of the days a load changed, one run per range of days (lakehouse/event_days.py).
SESSIONS = dg.AssetSelection.assets(FACT_USER_SESSIONS)

build_sessions_job = dg.define_asset_job(
    name="build_sessions",
    description="Sessionize a range of days (the days new files changed, and the day on either side).",
    selection=SESSIONS,
    partitions_def=event_days,
)

# Everything downstream of silver but the day-partitioned sessions: rebuilt from the sessions and silver.
DOWNSTREAM_OF_SILVER = (
    dg.AssetSelection.assets(SILVER_EVENTS, SILVER_QUARANTINE, SILVER_DUPLICATES).downstream() - INGESTION - SESSIONS
)
TRAINING = dg.AssetSelection.assets(PURCHASE_MODEL, CART_ABANDONMENT_MODEL)

# The daily path: training is left to retrain_models (weekly schedule, drift/staleness sensor, by hand).
refresh_warehouse_job = dg.define_asset_job(
    name="refresh_warehouse",
    description="Rebuild every table downstream of silver with its checks, score with the production models "
    "and report drift; no retraining.",
    selection=DOWNSTREAM_OF_SILVER - TRAINING,
)

# The first build of a home (no production model to score with yet, see one_shot.run_pipeline) or a
# full rebuild by hand: the refresh with both trainings, which run before the scoring and the reports.
refresh_and_retrain_job = dg.define_asset_job(
    name="refresh_and_retrain",
    description="Rebuild every table downstream of silver, retrain both models (promote if better), "
    "score and report drift.",
    selection=DOWNSTREAM_OF_SILVER,
)

# Both trainings and everything they feed (batch predictions, the published snapshot, insights),
# drift reports excluded like the per-model retrain jobs below.
retrain_models_job = dg.define_asset_job(
    name="retrain_models",
    description="Retrain both models (promote if better), then rescore and republish.",
    selection=TRAINING.downstream() - dg.AssetSelection.groups("monitoring"),
)


def _retrain_one(name: str, model: dg.AssetKey):
    # Reports stay out: the next daily refresh reports on the new model, so a retraining can
    # never trigger itself in a loop.
    return dg.define_asset_job(
        name=name,
        description=f"Retrain {model.to_user_string()} (promote if better), rescore and republish.",
        selection=dg.AssetSelection.assets(model).downstream() - dg.AssetSelection.groups("monitoring"),
    )


retrain_purchase_model_job = _retrain_one("retrain_purchase_model", PURCHASE_MODEL)
retrain_cart_abandonment_model_job = _retrain_one("retrain_cart_abandonment_model", CART_ABANDONMENT_MODEL)


LAKE_SNAPSHOT_KEEP_HOURS = 24.0


@dg.op(pool=WAREHOUSE_POOL)
def expire_lake_snapshots(context: dg.OpExecutionContext, duckdb: WarehouseResource) -> None:
    """Forget the lake's snapshots older than a day and delete the Parquet files only they used."""
    before = duckdb.data_bytes()
    with duckdb.get_connection() as con:
        lake.expire_old_snapshots(con, LAKE_SNAPSHOT_KEEP_HOURS)
    after = duckdb.data_bytes()
    context.log.info(f"lake data: {before / 1e6:,.1f} MB -> {after / 1e6:,.1f} MB")
    context.add_output_metadata({"lake_mb_before": round(before / 1e6, 1), "lake_mb_after": round(after / 1e6, 1)})


@dg.job(
    description="Forget lake snapshots older than a day and delete the files only they used (time travel "
    "keeps a day; every rewrite of a table would otherwise stay on disk)."
)
def maintain_lake():
    expire_lake_snapshots()
