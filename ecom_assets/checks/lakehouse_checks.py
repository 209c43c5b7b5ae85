"""The lakehouse's data tests (`ecom_assets.lakehouse.data_tests`) as asset checks.

A check passes when its query returns no row; its metadata carries the count and a sample, so the
UI shows what broke without opening a notebook.
"""

import dagster as dg
from dagster_duckdb import DuckDBResource

from ecom_assets.lakehouse.data_tests import DATA_TESTS, DataTest, find_violations
from ecom_assets.resources import WAREHOUSE_POOL, EcomSettings, open_warehouse


def build_data_test(test: DataTest) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=dg.AssetKey(test.table.split(".")),
        name=test.name,
        description=test.description,
        blocking=test.blocking,
        pool=WAREHOUSE_POOL,
    )
    def _check(duckdb: DuckDBResource, settings: EcomSettings) -> dg.AssetCheckResult:
        with open_warehouse(duckdb, settings) as con:
            found = find_violations(con, test)
        return dg.AssetCheckResult(
            passed=found.count == 0,
            severity=dg.AssetCheckSeverity.WARN if test.warn_only else dg.AssetCheckSeverity.ERROR,
            description=(
                f"{found.count:,} offending row(s), e.g. {', '.join(found.first_keys)}" if found.count else "passed"
            ),
            metadata={"offending_rows": found.count, "sample": dg.MetadataValue.md(found.sample_markdown)},
        )

    return _check


lakehouse_data_checks = [build_data_test(t) for t in DATA_TESTS]
