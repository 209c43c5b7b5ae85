"""Bronze: every landed line, kept as landed, one dynamic partition per landing file."""

import dagster as dg
from dagster_duckdb import DuckDBResource
from pydantic import Field

from ecom_assets.assets.ui_metadata import DATA_PLATFORM, column_schema
from ecom_assets.file_store import LANDING, S3Files
from ecom_assets.lakehouse.ingest import ACCEPTED, load_bronze
from ecom_assets.lakehouse.warehouse import markdown_preview
from ecom_assets.partitions import landing_files
from ecom_assets.resources import WAREHOUSE_POOL, EcomSettings, open_warehouse


class BronzeLoadConfig(dg.Config):
    retract: bool = Field(
        default=False,
        description="Remove the file's lines from bronze (and silver, in the same run) instead of loading it; "
        "the file must be gone from the landing folder (docs/data.md, 'Retracting a file').",
    )


@dg.asset(
    key=["bronze", "events"],
    group_name="bronze",
    partitions_def=landing_files,
    kinds={"duckdb"},
    pool=WAREHOUSE_POOL,
    owners=DATA_PLATFORM,
)
def bronze_events(
    context: dg.AssetExecutionContext, config: BronzeLoadConfig, duckdb: DuckDBResource, settings: EcomSettings
) -> dg.MaterializeResult:
    """Every line of one landing file as landed (file, line number, raw text), malformed lines too."""
    files = settings.files
    # The partition key is the file's name in landing; in the cluster profile the file is read from a
    # scratch copy of the bucket's object (downloaded before the warehouse is opened), removed once loaded.
    with files.landing_copy(context.partition_key) as path, open_warehouse(duckdb, settings) as con:
        where = files.landing_location if isinstance(files, S3Files) else None
        try:
            report = load_bronze(con, path, retract=config.retract, landing=where)
        except ValueError as exc:
            raise dg.Failure(str(exc)) from exc
        preview = markdown_preview(
            con,
            "SELECT line_number, raw_line, line_ending, raw_bytes IS NOT NULL AS not_utf8 FROM bronze.events "
            "WHERE source_file = ? ORDER BY line_number",
            [report.source_file],
            limit=5,
        )
        schema = column_schema(con, "bronze.events")
    log = context.log.info if report.status == ACCEPTED else context.log.warning
    log(report.message)
    return dg.MaterializeResult(
        metadata={
            "status": report.status,
            "message": report.message,
            "source_format": report.source_format or "unknown",
            "dagster/row_count": report.data_lines,
            "dagster/column_schema": schema,
            "load_id": report.load_id or "",
            "path": dg.MetadataValue.path(files.url(LANDING, context.partition_key)),
            "preview": dg.MetadataValue.md(preview),
        }
    )
