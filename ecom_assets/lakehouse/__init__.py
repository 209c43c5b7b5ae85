"""The lakehouse, without Dagster: landing-file detection, bronze/silver ingest, the warehouse's SQL.

Bronze, silver and gold tables are built by the SQL files in `sql/`, run by `warehouse.run_sql_file`.
"""

from pathlib import Path

SQL = Path(__file__).with_name("sql")
