"""Silver: canonical typed events; every bronze line ends in exactly one of three tables."""

import datetime as dt

import dagster as dg
from dagster_duckdb import DuckDBResource

from ecom_assets.assets.ui_metadata import DATA_PLATFORM, column_schema
from ecom_assets.ecom_home import env_float
from ecom_assets.lakehouse.ingest import load_silver
from ecom_assets.lakehouse.warehouse import markdown_preview, scalar
from ecom_assets.partitions import landing_files
from ecom_assets.resources import WAREHOUSE_POOL, EcomSettings, open_warehouse

SILVER_EVENTS = dg.AssetKey(["silver", "events"])
SILVER_QUARANTINE = dg.AssetKey(["silver", "events_quarantine"])
SILVER_DUPLICATES = dg.AssetKey(["silver", "events_duplicates"])
_TABLES = {
    SILVER_EVENTS: "silver.events",
    SILVER_QUARANTINE: "silver.events_quarantine",
    SILVER_DUPLICATES: "silver.events_duplicates",
}

_deps = [dg.AssetDep(dg.AssetKey(["bronze", "events"]))]

FRESHNESS_WARN_HOURS, FRESHNESS_FAIL_HOURS = 26.0, 50.0  # ECOM_FRESHNESS_WARN_HOURS / _FAIL_HOURS


def with_landing_freshness(assets: list) -> list:
    """`assets` with silver.events' freshness policy, read from the environment when the
    definitions are built (`build_definitions`): a policy's windows cannot be `dg.EnvVar`s.

    Files land daily: the UI warns when no file has been ingested for a day and a bit, and marks
    silver as stale after two (shown on the asset page; evaluated by the Dagster daemon).
    """
    policy = dg.FreshnessPolicy.time_window(
        warn_window=dt.timedelta(hours=env_float("ECOM_FRESHNESS_WARN_HOURS", FRESHNESS_WARN_HOURS)),
        fail_window=dt.timedelta(hours=env_float("ECOM_FRESHNESS_FAIL_HOURS", FRESHNESS_FAIL_HOURS)),
    )
    return dg.map_asset_specs(
        lambda spec: spec.replace_attributes(freshness_policy=policy) if spec.key == SILVER_EVENTS else spec, assets
    )


def _silver_spec(key: dg.AssetKey, description: str) -> dg.AssetSpec:
    # silver/events gets its freshness policy from with_landing_freshness
    return dg.AssetSpec(key, deps=_deps, kinds={"duckdb"}, owners=DATA_PLATFORM, description=description)


@dg.multi_asset(
    name="silver_events",
    group_name="silver",
    partitions_def=landing_files,
    pool=WAREHOUSE_POOL,
    specs=[
        _silver_spec(SILVER_EVENTS, "Canonical typed events (UTC), one row per valid, distinct landed line."),
        _silver_spec(SILVER_QUARANTINE, "Landed lines that broke a rule, kept whole with the reason."),
        _silver_spec(
            SILVER_DUPLICATES,
            "Exact repeats of an earlier line of the same file, and events already in silver "
            "from another file (a copy landed under another name), with the line they repeat.",
        ),
    ],
)
def silver_events(context: dg.AssetExecutionContext, duckdb: DuckDBResource, settings: EcomSettings):
    """Parse one landing file's bronze lines into events, quarantine and duplicates."""
    source_file = context.partition_key
    with open_warehouse(duckdb, settings) as con:
        report = load_silver(con, source_file)
        events_preview = markdown_preview(
            con,
            "SELECT * EXCLUDE (source_file, source_format) FROM silver.events "
            "WHERE source_file = ? ORDER BY line_number",
            [source_file],
        )
        quarantine_preview = markdown_preview(
            con,
            "SELECT line_number, reason, raw_line FROM silver.events_quarantine "
            "WHERE source_file = ? ORDER BY line_number",
            [source_file],
        )
        totals = {t: scalar(con, f"SELECT count(*) FROM {t}") for t in _TABLES.values()}
        schemas = {key: column_schema(con, t) for key, t in _TABLES.items()}
    if report.skipped_because:
        context.log.warning(f"Nothing to parse: {report.skipped_because}")
    else:
        context.log.info(
            f"{source_file}: {report.bronze_lines:,} lines -> {report.events:,} events, "
            f"{report.duplicates:,} duplicates ({report.duplicates_of_other_files:,} of events from other files), "
            f"{report.quarantined:,} quarantined"
        )
    if report.rerouted:
        context.log.info(
            f"Routed again, as their duplicates pointed at this file's previous lines: {', '.join(report.rerouted)}"
        )
    reasons = "\n".join(f"| {k} | {v:,} |" for k, v in report.quarantine_reasons.items())
    # dagster/row_count is this partition's (this file's) rows, as Dagster reads it for a partitioned
    # asset; table_rows_total is what the whole table holds after this run.
    common = {"bronze_lines": report.bronze_lines}
    if report.skipped_because:
        common["skipped_because"] = report.skipped_because

    def counts(key: dg.AssetKey, partition_rows: int) -> dict:
        return {
            "dagster/row_count": partition_rows,
            "partition_rows": partition_rows,
            "table_rows_total": totals[_TABLES[key]],
            "dagster/column_schema": schemas[key],
        }

    yield dg.MaterializeResult(
        asset_key=SILVER_EVENTS,
        metadata={
            **common,
            **counts(SILVER_EVENTS, report.events),
            "duplicates_removed": report.duplicates,
            "quarantined": report.quarantined,
            "preview": dg.MetadataValue.md(events_preview),
        },
    )
    yield dg.MaterializeResult(
        asset_key=SILVER_QUARANTINE,
        metadata={
            **common,
            **counts(SILVER_QUARANTINE, report.quarantined),
            "reasons": dg.MetadataValue.md("| reason | lines |\n|---|---|\n" + reasons if reasons else "_none_"),
            "preview": dg.MetadataValue.md(quarantine_preview),
        },
    )
    yield dg.MaterializeResult(
        asset_key=SILVER_DUPLICATES,
        metadata={
            **common,
            **counts(SILVER_DUPLICATES, report.duplicates),
            "duplicates_of_other_files": report.duplicates_of_other_files,
            "rerouted_files": ", ".join(report.rerouted),
        },
    )
