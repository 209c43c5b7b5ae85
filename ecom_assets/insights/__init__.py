"""The analysts' questions of the published predictions, without Dagster: their SQL and their charts."""

from pathlib import Path

SQL = Path(__file__).with_name("sql")
