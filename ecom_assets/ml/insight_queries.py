"""The six questions the old dashboard asked of predicted_purchase, as SQL (no Dagster import).

The insights assets run them in the warehouse; the app runs the same SQL over the published
Parquet snapshot. A conversion rate is converted rows over rows in the group, never above 1.
"""

from dataclasses import dataclass

HOLDOUT = "FROM ecommerce.predicted_purchase WHERE dataset = 'test'"
FORWARD = "FROM ecommerce.predicted_purchase WHERE dataset = 'score'"


def _rates_by(column: str, expression: str | None = None, order: str | None = None) -> str:
    expression = expression or column
    return f"""
        SELECT {expression} AS {column}, count(*) AS rows, sum(converted) AS converted,
               round(avg(converted), 4) AS conversion_rate,
               round(avg(predicted_prob), 4) AS predicted_conversion_rate
        {HOLDOUT} GROUP BY ALL ORDER BY {order or column}"""


@dataclass(frozen=True)
class Insight:
    name: str
    description: str
    sql: str
    x: str
    ys: tuple[str, ...]
    horizontal: bool = False


INTERACTION_BANDS = """CASE WHEN interaction_score <= 1 THEN '01: 1'
                            WHEN interaction_score <= 3 THEN '02: 2-3'
                            WHEN interaction_score <= 6 THEN '03: 4-6'
                            WHEN interaction_score <= 10 THEN '04: 7-10'
                            ELSE '05: 11+' END"""

INSIGHTS = (
    Insight("conversion_overview", "Overall conversion: actual vs predicted, holdout and forward-looking cutoffs.", """
        SELECT dataset, any_value(cutoff) AS cutoff, count(*) AS rows, sum(converted) AS converted,
               round(avg(converted), 4) AS conversion_rate,
               round(avg(predicted_prob), 4) AS predicted_conversion_rate,
               round(sum(predicted_prob), 1) AS expected_conversions,
               sum(predicted_label) AS predicted_buyers
        FROM ecommerce.predicted_purchase GROUP BY dataset ORDER BY cutoff""",
            "dataset", ("conversion_rate", "predicted_conversion_rate")),
    Insight("top_items_by_predicted_conversions", "Top 20 items by expected conversions in the next horizon.", f"""
        SELECT itemid, count(*) AS interested_visitors, round(sum(predicted_prob), 2) AS expected_conversions,
               sum(predicted_label) AS predicted_buyers, round(max(predicted_prob), 4) AS max_prob
        {FORWARD} GROUP BY itemid ORDER BY expected_conversions DESC, itemid LIMIT 20""",
            "itemid", ("expected_conversions",), horizontal=True),
    Insight("conversion_by_engagement_score", "Conversion rate by engagement band (holdout).",
            _rates_by("engagement_score"), "engagement_score", ("conversion_rate", "predicted_conversion_rate")),
    Insight("conversion_by_funnel_depth", "Conversion rate by the deepest funnel stage before the cutoff (holdout).",
            _rates_by("funnel_depth"), "funnel_depth", ("conversion_rate", "predicted_conversion_rate")),
    Insight("conversion_by_interaction_score", "Conversion rate by interaction score band (holdout).",
            _rates_by("interaction_band", INTERACTION_BANDS), "interaction_band",
            ("conversion_rate", "predicted_conversion_rate")),
    Insight("high_intent_visitors", "Top 50 visitors by expected purchases in the next horizon.", f"""
        SELECT visitorid, count(*) AS items_considered, round(sum(predicted_prob), 3) AS expected_purchases,
               round(max(predicted_prob), 4) AS max_prob, arg_max(itemid, predicted_prob) AS most_likely_item
        {FORWARD} GROUP BY visitorid ORDER BY expected_purchases DESC, visitorid LIMIT 50""",
            "visitorid", ("expected_purchases",), horizontal=True),
)
