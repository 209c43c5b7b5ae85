"""The lakehouse's data tests (`ecom_assets.lakehouse.data_tests`) as asset checks.

A check passes when its query returns no row; its metadata carries the count and a sample, so the
UI shows what broke without opening a notebook. The checks of one table run in one step on one
warehouse connection (each is still its own check in the UI and can run alone); every landing file
is one ingest run, so this keeps a run's steps few. In an ingest run (partition key = the landing
file) the file-level tests look only at that file's rows, so a check costs what its file costs; run
without a partition they cover all files (metadata `scope`). One check also looks at the landing
folder: files whose rows are in the warehouse but which are gone from it.
"""

from collections.abc import Callable, Iterator

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from ecom_assets.lakehouse.data_tests import DATA_TESTS, DataTest, find_violations
from ecom_assets.lakehouse.ingest import vanished_landing_files
from ecom_assets.resources import WAREHOUSE_POOL, EcomSettings, open_warehouse

BRONZE_EVENTS = dg.AssetKey(["bronze", "events"])


def data_test_result(
    test: DataTest, con: duckdb.DuckDBPyConnection, relation: str | None = None, source_file: str | None = None
) -> dg.AssetCheckResult:
    found = find_violations(con, test, relation, source_file)
    return dg.AssetCheckResult(
        asset_key=dg.AssetKey(test.table.split(".")),
        check_name=test.name,
        passed=found.count == 0,
        severity=dg.AssetCheckSeverity.WARN if test.warn_only else dg.AssetCheckSeverity.ERROR,
        description=(
            f"{found.count:,} offending row(s), e.g. {', '.join(found.first_keys)}" if found.count else "passed"
        ),
        metadata={
            "offending_rows": found.count,
            "sample": dg.MetadataValue.md(found.sample_markdown),
            **({"verified": dg.MetadataValue.md(found.evidence_markdown)} if found.evidence_markdown else {}),
            **({"scope": found.scope} if found.scope else {}),
        },
    )


def build_data_test(test: DataTest) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=dg.AssetKey(test.table.split(".")),
        name=test.name,
        description=test.description,
        blocking=test.blocking,
        pool=WAREHOUSE_POOL,
    )
    def _check(duckdb: DuckDBResource, settings: EcomSettings) -> dg.AssetCheckResult:
        with open_warehouse(duckdb, settings, writer=False) as con:
            return data_test_result(test, con)

    return _check


# A check that needs more than the connection: (spec, evaluate(con, settings)).
ExtraCheck = tuple[dg.AssetCheckSpec, Callable[[duckdb.DuckDBPyConnection, EcomSettings], dg.AssetCheckResult]]


def build_table_checks(table: str, tests: list[DataTest], extra: list[ExtraCheck] = ()) -> dg.AssetChecksDefinition:
    """All data tests of one table (plus `extra` checks on it) as one multi-asset check."""
    asset = dg.AssetKey(table.split("."))
    specs = [dg.AssetCheckSpec(t.name, asset=asset, description=t.description, blocking=t.blocking) for t in tests]

    @dg.multi_asset_check(
        name=f"{table.replace('.', '__')}_data_tests",
        specs=[*specs, *(spec for spec, _ in extra)],
        can_subset=True,
        pool=WAREHOUSE_POOL,
    )
    def _checks(
        context: dg.AssetCheckExecutionContext, duckdb: DuckDBResource, settings: EcomSettings
    ) -> Iterator[dg.AssetCheckResult]:
        selected = context.selected_asset_check_keys
        # An ingest run's landing file (its partition key); a check run alone covers all files.
        source_file = context.partition_key if context.has_partition_key else None
        with open_warehouse(duckdb, settings, writer=False) as con:
            for test in tests:
                if dg.AssetCheckKey(asset, test.name) in selected:
                    yield data_test_result(test, con, source_file=source_file)
            for spec, evaluate in extra:
                if spec.key in selected:
                    yield evaluate(con, settings)

    return _checks


def landing_files_present(con: duckdb.DuckDBPyConnection, settings: EcomSettings) -> dg.AssetCheckResult:
    files = settings.files
    gone = vanished_landing_files(con, files.missing_landing)
    table = "\n".join(f"| {name!r} | {lines:,} | {at:%Y-%m-%d %H:%M} |" for name, lines, at in gone[:20])
    return dg.AssetCheckResult(
        asset_key=BRONZE_EVENTS,
        check_name="landing_files_present",
        passed=not gone,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            f"{len(gone):,} file(s) gone from {files.landing_location} whose lines stay in bronze and silver: "
            + ", ".join(repr(name) for name, _, _ in gone[:5])
            + "; retract them to remove their rows (docs/data.md, 'Retracting a file')"
            if gone
            else "passed"
        ),
        metadata={
            "offending_rows": len(gone),
            "sample": dg.MetadataValue.md(
                "| file | lines | loaded at |\n|---|---|---|\n" + table if gone else "_none_"
            ),
        },
    )


LANDING_FILES_PRESENT = dg.AssetCheckSpec(
    "landing_files_present",
    asset=BRONZE_EVENTS,
    description="Every file whose lines are in the warehouse is still in the landing folder; a vanished "
    "file keeps its rows until retracted (docs/data.md, 'Retracting a file').",
)

# Per-partition tests run inside their asset (assets/gold.py), on the rows each run publishes.
_table_tests = [t for t in DATA_TESTS if not t.per_partition]
_tables = dict.fromkeys(t.table for t in _table_tests)
lakehouse_data_checks = [
    build_table_checks(
        table,
        [t for t in _table_tests if t.table == table],
        [(LANDING_FILES_PRESENT, landing_files_present)] if table == "bronze.events" else [],
    )
    for table in _tables
]
