"""Insights: the six questions the old dashboard asked of predicted_purchase, each a table and a chart.

Conversion questions read the holdout cutoff (converted is known and no model saw it in
training); "who and what next" questions read the forward-looking cutoff. A conversion rate is
converted rows over rows in the group, so it never exceeds 1.
"""

import dagster as dg
from dagster_duckdb import DuckDBResource

from ecom_assets.assets.predictions import PREDICTED_PURCHASE
from ecom_assets.assets.ui_metadata import GROWTH, column_schema, image_metadata
from ecom_assets.file_store import REPORTS
from ecom_assets.insights.insight_charts import bar_chart
from ecom_assets.insights.questions import INSIGHTS, Insight
from ecom_assets.lakehouse.warehouse import markdown_preview, scalar
from ecom_assets.resources import WAREHOUSE_POOL, EcomSettings, open_warehouse


def _build(insight: Insight) -> dg.AssetsDefinition:
    table = f"insights.{insight.name}"

    @dg.asset(
        key=["insights", insight.name],
        deps=[PREDICTED_PURCHASE],
        group_name="insights",
        kinds={"duckdb"},
        pool=WAREHOUSE_POOL,
        owners=GROWTH,
        description=insight.description,
    )
    def _insight(
        context: dg.AssetExecutionContext, duckdb: DuckDBResource, settings: EcomSettings
    ) -> dg.MaterializeResult:
        with open_warehouse(duckdb, settings) as con:
            con.execute("CREATE SCHEMA IF NOT EXISTS insights")
            con.execute(f"CREATE OR REPLACE TABLE {table} AS {insight.sql}")
            rows = scalar(con, f"SELECT count(*) FROM {table}")
            frame = con.execute(f"SELECT * FROM {table}").df()
            preview = markdown_preview(con, f"SELECT * FROM {table}", limit=50)
            schema = column_schema(con, table)
        files = settings.files
        chart_name = f"insights/{insight.name}.png"
        chart_png = None
        if rows:
            plot = frame.assign(**{insight.x: frame[insight.x].astype(str)})
            with files.output(REPORTS) as reports:
                chart = reports / chart_name
                bar_chart(plot, insight.x, list(insight.ys), insight.description, chart, insight.horizontal)
                chart_png = chart.read_bytes()
        context.log.info(f"{table}: {rows} rows")
        metadata = {
            "dagster/row_count": rows,
            "dagster/column_schema": schema,
            "table": table,
            "result": dg.MetadataValue.md(preview),
        }
        if chart_png is not None:
            metadata["chart"] = image_metadata(chart_png, insight.description)
            metadata["chart_path"] = dg.MetadataValue.path(files.url(REPORTS, chart_name))
        return dg.MaterializeResult(metadata=metadata)

    _insight.__name__ = insight.name
    return _insight


insight_assets = [_build(i) for i in INSIGHTS]
