"""Checks of the checkout experiment: the split is as intended, and sessions carry their user's arm."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from ecom_assets.assets.ab_experiment import AB_TEST_RESULTS, ASSIGNMENTS
from ecom_assets.experiment import SQL
from ecom_assets.experiment.analysis import sample_ratio_mismatch
from ecom_assets.lakehouse.warehouse import load_sql, markdown_preview, scalar
from ecom_assets.resources import WAREHOUSE_POOL, EcomSettings, open_warehouse


@dg.asset_check(
    asset=AB_TEST_RESULTS,
    name="sample_ratio_mismatch",
    description="The observed split matches the intended one (chi-square goodness of fit, p >= 0.001); "
    "if not, assignment or logging lost users unevenly and no result is to be trusted.",
    blocking=True,
    pool=WAREHOUSE_POOL,
)
def sample_ratio_mismatch_check(duckdb: DuckDBResource, settings: EcomSettings) -> dg.AssetCheckResult:
    with open_warehouse(duckdb, settings, writer=False) as con:
        row = con.execute(
            "SELECT control_value, treatment_value FROM experiment.ab_test_results "
            "WHERE experiment = ? AND metric = 'users'",
            [settings.experiment_key],
        ).fetchone()
    if row is None:
        return dg.AssetCheckResult(
            passed=False,
            description=(f"experiment.ab_test_results has no rows for experiment {settings.experiment_key!r}"),
        )
    if row[0] + row[1] == 0:
        return dg.AssetCheckResult(passed=True, description="No users yet: nothing to compare.")
    srm = sample_ratio_mismatch(int(row[0]), int(row[1]), settings.treatment_share)
    return dg.AssetCheckResult(
        passed=not srm.mismatch,
        description=srm.message,
        metadata={
            "control_users": srm.n_control,
            "treatment_users": srm.n_treatment,
            "intended_treatment_share": srm.expected_treatment_share,
            "observed_treatment_share": round(srm.observed_treatment_share, 4),
            "chi_square": round(srm.statistic, 3),
            "p_value": srm.p_value,
        },
    )


@dg.asset_check(
    asset=ASSIGNMENTS,
    name="arms_match_sessions",
    description="Every user's sessions carry the arm of experiment.assignments (same hash, same settings).",
    pool=WAREHOUSE_POOL,
)
def arms_match_sessions(duckdb: DuckDBResource, settings: EcomSettings) -> dg.AssetCheckResult:
    with open_warehouse(duckdb, settings, writer=False) as con:
        mismatches = load_sql(SQL / "experiment_arm_mismatches.sql")
        count = scalar(con, f"SELECT count(*) FROM ({mismatches})")
        sample = markdown_preview(con, mismatches + " ORDER BY user_id") if count else "_none_"
    return dg.AssetCheckResult(
        passed=count == 0,
        description=f"{count:,} user(s) whose sessions carry another arm" if count else "passed",
        metadata={"offending_rows": count, "sample": dg.MetadataValue.md(sample)},
    )
