"""What `ecom-assets run` prints at the end: rows per table, the A/B verdict, the models, the files."""

from __future__ import annotations

import duckdb

from ecom_assets import experiment, lakehouse, ml
from ecom_assets.ecom_home import EcomPaths
from ecom_assets.experiment.ab_results import LEGACY_EXPERIMENT
from ecom_assets.lakehouse.warehouse import load_sql, scalar, table_exists

SUMMARY_TABLES = [
    "bronze.events",
    "silver.events",
    "silver.events_duplicates",
    "silver.events_quarantine",
    "gold.fact_user_sessions",
    "gold.dim_users",
    "experiment.assignments",
    "experiment.simulated_purchases",
    "experiment.ab_test_results",
    "experiment.ab_sessions_by_arm",
    "gold.user_item_features",
    "gold.cart_session_features",
    "ml.purchase_model",
    "ml.cart_abandonment_model",
    "gold.ecommerce_predictions",
    "gold.cart_abandonment_scores",
    "ecommerce.predicted_purchase",
]
MODEL_TABLES = {"ml.purchase_model": "purchase model", "ml.cart_abandonment_model": "cart-abandonment model"}


def table_rows(con: duckdb.DuckDBPyConnection) -> list[tuple[str, int | None]]:
    """Rows per summary table; None for a table not built yet."""
    sql = load_sql(lakehouse.SQL / "table_rows.sql")
    return [(t, scalar(con, sql, {"table_name": t}) if table_exists(con, t) else None) for t in SUMMARY_TABLES]


def highlights(con: duckdb.DuckDBPyConnection | None, paths: EcomPaths) -> list[str]:
    """The A/B verdict, each model's production version and holdout PR-AUC, and where the files are."""
    lines = []
    if con is not None and table_exists(con, "experiment.ab_test_results"):
        verdict = scalar(
            con, load_sql(experiment.SQL / "experiment_verdict.sql"), {"legacy_experiment": LEGACY_EXPERIMENT}
        )
        lines.append(f"A/B test: {verdict}")
    for table, label in MODEL_TABLES.items():
        if con is not None and table_exists(con, table):
            rows = con.execute(load_sql(ml.SQL / "model_leaderboard.sql"), {"model_table": table}).fetchall()
            lines.append(
                f"{label} (production v{rows[0][2]}), holdout PR-AUC: "
                + ", ".join(f"{model} {pr_auc:.3f}" for model, pr_auc, _ in rows)
            )
    for folder in (paths.published, paths.reports):
        files = sorted(p.name for p in folder.glob("*") if p.is_file() and not p.name.startswith("."))
        lines.append(f"{folder}: {', '.join(files) or '(empty)'}")
    return lines
