"""Jobs. Both run in-process: one warehouse writer at a time inside a run (DESIGN decision 2)."""

import dagster as dg

from ecom_assets.assets.silver import SILVER_DUPLICATES, SILVER_EVENTS, SILVER_QUARANTINE
from ecom_assets.partitions import landing_files

INGESTION = dg.AssetSelection.groups("bronze", "silver")

ingest_landing_file_job = dg.define_asset_job(
    name="ingest_landing_file",
    description="Land one file: bronze lines, then silver events, quarantine and duplicates.",
    selection=INGESTION,
    partitions_def=landing_files,
    executor_def=dg.in_process_executor,
)

# Everything downstream of silver: rebuilt whole from all ingested files.
DOWNSTREAM_OF_SILVER = (
    dg.AssetSelection.assets(SILVER_EVENTS, SILVER_QUARANTINE, SILVER_DUPLICATES).downstream()
    - INGESTION
)

refresh_warehouse_job = dg.define_asset_job(
    name="refresh_warehouse",
    description="Rebuild every table downstream of silver (gold and onwards) with its checks.",
    selection=DOWNSTREAM_OF_SILVER,
    executor_def=dg.in_process_executor,
)
