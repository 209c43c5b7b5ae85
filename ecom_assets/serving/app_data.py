"""What the Streamlit app shows, as plain functions over the published snapshots and reports.

The app reads only `ECOM_HOME/published/*.parquet`, `ECOM_HOME/reports/` and the scoring API:
never the warehouse, which the pipeline may be writing (DESIGN decision 2). No Streamlit import.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ecom_assets.ecom_home import env_float
from ecom_assets.ml.feature_specs import CART_FEATURES, EXPERIMENT_GROUPS
from ecom_assets.monitoring.drift import DriftReportFile, latest_reports
from ecom_assets.publishing import sql_literal

AB_RESULTS = "ab_test_results.parquet"
AB_SESSIONS_BY_ARM = "ab_sessions_by_arm.parquet"
PREDICTED_PURCHASE = "predicted_purchase.parquet"

CURRENCY = "USD"  # REES46 prices are in US dollars
API_MAX_UPLOAD_MB = 20.0  # the API's default /bulk_predict cap (serving.api.ServingSettings.max_upload_bytes)


def usd(value: float, signed: bool = False) -> str:
    """$1,234.56, or with `signed` +$1.23 / -$1.23 (the sign first, so st.metric colours the delta)."""
    sign = ("-" if value < 0 else "+") if signed else ("-" if value < 0 else "")
    return f"{sign}${abs(value):,.2f}"


def upload_limit_mb() -> int:
    """The largest upload, in whole MB, the API's /bulk_predict accepts (`ECOM_API_MAX_UPLOAD_MB`, 20).

    Rounded down, so the uploader never takes a file the API would refuse; at least 1 (Streamlit's floor).
    """
    return max(1, math.floor(env_float("ECOM_API_MAX_UPLOAD_MB", API_MAX_UPLOAD_MB)))


def read_published(published: Path, name: str) -> pd.DataFrame | None:
    path = published / name
    return pd.read_parquet(path) if path.exists() else None


# --------------------------------------------------------------------------------------------
# A/B dashboard


@dataclass(frozen=True)
class ArmComparison:
    metric: str
    control: float
    treatment: float
    absolute_lift: float
    relative_lift: float
    p_value: float
    significant: bool | None
    ci_low: float
    ci_high: float


def experiments(results: pd.DataFrame, by_arm: pd.DataFrame | None = None) -> list[str]:
    """The experiments in `ab_test_results`, the one the sessions table is about first."""
    names = list(dict.fromkeys(results["experiment"].astype(str)))
    main = [] if by_arm is None or "experiment" not in by_arm else list(dict.fromkeys(by_arm["experiment"].astype(str)))
    return [n for n in main if n in names] + [n for n in names if n not in main]


def _one(results: pd.DataFrame, experiment: str | None) -> pd.DataFrame:
    return results if experiment is None else results[results["experiment"] == experiment]


def ab_comparisons(results: pd.DataFrame, experiment: str | None = None) -> dict[str, ArmComparison]:
    """Conversion and revenue per user, treatment against control, from `ab_test_results`."""
    out = {}
    for _, row in _one(results, experiment).iterrows():
        if row["metric"] not in ("conversion_rate", "revenue_per_user"):
            continue
        significant = row.get("significant")
        out[row["metric"]] = ArmComparison(
            row["metric"],
            float(row["control_value"]),
            float(row["treatment_value"]),
            float(row["absolute_lift"]),
            float(row["relative_lift"]),
            float(row["p_value"]),
            None if significant is None or pd.isna(significant) else bool(significant),
            float(row["absolute_ci_low"]),
            float(row["absolute_ci_high"]),
        )
    return out


def ab_verdict(results: pd.DataFrame, experiment: str | None = None) -> tuple[str, bool]:
    """The test's verdict sentence and whether a sample ratio mismatch voids it."""
    results = _one(results, experiment)
    verdict = str(results["verdict"].iloc[0]) if len(results) else "No verdict published."
    srm = results[results["metric"] == "sample_ratio"]
    mismatch = bool(len(srm) and not pd.isna(srm["significant"].iloc[0]) and srm["significant"].iloc[0])
    return verdict, mismatch


FUNNEL_STAGES = (
    ("sessions_with_view", "viewed"),
    ("sessions_with_cart", "carted"),
    ("purchasing_sessions", "purchased"),
)


def session_funnel_by_arm(by_arm: pd.DataFrame) -> pd.DataFrame:
    """Share of each arm's sessions reaching each stage: rows are stages, one column per arm."""
    rows = {}
    for _, arm in by_arm.iterrows():
        sessions = float(arm["sessions"]) or math.nan
        rows[arm["experiment_group"]] = {stage: float(arm[column]) / sessions for column, stage in FUNNEL_STAGES}
    stages = [stage for _, stage in FUNNEL_STAGES]
    frame = pd.DataFrame(rows).reindex(stages)
    frame.index = pd.CategoricalIndex(frame.index, categories=stages, ordered=True, name="stage")
    return frame[[arm for arm in EXPERIMENT_GROUPS if arm in frame.columns]]


def funnel_long(funnel: pd.DataFrame) -> pd.DataFrame:
    """`session_funnel_by_arm` as one row per (stage, arm, share), stages in funnel order."""
    long = funnel.reset_index().melt(id_vars="stage", var_name="arm", value_name="share")
    return long.assign(stage=long["stage"].astype(str))


# --------------------------------------------------------------------------------------------
# insights: the six dashboard questions, with the SQL of `assets.insights` run over the snapshot


def insight_tables(predicted_purchase: Path) -> list[tuple[object, pd.DataFrame]]:
    """(Insight, result) for each of the six questions, computed from `predicted_purchase.parquet`.

    The SQL is the insights assets' own; here it runs in an in-memory DuckDB over the published
    snapshot, so the app and the warehouse tables agree without the app opening the warehouse.
    """
    import duckdb

    from ecom_assets.insights.questions import INSIGHTS

    con = duckdb.connect()
    try:
        con.execute("CREATE SCHEMA ecommerce")
        # DDL takes no parameters: the path goes in as a quoted literal.
        con.execute(
            f"CREATE VIEW ecommerce.predicted_purchase AS SELECT * FROM read_parquet({sql_literal(predicted_purchase)})"
        )
        return [(insight, con.execute(insight.sql).df()) for insight in INSIGHTS]
    finally:
        con.close()


# How each insight is charted: readable titles, which measures are rates (shown as percentages) and
# whether the categories keep the SQL's order (bands, stages) or are ranked by the value (top-N lists).

COLUMN_TITLES = {
    "dataset": "Cutoff",
    "itemid": "Item id",
    "visitorid": "Visitor id",
    "engagement_score": "Engagement score",
    "funnel_depth": "Deepest funnel stage before the cutoff",
    "interaction_band": "Interaction score band",
    "conversion_rate": "Actual conversion rate",
    "predicted_conversion_rate": "Predicted conversion rate",
    "expected_conversions": "Expected conversions (sum of purchase probabilities)",
    "expected_purchases": "Expected purchases (sum of purchase probabilities)",
}
CATEGORY_LABELS = {  # codes on a category axis, in words
    "dataset": {"test": "holdout (test)", "score": "forward-looking (score)"},
    "funnel_depth": {"1": "1: viewed", "2": "2: carted", "3": "3: purchased"},
}
RANKED_INSIGHTS = ("top_items_by_predicted_conversions", "high_intent_visitors")  # sorted by value


def title(column: str) -> str:
    return COLUMN_TITLES.get(column, column.replace("_", " ").capitalize())


def is_rate(column: str) -> bool:
    return column.endswith("_rate") or column.endswith("_probability") or column.endswith("_share")


def is_money(column: str) -> bool:
    return column.startswith("revenue") or column == "cart_item_price"


def number_formats(columns) -> dict[str, str]:
    """Streamlit NumberColumn formats for a table's rate (percent) and money (dollar) columns."""
    return {c: "percent" if is_rate(c) else "dollar" for c in columns if is_rate(c) or is_money(c)}


@dataclass(frozen=True)
class InsightChart:
    """One insight's chart data, long form: `category` (str), `measure` (a readable title), `value`."""

    data: pd.DataFrame
    category_title: str
    value_title: str
    category_order: list[str]  # the order on the category axis
    percent: bool  # the values are rates
    ranked: bool  # the categories are ranked by value, highest first
    horizontal: bool


def insight_chart(insight, frame: pd.DataFrame) -> InsightChart:
    """How `insight`'s result is charted: top-N lists ranked by value, bands and stages in SQL order."""
    ys = list(insight.ys)
    ranked = insight.name in RANKED_INSIGHTS
    categories = frame[insight.x].astype(str)
    labels = CATEGORY_LABELS.get(insight.x, {})
    categories = categories.map(lambda c: labels.get(c, c))
    ordered = frame.assign(category=categories)
    if ranked:
        ordered = ordered.sort_values(ys[0], ascending=False, kind="stable")
    long = ordered.melt(id_vars="category", value_vars=ys, var_name="measure", value_name="value")
    long = long.assign(measure=long["measure"].map(title), value=long["value"].astype(float))
    percent = all(is_rate(y) for y in ys)
    return InsightChart(
        data=long,
        category_title=title(insight.x),
        value_title=title(ys[0]) if len(ys) == 1 else ("Conversion rate" if percent else "Value"),
        category_order=list(dict.fromkeys(ordered["category"])),
        percent=percent,
        ranked=ranked,
        horizontal=insight.horizontal,
    )


# --------------------------------------------------------------------------------------------
# monitoring


def latest_drift_reports(reports: Path) -> list[DriftReportFile]:
    """The newest drift report per model, newest first."""
    return sorted(latest_reports(reports).values(), key=lambda r: -r.modified)


# --------------------------------------------------------------------------------------------
# bulk scoring


def example_sessions(rows: int = 200, seed: int = 0) -> pd.DataFrame:
    """A CSV-ready table of plausible sessions (the required features, one optional, an id) to try bulk scoring."""
    rng = np.random.default_rng(seed)
    previous = rng.poisson(2, rows)
    return pd.DataFrame(
        {
            "session_id": [f"s{i:05d}" for i in range(rows)],
            "views_before_cart": rng.poisson(3, rows),
            "other_items_viewed": rng.poisson(1.5, rows),
            "cart_item_views": rng.poisson(1, rows),
            "minutes_to_first_cart": np.round(rng.gamma(2.0, 3.0, rows), 1),
            "cart_item_price": np.round(rng.gamma(2.0, 20.0, rows), 2),
            "experiment_group": rng.choice(EXPERIMENT_GROUPS, rows),
            "previous_sessions": previous,
            "previous_purchases": rng.binomial(previous, 0.3),
            "hour_of_day": rng.integers(0, 24, rows),
        }
    )


def optional_session_features() -> list:
    return [s for s in CART_FEATURES if not s.required]
