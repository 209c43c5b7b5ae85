"""The checkout A/B experiment: assignment, optional simulated uplift, the analysis and the app's view.

SQL (`ecom_assets/experiment/sql/`) builds the tables; the statistics are the plain functions of
`ecom_assets.experiment` run on one row per user (a few columns, small enough for pandas at any scale).
"""

import dagster as dg
from dagster_duckdb import DuckDBResource

from ecom_assets.assets.gold import DIM_USERS, FACT_USER_SESSIONS
from ecom_assets.assets.silver import SILVER_EVENTS
from ecom_assets.assets.ui_metadata import GROWTH, column_schema, image_metadata, rounded
from ecom_assets.experiment import SQL
from ecom_assets.experiment.ab_charts import funnel_chart, lift_chart, user_funnel_by_arm
from ecom_assets.experiment.ab_results import LEGACY_EXPERIMENT, experiment_results, results_markdown
from ecom_assets.experiment.assignment import CONTROL, TREATMENT
from ecom_assets.file_store import PUBLISHED, REPORTS
from ecom_assets.lakehouse.warehouse import load_sql, markdown_preview, run_sql_file, scalar, split_statements
from ecom_assets.publishing import publish_parquet, write_atomically
from ecom_assets.resources import WAREHOUSE_POOL, EcomSettings, open_warehouse

ASSIGNMENTS = dg.AssetKey(["experiment", "assignments"])
SIMULATED_PURCHASES = dg.AssetKey(["experiment", "simulated_purchases"])
AB_TEST_RESULTS = dg.AssetKey(["experiment", "ab_test_results"])
AB_SESSIONS_BY_ARM = dg.AssetKey(["experiment", "ab_sessions_by_arm"])

_experiment = dict(group_name="experiment", kinds={"duckdb"}, pool=WAREHOUSE_POOL, owners=GROWTH)


@dg.asset(key=ASSIGNMENTS, deps=[DIM_USERS], **_experiment)
def assignments(duckdb: DuckDBResource, settings: EcomSettings) -> dg.MaterializeResult:
    """Each user's arm: salted md5 of experiment key + user_id (as the generator), plus the legacy md5 parity arm."""
    with open_warehouse(duckdb, settings) as con:
        run_sql_file(
            con,
            SQL / "experiment_assignments.sql",
            {"experiment_key": settings.experiment_key, "treatment_share": settings.treatment_share},
        )
        by_arm = dict(
            con.execute("SELECT experiment_group, count(*) FROM experiment.assignments GROUP BY 1").fetchall()
        )
        legacy_agree = scalar(con, "SELECT avg((experiment_group = legacy_group)::INT) FROM experiment.assignments")
        preview = markdown_preview(con, "SELECT * FROM experiment.assignments ORDER BY user_id")
        schema = column_schema(con, "experiment.assignments")
    total = sum(by_arm.values())
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": total,
            "dagster/column_schema": schema,
            "experiment_key": settings.experiment_key,
            "intended_treatment_share": settings.treatment_share,
            "control_users": by_arm.get(CONTROL, 0),
            "treatment_users": by_arm.get(TREATMENT, 0),
            "observed_treatment_share": rounded(by_arm.get(TREATMENT, 0) / total) if total else 0.0,
            "agreement_with_legacy_parity": rounded(legacy_agree),
            "preview": dg.MetadataValue.md(preview),
        }
    )


@dg.asset(key=SIMULATED_PURCHASES, deps=[SILVER_EVENTS, FACT_USER_SESSIONS], **_experiment)
def simulated_purchases(duckdb: DuckDBResource, settings: EcomSettings) -> dg.MaterializeResult:
    """Simulated checkout uplift for real files (off by default): purchases added after treated users' carts."""
    share, seed = settings.simulated_uplift, settings.simulated_uplift_seed
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"ECOM_SIMULATED_UPLIFT must be a share between 0 and 1, got {share}")
    with open_warehouse(duckdb, settings) as con:
        run_sql_file(con, SQL / "experiment_simulated_purchases.sql", {"share": share, "seed": seed})
        added = scalar(con, "SELECT count(*) FROM experiment.simulated_purchases")
        treated_carts = (
            scalar(
                con,
                "SELECT count(*) FROM silver.events WHERE event_type = 'cart' "
                "AND experiment_group(user_id) = 'treatment'",
            )
            if share > 0
            else None
        )
        preview = markdown_preview(
            con, "SELECT * FROM experiment.simulated_purchases ORDER BY cart_source_file, cart_line_number"
        )
    metadata = {
        "dagster/row_count": added,
        "simulated_uplift": "on" if share > 0 else "off (set ECOM_SIMULATED_UPLIFT to turn it on)",
        "uplift_share_of_treated_carts": share,
        "seed": seed,
    }
    if share > 0:
        metadata.update(
            treated_cart_events=treated_carts,
            realized_share=rounded(added / treated_carts) if treated_carts else 0.0,
            preview=dg.MetadataValue.md(preview),
        )
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(key=AB_TEST_RESULTS, deps=[ASSIGNMENTS, SIMULATED_PURCHASES, DIM_USERS], **_experiment)
def ab_test_results(duckdb: DuckDBResource, settings: EcomSettings) -> dg.MaterializeResult:
    """Per experiment and metric: SRM, conversion (chi-square, lifts with CIs), revenue (Welch), MDE, verdict."""
    files = settings.files
    with files.output(PUBLISHED) as published, open_warehouse(duckdb, settings) as con:
        (user_sql,) = split_statements(load_sql(SQL / "experiment_user_outcomes.sql"))
        users = con.execute(user_sql).df()
        results = experiment_results(
            users, settings.experiment_key, settings.treatment_share, settings.simulated_uplift
        )
        con.register("ab_test_results_df", results)
        con.execute("CREATE OR REPLACE TABLE experiment.ab_test_results AS SELECT * FROM ab_test_results_df")
        con.unregister("ab_test_results_df")
        publish_parquet(con, "experiment.ab_test_results", published / "ab_test_results.parquet")
        schema = column_schema(con, "experiment.ab_test_results")

    main = results[results["experiment"] == settings.experiment_key].set_index("metric")
    legacy = results[results["experiment"] == LEGACY_EXPERIMENT]
    title = f"{settings.experiment_key}" + (
        f" (simulated uplift {settings.simulated_uplift:.0%})" if settings.simulated_uplift > 0 else ""
    )
    funnel_png = funnel_chart(user_funnel_by_arm(users), f"Funnel by arm: {title}")
    lift_png = lift_chart(main.reset_index(), f"Lift with 95% CI: {title}")
    with files.output(REPORTS) as reports:
        write_atomically(reports / "experiment_funnel.png", funnel_png)
        write_atomically(reports / "experiment_lift.png", lift_png)
    figures = {}
    if "conversion_rate" in main.index:
        conversion, revenue = main.loc["conversion_rate"], main.loc["revenue_per_user"]
        figures = {
            "srm_p_value": rounded(main.loc["sample_ratio", "p_value"]),
            "conversion_absolute_lift": rounded(conversion["absolute_lift"]),
            "conversion_p_value": rounded(conversion["p_value"]),
            "conversion_mde_absolute": rounded(conversion["mde_absolute"]),
            "revenue_per_user_lift": rounded(revenue["absolute_lift"]),
            "revenue_p_value": rounded(revenue["p_value"]),
        }
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(results),
            "dagster/column_schema": schema,
            "verdict": dg.MetadataValue.text(main["verdict"].iloc[0]),
            "results": dg.MetadataValue.md(results_markdown(main.reset_index())),
            **figures,
            "simulated_uplift": (
                f"ON: {settings.simulated_uplift:.1%} of treated users' carts + a purchase "
                f"(seed {settings.simulated_uplift_seed}); results include simulated purchases"
                if settings.simulated_uplift > 0
                else "off"
            ),
            "legacy_md5_parity_verdict": dg.MetadataValue.text(legacy["verdict"].iloc[0]),
            "funnel_chart": image_metadata(funnel_png, "funnel by arm"),
            "lift_chart": image_metadata(lift_png, "lift with 95% CI"),
            "funnel_chart_path": dg.MetadataValue.path(files.url(REPORTS, "experiment_funnel.png")),
            "lift_chart_path": dg.MetadataValue.path(files.url(REPORTS, "experiment_lift.png")),
            "published": dg.MetadataValue.path(files.url(PUBLISHED, "ab_test_results.parquet")),
        }
    )


@dg.asset(key=AB_SESSIONS_BY_ARM, deps=[FACT_USER_SESSIONS, SIMULATED_PURCHASES], **_experiment)
def ab_sessions_by_arm(duckdb: DuckDBResource, settings: EcomSettings) -> dg.MaterializeResult:
    """Sessions by arm for the app: session conversion and cart-abandonment rates, published as Parquet."""
    files = settings.files
    with files.output(PUBLISHED) as published, open_warehouse(duckdb, settings) as con:
        run_sql_file(
            con,
            SQL / "experiment_ab_sessions_by_arm.sql",
            {"experiment_key": settings.experiment_key, "simulated_uplift": settings.simulated_uplift},
        )
        publish_parquet(con, "experiment.ab_sessions_by_arm", published / "ab_sessions_by_arm.parquet")
        rates = dict(
            con.execute("SELECT experiment_group, cart_abandonment_rate FROM experiment.ab_sessions_by_arm").fetchall()
        )
        preview = markdown_preview(con, "SELECT * FROM experiment.ab_sessions_by_arm")
        schema = column_schema(con, "experiment.ab_sessions_by_arm")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(rates),
            "dagster/column_schema": schema,
            "cart_abandonment_control": rounded(rates.get(CONTROL)),
            "cart_abandonment_treatment": rounded(rates.get(TREATMENT)),
            "preview": dg.MetadataValue.md(preview),
            "published": dg.MetadataValue.path(files.url(PUBLISHED, "ab_sessions_by_arm.parquet")),
        }
    )
