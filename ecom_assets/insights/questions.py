"""The six questions the old dashboard asked of predicted_purchase (no Dagster import).

Each question's SQL is `sql/<name>.sql`. The insights assets run it in the warehouse; the app runs
the same SQL over the published Parquet snapshot. Conversion questions read the holdout cutoff
(converted is known, and the production model that scored it never saw it in training); "who and
what next" questions read the forward-looking cutoff, scored by production refit on every labelled
row. No train or validation row is published. A conversion rate is converted rows over rows in the
group, never above 1.
"""

from dataclasses import dataclass

from ecom_assets.insights import SQL


@dataclass(frozen=True)
class Insight:
    name: str
    description: str
    x: str  # the chart's category axis
    ys: tuple[str, ...]  # the chart's bars
    horizontal: bool = False

    @property
    def sql(self) -> str:
        return (SQL / f"{self.name}.sql").read_text()


INSIGHTS = (
    Insight(
        "conversion_overview",
        "Overall conversion: actual vs predicted, holdout and forward-looking cutoffs.",
        "dataset",
        ("conversion_rate", "predicted_conversion_rate"),
    ),
    Insight(
        "top_items_by_predicted_conversions",
        "Top 20 items by expected conversions in the next horizon.",
        "itemid",
        ("expected_conversions",),
        horizontal=True,
    ),
    Insight(
        "conversion_by_engagement_score",
        "Conversion rate by engagement band (holdout).",
        "engagement_score",
        ("conversion_rate", "predicted_conversion_rate"),
    ),
    Insight(
        "conversion_by_funnel_depth",
        "Conversion rate by the deepest funnel stage before the cutoff (holdout).",
        "funnel_depth",
        ("conversion_rate", "predicted_conversion_rate"),
    ),
    Insight(
        "conversion_by_interaction_score",
        "Conversion rate by interaction score band (holdout).",
        "interaction_band",
        ("conversion_rate", "predicted_conversion_rate"),
    ),
    Insight(
        "high_intent_visitors",
        "Top 50 visitors by expected purchases in the next horizon.",
        "visitorid",
        ("expected_purchases",),
        horizontal=True,
    ),
)

# Insights that report conversion rates: checked to stay within [0, 1].
RATE_INSIGHTS = [i for i in INSIGHTS if "conversion_rate" in i.sql]
