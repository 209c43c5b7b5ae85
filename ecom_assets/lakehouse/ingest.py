"""Landing file -> bronze -> silver, as plain functions over a DuckDB connection (no Dagster import)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from ecom_assets.lakehouse import SQL
from ecom_assets.lakehouse.landing import FORMATS, LandingFileError, detect_format, read_header
from ecom_assets.lakehouse.warehouse import load_sql, run_sql_file, scalar

# A byte that never occurs in a text export: every line is read whole as one column.
_NO_DELIMITER = "\x1f"

ACCEPTED, HEADER_ONLY, REJECTED = "accepted", "header_only", "rejected"


@dataclass
class LandingFileReport:
    source_file: str
    status: str
    message: str
    source_format: str | None = None
    data_lines: int = 0
    malformed_lines: int = 0


@dataclass
class SilverReport:
    source_file: str
    bronze_lines: int = 0
    events: int = 0
    duplicates: int = 0
    quarantined: int = 0
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    skipped_because: str | None = None

    @property
    def balanced(self) -> bool:
        return self.bronze_lines == self.events + self.duplicates + self.quarantined


def _record_landing_file(con, report: LandingFileReport, path: Path, header: str | None, at) -> None:
    con.execute("DELETE FROM bronze.landing_files WHERE source_file = ?", [report.source_file])
    con.execute(
        "INSERT INTO bronze.landing_files VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            report.source_file,
            report.source_format,
            report.status,
            report.message,
            header,
            path.stat().st_size if path.exists() else None,
            report.data_lines,
            at,
        ],
    )


def load_bronze(con: duckdb.DuckDBPyConnection, path: Path) -> LandingFileReport:
    """Replace one landing file's lines in bronze.events, atomically; never raises for bad content.

    A file that cannot be read at all (missing, empty, unknown header) is recorded as rejected in
    bronze.landing_files with the reason, and its previously loaded lines (if any) stay untouched.
    """
    at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    name = path.name
    header = None
    try:
        if not path.exists():
            raise LandingFileError(f"{name}: not found in the landing folder {path.parent}")
        header = read_header(path)
        fmt = detect_format(path)
    except LandingFileError as exc:
        report = LandingFileReport(name, REJECTED, str(exc))
        con.execute("BEGIN TRANSACTION")
        _record_landing_file(con, report, path, header, at)
        con.execute("COMMIT")
        return report

    con.execute("BEGIN TRANSACTION")
    try:
        run_sql_file(
            con,
            SQL / "bronze_events_load.sql",
            {
                "source_file": name,
                "source_format": fmt.name,
                "path": str(path),
                "delimiter": _NO_DELIMITER,
                "ingested_at": at,
            },
        )
        lines = scalar(con, "SELECT count(*) FROM bronze.events WHERE source_file = ?", [name])
        if lines:
            report = LandingFileReport(name, ACCEPTED, f"{lines:,} data lines in {fmt.name} format", fmt.name, lines)
        else:
            report = LandingFileReport(
                name, HEADER_ONLY, f"{name}: only a header ({fmt.name} format), no data lines", fmt.name, 0
            )
        _record_landing_file(con, report, path, header, at)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return report


def landing_file_status(con: duckdb.DuckDBPyConnection, source_file: str) -> tuple[str, str | None, str]:
    row = con.execute(
        "SELECT status, source_format, message FROM bronze.landing_files WHERE source_file = ?", [source_file]
    ).fetchone()
    if row is None:
        raise LookupError(f"{source_file}: not in bronze.landing_files; materialize bronze/events first")
    return row


def load_silver(con: duckdb.DuckDBPyConnection, source_file: str) -> SilverReport:
    """Parse one file's bronze lines into silver.events, quarantine and duplicates, atomically."""
    status, source_format, message = landing_file_status(con, source_file)
    report = SilverReport(source_file)
    if status == REJECTED:
        report.skipped_because = message
        return report
    fmt = next(f for f in FORMATS if f.name == source_format)
    con.execute("BEGIN TRANSACTION")
    try:
        params = {"source_file": source_file, "source_format": fmt.name}
        run_sql_file(con, SQL / f"silver_parse_{fmt.name}.sql", params)
        run_sql_file(con, SQL / "silver_events_load.sql", params)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    counts = con.execute(load_sql(SQL / "silver_routing_counts.sql"), {"source_file": source_file}).fetchone()
    report.bronze_lines, report.events, report.duplicates, report.quarantined = counts
    report.quarantine_reasons = quarantine_reasons(con, source_file)
    return report


def quarantine_reasons(con: duckdb.DuckDBPyConnection, source_file: str) -> dict[str, int]:
    """Reasons grouped by kind ('negative price -3.5' and 'negative price -1' are one kind)."""
    return dict(con.execute(load_sql(SQL / "silver_quarantine_reasons.sql"), {"source_file": source_file}).fetchall())
