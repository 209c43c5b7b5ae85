"""Insights: the six questions the old dashboard asked of predicted_purchase, each a table and a chart.

Conversion questions read the holdout cutoff (converted is known and no model saw it in
training); "who and what next" questions read the forward-looking cutoff. A conversion rate is
converted rows over rows in the group, so it never exceeds 1.
"""

from dataclasses import dataclass

import dagster as dg
from dagster_duckdb import DuckDBResource

from ecom_assets.assets.predictions import PREDICTED_PURCHASE
from ecom_assets.ml.plots import bar_chart
from ecom_assets.resources import WAREHOUSE_POOL, EcomSettings, warehouse
from ecom_assets.warehouse import markdown_preview, scalar

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
    Insight("conversion_overview", "Overall conversion: actual vs predicted, holdout and forward-looking cutoffs.", f"""
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

# Insights that report conversion rates: checked to stay within [0, 1].
RATE_INSIGHTS = [i for i in INSIGHTS if "conversion_rate" in i.sql]


def insight_key(insight: Insight) -> dg.AssetKey:
    return dg.AssetKey(["insights", insight.name])


def _build(insight: Insight) -> dg.AssetsDefinition:
    table = f"insights.{insight.name}"

    @dg.asset(key=insight_key(insight), deps=[PREDICTED_PURCHASE], group_name="insights", kinds={"duckdb"},
              pool=WAREHOUSE_POOL, description=insight.description)
    def _insight(context: dg.AssetExecutionContext, duckdb: DuckDBResource,
                 settings: EcomSettings) -> dg.MaterializeResult:
        with warehouse(duckdb, settings) as con:
            con.execute("CREATE SCHEMA IF NOT EXISTS insights")
            con.execute(f"CREATE OR REPLACE TABLE {table} AS {insight.sql}")
            rows = scalar(con, f"SELECT count(*) FROM {table}")
            frame = con.execute(f"SELECT * FROM {table}").df()
            preview = markdown_preview(con, f"SELECT * FROM {table}", limit=50)
        chart = settings.paths.reports / "insights" / f"{insight.name}.png"
        if rows:
            plot = frame.assign(**{insight.x: frame[insight.x].astype(str)})
            bar_chart(plot, insight.x, list(insight.ys), insight.description, chart, insight.horizontal)
        context.log.info(f"{table}: {rows} rows")
        metadata = {"dagster/row_count": rows, "table": table, "result": dg.MetadataValue.md(preview)}
        if rows:
            metadata["chart"] = dg.MetadataValue.path(str(chart))
        return dg.MaterializeResult(metadata=metadata)

    _insight.__name__ = insight.name
    return _insight


insight_assets = [_build(i) for i in INSIGHTS]
