"""Machine learning without Dagster: feature SQL (`sql/`) and contracts, training, the MLflow registry,
batch scoring, explanations. The serving API and monitoring reuse these modules."""

from pathlib import Path

SQL = Path(__file__).with_name("sql")
