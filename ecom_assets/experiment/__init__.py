"""The checkout A/B experiment, without Dagster: assignment (shared with the generator), the user and
session tables (`sql/`), the statistics and the charts."""

from pathlib import Path

SQL = Path(__file__).with_name("sql")
