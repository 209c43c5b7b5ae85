"""Landing file -> bronze -> silver, as plain functions over a DuckDB connection (no Dagster import).

Each bronze load of a file gets a load id, stamped in bronze.landing_files; silver records which
load it routed (silver.routed_files). Between the two steps a file is "silver pending", which the
accounting check tells apart from lines lost.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from ecom_assets.lakehouse import SQL, event_days
from ecom_assets.lakehouse.landing import (
    FORMATS,
    LINE_SCHEMA,
    LandingFileError,
    LandingFileMissing,
    format_from_header,
    open_landing_file,
)
from ecom_assets.lakehouse.warehouse import load_sql, run_sql_file, scalar, scratch_folder, sql_parameters, transaction
from ecom_assets.publishing import sql_literal

ACCEPTED, HEADER_ONLY, REJECTED = "accepted", "header_only", "rejected"
# The readable part landed, the rest could not be read (a cut gzip stream, an over-long line).
TRUNCATED = "truncated"
# The file changed while it was read: a snapshot landed; the next ingest of the new version replaces it.
CHANGED = "changed_during_load"
# Gone from the landing folder: its lines stay until it is retracted (docs/data.md).
MISSING = "missing"
RETRACTED = "retracted"
# Statuses whose lines are all in bronze as the file holds them.
COMPLETE = (ACCEPTED, HEADER_ONLY)


@dataclass
class LandingFileReport:
    source_file: str
    status: str
    message: str
    source_format: str | None = None
    data_lines: int = 0  # lines of this file in bronze after the load
    load_id: str | None = None


@dataclass
class SilverReport:
    source_file: str
    bronze_lines: int = 0
    events: int = 0
    duplicates: int = 0
    quarantined: int = 0
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    duplicates_of_other_files: int = 0  # of `duplicates`: events another file brought to silver first
    skipped_because: str | None = None
    # Other files re-routed because their duplicates pointed at this file's previous lines.
    rerouted: list[str] = field(default_factory=list)

    @property
    def balanced(self) -> bool:
        return self.bronze_lines == self.events + self.duplicates + self.quarantined


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _record_landing_file(con, report: LandingFileReport, header: str | None, size: int | None, at) -> None:
    con.execute("DELETE FROM bronze.landing_files WHERE source_file = ?", [report.source_file])
    con.execute(
        "INSERT INTO bronze.landing_files (source_file, source_format, status, message, header, size_bytes, "
        "data_lines, ingested_at, load_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            report.source_file,
            report.source_format,
            report.status,
            report.message,
            header,
            size,
            report.data_lines,
            at,
            report.load_id,
        ],
    )


def _lines_in_bronze(con, name: str) -> tuple[int, str | None]:
    count, fmt = con.execute(
        "SELECT count(*), any_value(source_format) FROM bronze.events WHERE source_file = ?", [name]
    ).fetchone()
    return count, fmt


def load_bronze(
    con: duckdb.DuckDBPyConnection, path: Path, retract: bool = False, landing: str | None = None
) -> LandingFileReport:
    """Replace one landing file's lines in bronze.events, atomically; never raises for bad content.

    Every line of a readable file lands byte for byte, in one transaction with its bronze.landing_files
    row and a new load id. A file that cannot be read at all (missing, empty, unknown header, not gzip,
    a symlink) is recorded with the cause, and its previously loaded lines (if any) stay untouched.
    `retract=True` replaces the file's lines by none (the file should be gone from landing first).
    `landing`: where the file lands, as messages name it, when `path` is a local copy (the bucket's
    landing prefix in the cluster profile); by default `path`'s folder.
    """
    at = _now()
    name = path.name
    if name != Path(name).name or name in ("", ".", ".."):
        raise ValueError(f"{name!r}: a landing file name, not a path")
    previous = con.execute(
        "SELECT load_id, status, message FROM bronze.landing_files WHERE source_file = ?", [name]
    ).fetchone()
    if retract:
        return _retract(con, path, at, landing)
    header = None
    try:
        with open_landing_file(path) as landing:
            header = landing.header
            fmt = format_from_header(name, header)
            report = LandingFileReport(name, ACCEPTED, "", fmt.name, load_id=uuid.uuid4().hex)
            with transaction(con):
                con.register("landing_lines", pa.RecordBatchReader.from_batches(LINE_SCHEMA, landing.batches()))
                try:
                    run_sql_file(
                        con,
                        SQL / "bronze_events_load.sql",
                        {"source_file": name, "source_format": fmt.name, "ingested_at": at},
                    )
                finally:
                    con.unregister("landing_lines")
                report.data_lines = landing.data_lines
                report.status, report.message = _outcome(name, fmt.name, landing)
                _record_landing_file(con, report, landing.header, landing.size_bytes, at)
            return report
    except LandingFileError as exc:
        kept, kept_format = _lines_in_bronze(con, name)
        status = MISSING if isinstance(exc, LandingFileMissing) else REJECTED
        if status == MISSING and previous and previous[1] == RETRACTED:
            return LandingFileReport(name, RETRACTED, previous[2], None, kept, previous[0])
        message = str(exc)
        if status == MISSING and landing is not None:
            message = f"{name}: not found in the landing folder {landing}"
        if kept:
            message += f"; the {kept:,} lines of its previous load stay in bronze and silver"
            if status == MISSING:
                message += " (to remove them, retract the file: docs/data.md)"
        report = LandingFileReport(name, status, message, kept_format, kept, previous[0] if previous else None)
        con.execute("BEGIN TRANSACTION")
        _record_landing_file(con, report, header, _size(path), at)
        con.execute("COMMIT")
        return report


def _outcome(name: str, fmt: str, landing) -> tuple[str, str]:
    lines = landing.data_lines
    landed = f"{lines:,} data lines in {fmt} format"
    if landing.changed:
        return CHANGED, f"{name}: {landed}, but {landing.changed}"
    if landing.problems:
        return TRUNCATED, f"{name}: {landed} before an unreadable part: {'; '.join(landing.problems)}"
    if not lines:
        return HEADER_ONLY, f"{name}: only a header ({fmt} format), no data lines"
    return ACCEPTED, landed


def _size(path: Path) -> int | None:
    try:
        return path.lstat().st_size
    except OSError:
        return None


def _retract(con, path: Path, at, landing: str | None) -> LandingFileReport:
    """A bronze load with no lines: silver follows when it routes the new load id."""
    name = path.name
    if os.path.lexists(path):
        raise ValueError(
            f"{name}: still in the landing folder {landing or path.parent}; remove it first, "
            "or the next run lands it again"
        )
    kept, _ = _lines_in_bronze(con, name)
    report = LandingFileReport(
        name,
        RETRACTED,
        f"{name}: retracted; its {kept:,} lines were removed from bronze (and from silver once routed)",
        None,
        0,
        uuid.uuid4().hex,
    )
    with transaction(con):
        con.execute("DELETE FROM bronze.events WHERE source_file = ?", [name])
        _record_landing_file(con, report, None, None, at)
    return report


def landing_file_status(con: duckdb.DuckDBPyConnection, source_file: str) -> tuple[str, str | None, str]:
    row = con.execute(
        "SELECT status, source_format, message FROM bronze.landing_files WHERE source_file = ?", [source_file]
    ).fetchone()
    if row is None:
        raise LookupError(f"{source_file}: not in bronze.landing_files; materialize bronze/events first")
    return row


def _bronze_load_id(con, source_file: str) -> str | None:
    return scalar(con, "SELECT load_id FROM bronze.landing_files WHERE source_file = ?", [source_file])


def _routed_load_id(con, source_file: str) -> str | None:
    return scalar(con, "SELECT load_id FROM silver.routed_files WHERE source_file = ?", [source_file])


def load_silver(con: duckdb.DuckDBPyConnection, source_file: str) -> SilverReport:
    """Parse one file's bronze lines into silver.events, quarantine and duplicates, atomically.

    In the same transaction, other files whose duplicates pointed at this file's previous events
    are routed again, so an event whose first copy was re-landed or retracted is not lost.
    """
    status, _, message = landing_file_status(con, source_file)
    report = SilverReport(source_file)
    load_id = _bronze_load_id(con, source_file)
    previous = _routed_load_id(con, source_file)
    if status in (REJECTED, MISSING) and load_id == previous:
        report.skipped_because = message
    else:
        with transaction(con):
            _route(con, source_file)
            report.rerouted = _reroute_dependents(con, source_file, changed=load_id != previous)
    counts = con.execute(load_sql(SQL / "silver_routing_counts.sql"), {"source_file": source_file}).fetchone()
    report.bronze_lines, report.events, report.duplicates, report.quarantined = counts
    report.quarantine_reasons = quarantine_reasons(con, source_file)
    report.duplicates_of_other_files = scalar(
        con,
        "SELECT count(*) FROM silver.events_duplicates WHERE source_file = $f AND duplicate_of_file <> $f",
        {"f": source_file},
    )
    return report


def _route(con, source_file: str) -> None:
    """Route the file's current bronze lines and record which bronze load silver now holds."""
    lines, source_format = _lines_in_bronze(con, source_file)
    event_days.fingerprint_days(con, source_file, "days_before")
    if lines:
        fmt = next(f for f in FORMATS if f.name == source_format)
        params = {"source_file": source_file, "source_format": fmt.name}
        # The parsed lines go to a scratch Parquet file, read back by each routing statement: as a temp
        # table they would be held in memory to the transaction's end (~400 B a line, over DuckDB's
        # memory limit for a monthly export, which then spilled and ran on one thread).
        with tempfile.TemporaryDirectory(prefix="silver-", dir=scratch_folder(con)) as scratch:
            parsed = sql_literal(Path(scratch) / "parsed.parquet")
            parse = load_sql(SQL / f"silver_parse_{fmt.name}.sql")
            # A line's text is kept only when the line is rejected (the quarantine shows it); every line's hash
            # finds the repeats, whose text silver_events_load.sql then reads from bronze. Writing every
            # line's text cost 1.1 s of 6.5 s for 7.7M lines, and reading it back to hash it 0.4 s more.
            shaped = (
                "SELECT * REPLACE (CASE WHEN reject_reason IS NOT NULL THEN raw_line END AS raw_line), "
                f"hash(raw_line) AS line_hash FROM ({parse})"
            )
            con.execute(f"COPY ({shaped}) TO {parsed} (FORMAT parquet)", sql_parameters(parse, params))
            con.execute(f"CREATE OR REPLACE TEMP VIEW parsed_events AS SELECT * FROM read_parquet({parsed})")
            run_sql_file(con, SQL / "silver_events_load.sql", params)  # (it drops the view)
    else:
        for table in ("silver.events", "silver.events_quarantine", "silver.events_duplicates"):
            con.execute(f"DELETE FROM {table} WHERE source_file = ?", [source_file])
    con.execute("DELETE FROM silver.routed_files WHERE source_file = ?", [source_file])
    routed_at = _now()
    con.execute(
        "INSERT INTO silver.routed_files VALUES (?, ?, ?)", [source_file, _bronze_load_id(con, source_file), routed_at]
    )
    event_days.record_changed_days(con, source_file, "days_before", routed_at)


def _reroute_dependents(con, source_file: str, changed: bool) -> list[str]:
    """Route again every file with a duplicate whose first copy, in `source_file`, may be gone."""
    rerouted: list[str] = []
    todo = [source_file]
    while todo:
        origin = todo.pop()
        dependents = [
            r[0]
            for r in con.execute(
                """SELECT DISTINCT d.source_file FROM silver.events_duplicates AS d
                   WHERE d.duplicate_of_file = $origin AND d.source_file <> $origin
                     AND ($changed OR NOT EXISTS (
                         SELECT 1 FROM silver.events AS e
                         WHERE e.source_file = $origin AND e.line_number = d.duplicate_of_line))
                   ORDER BY 1""",
                # a file routed again keeps its events: only dangling pointers at it need a look
                {"origin": origin, "changed": changed and origin == source_file},
            ).fetchall()
        ]
        for name in dependents:
            if name in rerouted or name == source_file:
                continue
            _route(con, name)
            rerouted.append(name)
            todo.append(name)
    return rerouted


def quarantine_reasons(con: duckdb.DuckDBPyConnection, source_file: str) -> dict[str, int]:
    """Reasons grouped by kind ('negative price -3.5' and 'negative price -1' are one kind)."""
    return dict(con.execute(load_sql(SQL / "silver_quarantine_reasons.sql"), {"source_file": source_file}).fetchall())


def vanished_landing_files(
    con: duckdb.DuckDBPyConnection, landing: Path | Callable[[Iterable[str]], set[str]]
) -> list[tuple[str, int, dt.datetime]]:
    """Files whose lines are in bronze but which are gone from the landing folder: (file, lines, loaded at).

    `landing`: the landing folder, or what says which of some names are missing from landing
    (`file_store`'s `missing_landing`, for the bucket). Their rows stay (nothing is deleted behind a
    person's back) until the file is retracted.
    """
    rows = con.execute(
        "SELECT source_file, data_lines, ingested_at FROM bronze.landing_files "
        "WHERE data_lines > 0 AND status <> ? ORDER BY source_file",
        [RETRACTED],
    ).fetchall()
    if isinstance(landing, Path):
        return [row for row in rows if not os.path.lexists(landing / row[0])]
    missing = landing([row[0] for row in rows]) if rows else set()
    return [row for row in rows if row[0] in missing]


def pending_silver_files(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    """Files whose latest bronze load silver has not routed yet (silver_pending_files.sql)."""
    return con.execute(load_sql(SQL / "silver_pending_files.sql")).fetchall()
