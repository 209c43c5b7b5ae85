"""Metadata values that show well in the Dagster UI (shared by the asset modules)."""

import base64

import dagster as dg
import duckdb

from ecom_assets.lakehouse.warehouse import markdown_preview, scalar


def image_metadata(png: bytes, alt: str) -> dg.MetadataValue:
    """A PNG shown inline: markdown with the image embedded as a data URL."""
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})")


def table_metadata(con: duckdb.DuckDBPyConnection, table: str, order_by: str = "1") -> dict:
    """Row count, table name and a preview of its first rows in `order_by` order."""
    return {
        "dagster/row_count": scalar(con, f"SELECT count(*) FROM {table}"),
        "table": table,
        "preview": dg.MetadataValue.md(markdown_preview(con, f"SELECT * FROM {table} ORDER BY {order_by}")),
    }
