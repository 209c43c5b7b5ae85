"""What `ecom-assets run` prints at the end: rows per table, landing files that did not land whole
(with the cause), the A/B verdict, the models, the files."""

from __future__ import annotations

from pathlib import Path

import duckdb

from ecom_assets import experiment, lakehouse, ml
from ecom_assets.ecom_home import EcomPaths
from ecom_assets.experiment.ab_results import LEGACY_EXPERIMENT
from ecom_assets.file_store import PUBLISHED, REPORTS, LocalFiles, S3Files, file_store
from ecom_assets.lakehouse.ingest import ACCEPTED, RETRACTED, pending_silver_files, vanished_landing_files
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


def shown(name: str) -> str:
    """A file name as printed: quoted and escaped when it holds a tab, a newline or another control."""
    return name if name.isprintable() else repr(name)


def landing_file_problems(con: duckdb.DuckDBPyConnection, landing: Path | LocalFiles | S3Files) -> list[str]:
    """One line per landing file that did not land whole, with its cause; files gone from the landing
    folder (or the bucket's landing prefix) whose rows stay; files whose latest bronze load silver has
    not routed yet."""
    if isinstance(landing, Path):
        missing, where = landing, str(landing)
    else:
        missing, where = landing.missing_landing, landing.landing_location
    if not table_exists(con, "bronze.landing_files"):
        return []
    lines = []
    rows = con.execute(
        "SELECT source_file, status, message FROM bronze.landing_files WHERE status NOT IN (?, ?) ORDER BY 1",
        [ACCEPTED, RETRACTED],
    ).fetchall()
    for name, status, message in rows:
        cause = (message or "").removeprefix(f"{name}: ").replace(name, shown(name))
        lines.append(f"landing file {shown(name)} {status}: {cause}")
    for name, count, at in vanished_landing_files(con, missing):
        if name not in {r[0] for r in rows}:
            lines.append(
                f"landing file {shown(name)} gone from {where}: its {count:,} lines (loaded {at:%Y-%m-%d %H:%M}) "
                "stay in bronze and silver until it is retracted (docs/data.md)"
            )
    if table_exists(con, "silver.routed_files"):
        for name, status, *_ in pending_silver_files(con):
            lines.append(
                f"landing file {shown(name)}: silver pending, its latest bronze load ({status}) is not routed yet; "
                "materialize its silver/events partition"
            )
    return lines


def highlights(con: duckdb.DuckDBPyConnection | None, paths: EcomPaths) -> list[str]:
    """Landing files that did not land whole, the A/B verdict, each model's production version and
    holdout PR-AUC, and where the files are."""
    files = file_store(paths)
    lines = landing_file_problems(con, files) if con is not None else []
    if con is not None and table_exists(con, "experiment.ab_test_results"):
        verdict = scalar(
            con, load_sql(experiment.SQL / "experiment_verdict.sql"), {"legacy_experiment": LEGACY_EXPERIMENT}
        )
        lines.append(f"A/B test: {verdict}")
    for table, label in MODEL_TABLES.items():
        if con is not None and table_exists(con, table):
            rows = con.execute(load_sql(ml.SQL / "model_leaderboard.sql"), {"model_table": table}).fetchall()
            champion, role, pr_auc, no_skill, lift, brier_skill, production = rows[0]
            lines.append(
                f"{label} (production v{production}; this training's {role} {champion}): holdout PR-AUC "
                f"{pr_auc:.3f} against {no_skill:.4f} for no skill (the base rate), {lift:.1f}x; Brier skill "
                f"{brier_skill:.3f}. Others: " + ", ".join(f"{row[0]} {row[2]:.3f}" for row in rows[1:])
            )
    for kind in (PUBLISHED, REPORTS):
        lines.append(f"{files.url(kind, '')}: {', '.join(files.names(kind)) or '(empty)'}")
    return lines
