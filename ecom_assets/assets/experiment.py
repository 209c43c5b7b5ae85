"""The checkout A/B experiment: assignment, optional simulated uplift, the analysis and the app's view.

SQL builds the tables; the statistics are the plain functions of ``ecom_assets.experiment.analysis``
run on one row per user (a few columns, small enough for pandas even for the real export).
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
from dagster_duckdb import DuckDBResource

from ecom_assets.assets.gold import DIM_USERS, FACT_USER_SESSIONS
from ecom_assets.assets.silver import SILVER_EVENTS
from ecom_assets.experiment.analysis import OUTPUT_COLUMNS, analyze_experiment, sample_ratio_mismatch
from ecom_assets.experiment.assignment import CONTROL, TREATMENT, legacy_group_sql
from ecom_assets.experiment.charts import funnel_by_arm, funnel_chart, lift_chart
from ecom_assets.resources import WAREHOUSE_POOL, EcomSettings, warehouse
from ecom_assets.warehouse import load_sql, markdown_preview, run_sql_file, scalar, split_statements

ASSIGNMENTS = dg.AssetKey(["experiment", "assignments"])
SIMULATED_PURCHASES = dg.AssetKey(["experiment", "simulated_purchases"])
AB_TEST_RESULTS = dg.AssetKey(["experiment", "ab_test_results"])
AB_SESSIONS_BY_ARM = dg.AssetKey(["experiment", "ab_sessions_by_arm"])

LEGACY_EXPERIMENT = "legacy_md5_parity"
MIN_USERS_PER_ARM = 2  # Welch's t-test needs a variance per arm; a tiny file gets a verdict, not a crash
RESULT_COLUMNS = OUTPUT_COLUMNS[:2] + ["assignment", "treatment_share"] + OUTPUT_COLUMNS[2:] + ["simulated_uplift"]

_experiment = dict(group_name="experiment", kinds={"duckdb"}, pool=WAREHOUSE_POOL)


# ---------------------------------------------------------------------------------------------
# plain functions (no Dagster): tested directly

def experiment_results(
    users: pd.DataFrame, experiment_key: str, treatment_share: float, simulated_uplift: float = 0.0
) -> pd.DataFrame:
    """One row per experiment and metric (users, converted_users, sample_ratio, conversion_rate,
    revenue_per_user): the configured experiment, then the legacy md5-parity split of the same
    users (reproduces the seed project's numbers; on generated data it is a placebo)."""
    frames = []
    for experiment, assignment, share, column in (
        (experiment_key, "salted_md5", treatment_share, "experiment_group"),
        (LEGACY_EXPERIMENT, "legacy_md5_parity", 0.5, "legacy_group"),
    ):
        arms = users[["user_id", column, "converted", "revenue"]].rename(columns={column: "experiment_group"})
        n_c, n_t = int((arms["experiment_group"] == CONTROL).sum()), int((arms["experiment_group"] == TREATMENT).sum())
        if min(n_c, n_t) < MIN_USERS_PER_ARM:
            result = too_few_users(experiment, n_c, n_t)
        else:
            result = analyze_experiment(arms, experiment, share)
        converted = arms.groupby("experiment_group")["converted"].sum()
        counts = result.iloc[[0]].assign(  # right after the users row, same verdict
            metric="converted_users", control_value=float(converted.get(CONTROL, 0)),
            treatment_value=float(converted.get(TREATMENT, 0)))
        result = pd.concat([result.iloc[[0]], counts, result.iloc[1:]], ignore_index=True)
        result["assignment"], result["treatment_share"] = assignment, share
        frames.append(result)
    out = pd.concat(frames, ignore_index=True)
    out["simulated_uplift"] = float(simulated_uplift)
    return out[RESULT_COLUMNS]


def too_few_users(experiment: str, n_control: int, n_treatment: int) -> pd.DataFrame:
    """The users row alone, with a verdict that says why nothing else was computed."""
    row = dict(experiment=experiment, metric="users", control_value=float(n_control),
               treatment_value=float(n_treatment),
               verdict=(f"Too few users to analyze ({n_control:,} control, {n_treatment:,} treatment): "
                        f"each arm needs at least {MIN_USERS_PER_ARM}."))
    out = pd.DataFrame([row]).reindex(columns=OUTPUT_COLUMNS)
    out["significant"] = out["significant"].astype("boolean")
    return out


def results_markdown(results: pd.DataFrame) -> str:
    """The metric rows of one experiment, formatted for people."""
    lines = ["| metric | control | treatment | lift | 95% CI | relative lift | test | statistic | p-value |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in results.itertuples():
        if row.metric in ("users", "converted_users"):
            lines.append(f"| {row.metric} | {row.control_value:,.0f} | {row.treatment_value:,.0f} | | | | | | |")
            continue
        pct = row.metric in ("conversion_rate", "sample_ratio")
        value = (lambda v: f"{v:.2%}") if pct else (lambda v: f"{v:.2f}")
        lift = (lambda v: f"{v * 100:+.2f} pp") if pct else (lambda v: f"{v:+.2f}")
        ci = (f"{lift(row.absolute_ci_low)} to {lift(row.absolute_ci_high)}"
              if pd.notna(row.absolute_ci_low) else "")
        rel = (f"{row.relative_lift:+.1%} ({row.relative_ci_low:+.1%} to {row.relative_ci_high:+.1%})"
               if pd.notna(row.relative_ci_low) else "")
        lines.append(f"| {row.metric} | {value(row.control_value)} | {value(row.treatment_value)} | "
                     f"{lift(row.absolute_lift)} | {ci} | {rel} | {row.test} | {row.statistic:.3f} | "
                     f"{row.p_value:.3g} |")
    return "\n".join(lines)


def write_atomically(path: Path, data: bytes) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


def publish_parquet(con: duckdb.DuckDBPyConnection, table: str, path: Path) -> Path:
    """A Parquet snapshot for readers, written to a temp name and swapped in (DESIGN decision 2)."""
    tmp = path.with_name(f".{path.name}.tmp")
    con.execute(f"COPY (SELECT * FROM {table}) TO '{tmp}' (FORMAT parquet)")
    os.replace(tmp, path)
    return path


def _image(png: bytes, alt: str) -> dg.MetadataValue:
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})")


def _register_legacy_macro(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"CREATE OR REPLACE TEMP MACRO legacy_experiment_group(uid) AS {legacy_group_sql('uid')}")


# ---------------------------------------------------------------------------------------------
# assets

@dg.asset(key=ASSIGNMENTS, deps=[DIM_USERS], **_experiment)
def assignments(duckdb: DuckDBResource, settings: EcomSettings) -> dg.MaterializeResult:
    """Each user's arm: salted md5 of experiment key + user_id (as the generator), plus the legacy md5 parity arm."""
    with warehouse(duckdb, settings) as con:
        _register_legacy_macro(con)
        run_sql_file(con, "experiment_assignments.sql",
                     {"experiment_key": settings.experiment_key, "treatment_share": settings.treatment_share})
        by_arm = dict(con.execute(
            "SELECT experiment_group, count(*) FROM experiment.assignments GROUP BY 1").fetchall())
        legacy_agree = scalar(con, "SELECT avg((experiment_group = legacy_group)::INT) FROM experiment.assignments")
        preview = markdown_preview(con, "SELECT * FROM experiment.assignments ORDER BY user_id")
    total = sum(by_arm.values())
    return dg.MaterializeResult(metadata={
        "dagster/row_count": total,
        "experiment_key": settings.experiment_key,
        "intended_treatment_share": settings.treatment_share,
        "control_users": by_arm.get(CONTROL, 0),
        "treatment_users": by_arm.get(TREATMENT, 0),
        "observed_treatment_share": round(by_arm.get(TREATMENT, 0) / total, 4) if total else 0.0,
        "agreement_with_legacy_parity": round(legacy_agree or 0.0, 4),
        "preview": dg.MetadataValue.md(preview),
    })


@dg.asset(key=SIMULATED_PURCHASES, deps=[SILVER_EVENTS, FACT_USER_SESSIONS], **_experiment)
def simulated_purchases(duckdb: DuckDBResource, settings: EcomSettings) -> dg.MaterializeResult:
    """Simulated checkout uplift for real files (off by default): purchases added after treated users' carts."""
    share, seed = settings.simulated_uplift, settings.simulated_uplift_seed
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"ECOM_SIMULATED_UPLIFT must be a share between 0 and 1, got {share}")
    with warehouse(duckdb, settings) as con:
        run_sql_file(con, "experiment_simulated_purchases.sql", {"share": share, "seed": seed})
        added = scalar(con, "SELECT count(*) FROM experiment.simulated_purchases")
        treated_carts = scalar(
            con, "SELECT count(*) FROM silver.events WHERE event_type = 'cart' "
                 "AND experiment_group(user_id) = 'treatment'") if share > 0 else None
        preview = markdown_preview(con, "SELECT * FROM experiment.simulated_purchases "
                                        "ORDER BY cart_source_file, cart_line_number")
    metadata = {
        "dagster/row_count": added,
        "simulated_uplift": "on" if share > 0 else "off (set ECOM_SIMULATED_UPLIFT to turn it on)",
        "uplift_share_of_treated_carts": share,
        "seed": seed,
    }
    if share > 0:
        metadata.update(treated_cart_events=treated_carts,
                        realized_share=round(added / treated_carts, 4) if treated_carts else 0.0,
                        preview=dg.MetadataValue.md(preview))
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(key=AB_TEST_RESULTS, deps=[ASSIGNMENTS, SIMULATED_PURCHASES, DIM_USERS], **_experiment)
def ab_test_results(duckdb: DuckDBResource, settings: EcomSettings) -> dg.MaterializeResult:
    """One row per experiment and metric: SRM, conversion (chi-square, lifts with CIs), revenue (Welch), MDE, verdict."""
    paths = settings.paths
    with warehouse(duckdb, settings) as con:
        (user_sql,) = split_statements(load_sql("experiment_user_outcomes.sql"))
        users = con.execute(user_sql).df()
        results = experiment_results(users, settings.experiment_key, settings.treatment_share,
                                     settings.simulated_uplift)
        con.register("ab_test_results_df", results)
        con.execute("CREATE OR REPLACE TABLE experiment.ab_test_results AS SELECT * FROM ab_test_results_df")
        con.unregister("ab_test_results_df")
        published = publish_parquet(con, "experiment.ab_test_results", paths.published / "ab_test_results.parquet")

    main = results[results["experiment"] == settings.experiment_key].set_index("metric")
    legacy = results[results["experiment"] == LEGACY_EXPERIMENT]
    title = f"{settings.experiment_key}" + (
        f" (simulated uplift {settings.simulated_uplift:.0%})" if settings.simulated_uplift > 0 else "")
    funnel_png = funnel_chart(funnel_by_arm(users), f"Funnel by arm: {title}")
    lift_png = lift_chart(main.reset_index(), f"Lift with 95% CI: {title}")
    funnel_path = write_atomically(paths.reports / "experiment_funnel.png", funnel_png)
    lift_path = write_atomically(paths.reports / "experiment_lift.png", lift_png)
    figures = {}
    if "conversion_rate" in main.index:
        conversion, revenue = main.loc["conversion_rate"], main.loc["revenue_per_user"]
        figures = {
            "srm_p_value": float(main.loc["sample_ratio", "p_value"]),
            "conversion_absolute_lift": float(conversion["absolute_lift"]),
            "conversion_p_value": float(conversion["p_value"]),
            "conversion_mde_absolute": float(conversion["mde_absolute"]),
            "revenue_per_user_lift": float(revenue["absolute_lift"]),
            "revenue_p_value": float(revenue["p_value"]),
        }
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(results),
        "verdict": dg.MetadataValue.text(main["verdict"].iloc[0]),
        "results": dg.MetadataValue.md(results_markdown(main.reset_index())),
        **figures,
        "simulated_uplift": (f"ON: {settings.simulated_uplift:.1%} of treated users' carts + a purchase "
                             f"(seed {settings.simulated_uplift_seed}); results include simulated purchases"
                             if settings.simulated_uplift > 0 else "off"),
        "legacy_md5_parity_verdict": dg.MetadataValue.text(legacy["verdict"].iloc[0]),
        "funnel_chart": _image(funnel_png, "funnel by arm"),
        "lift_chart": _image(lift_png, "lift with 95% CI"),
        "funnel_chart_path": dg.MetadataValue.path(str(funnel_path)),
        "lift_chart_path": dg.MetadataValue.path(str(lift_path)),
        "published": dg.MetadataValue.path(str(published)),
    })


@dg.asset(key=AB_SESSIONS_BY_ARM, deps=[FACT_USER_SESSIONS, SIMULATED_PURCHASES], **_experiment)
def ab_sessions_by_arm(duckdb: DuckDBResource, settings: EcomSettings) -> dg.MaterializeResult:
    """Sessions by arm for the app: session conversion and cart-abandonment rates, published as Parquet."""
    paths = settings.paths
    with warehouse(duckdb, settings) as con:
        run_sql_file(con, "experiment_ab_sessions_by_arm.sql",
                     {"experiment_key": settings.experiment_key, "simulated_uplift": settings.simulated_uplift})
        published = publish_parquet(con, "experiment.ab_sessions_by_arm",
                                    paths.published / "ab_sessions_by_arm.parquet")
        rates = dict(con.execute(
            "SELECT experiment_group, cart_abandonment_rate FROM experiment.ab_sessions_by_arm").fetchall())
        preview = markdown_preview(con, "SELECT * FROM experiment.ab_sessions_by_arm")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(rates),
        "cart_abandonment_control": round(rates.get(CONTROL) or 0.0, 4),
        "cart_abandonment_treatment": round(rates.get(TREATMENT) or 0.0, 4),
        "preview": dg.MetadataValue.md(preview),
        "published": dg.MetadataValue.path(str(published)),
    })


# ---------------------------------------------------------------------------------------------
# checks

@dg.asset_check(
    asset=AB_TEST_RESULTS,
    name="sample_ratio_mismatch",
    description="The observed split matches the intended one (chi-square goodness of fit, p >= 0.001); "
                "if not, assignment or logging lost users unevenly and no result is to be trusted.",
    blocking=True,
    pool=WAREHOUSE_POOL,
)
def sample_ratio_mismatch_check(duckdb: DuckDBResource, settings: EcomSettings) -> dg.AssetCheckResult:
    with warehouse(duckdb, settings) as con:
        row = con.execute(
            "SELECT control_value, treatment_value FROM experiment.ab_test_results "
            "WHERE experiment = ? AND metric = 'users'", [settings.experiment_key]).fetchone()
    if row is None:
        return dg.AssetCheckResult(passed=False, description=(
            f"experiment.ab_test_results has no rows for experiment {settings.experiment_key!r}"))
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


ARM_MISMATCH_SQL = """
SELECT a.user_id, a.experiment_group AS assigned, s.experiment_group AS in_sessions, count(*) AS sessions
FROM experiment.assignments a JOIN gold.fact_user_sessions s USING (user_id)
WHERE s.experiment_group <> a.experiment_group
GROUP BY ALL
"""


@dg.asset_check(
    asset=ASSIGNMENTS,
    name="arms_match_sessions",
    description="Every user's sessions carry the arm of experiment.assignments (same hash, same settings).",
    pool=WAREHOUSE_POOL,
)
def arms_match_sessions(duckdb: DuckDBResource, settings: EcomSettings) -> dg.AssetCheckResult:
    with warehouse(duckdb, settings) as con:
        count = scalar(con, f"SELECT count(*) FROM ({ARM_MISMATCH_SQL})")
        sample = markdown_preview(con, ARM_MISMATCH_SQL + " ORDER BY user_id") if count else "_none_"
    return dg.AssetCheckResult(
        passed=count == 0,
        description=f"{count:,} user(s) whose sessions carry another arm" if count else "passed",
        metadata={"offending_rows": count, "sample": dg.MetadataValue.md(sample)},
    )


experiment_checks = [sample_ratio_mismatch_check, arms_match_sessions]
