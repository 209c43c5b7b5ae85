"""Metadata values that show well in the Dagster UI (shared by the asset modules)."""

import base64
from pathlib import Path
from urllib.parse import quote

import dagster as dg
import duckdb

from ecom_assets.lakehouse.warehouse import markdown_preview, scalar

# Who answers for each part of the graph (the UI's owner badges and filters).
DATA_PLATFORM = ["team:data-platform"]
ML_TEAM = ["team:ml"]
GROWTH = ["team:growth"]


def rounded(value: float | None) -> float:
    """A figure for the UI: 4 significant digits (a p-value of 3.2e-9 stays readable, 0.4787 stays 0.4787)."""
    return float(f"{value or 0.0:.4g}")


def image_metadata(png: bytes, alt: str) -> dg.MetadataValue:
    """A PNG shown inline: markdown with the image embedded as a data URL."""
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})")


def file_url(path: Path | str) -> dg.MetadataValue:
    """A local file as a link the UI opens (file://), for reports a browser can show; an object in
    the bucket (s3://, cluster profile) as its URL."""
    if str(path).startswith("s3://"):
        return dg.MetadataValue.url(str(path))
    return dg.MetadataValue.url(Path(path).resolve().as_uri())


def mlflow_run_url(ui_base: str, experiment_id: str, run_id: str) -> str:
    return f"{ui_base.rstrip('/')}/#/experiments/{quote(str(experiment_id))}/runs/{quote(run_id)}"


def mlflow_model_version_url(ui_base: str, model_name: str, version: str | int) -> str:
    return f"{ui_base.rstrip('/')}/#/models/{quote(model_name)}/versions/{quote(str(version))}"


def column_schema(con: duckdb.DuckDBPyConnection, table: str) -> dg.TableSchema:
    """The table's columns and types as DuckDB describes them."""
    described = con.execute(f"DESCRIBE {table}").fetchall()
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name, kind, constraints=dg.TableColumnConstraints(nullable=null == "YES"))
            for name, kind, null, *_ in described
        ]
    )


def table_metadata(con: duckdb.DuckDBPyConnection, table: str, order_by: str = "1") -> dict:
    """Row count, column schema, table name and a preview of its first rows in `order_by` order."""
    return {
        "dagster/row_count": scalar(con, f"SELECT count(*) FROM {table}"),
        "dagster/column_schema": column_schema(con, table),
        "table": table,
        "preview": dg.MetadataValue.md(markdown_preview(con, f"SELECT * FROM {table} ORDER BY {order_by}")),
    }
