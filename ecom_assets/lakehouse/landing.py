"""Landing files: which files count, and which export format each one is (read from its header)."""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

LANDING_SUFFIXES = (".csv", ".csv.gz")
# The canonical event types of silver.events (REES46 names them so; RetailRocket is mapped to them).
EVENT_TYPES = ("view", "cart", "remove_from_cart", "purchase")


@dataclass(frozen=True)
class SourceFormat:
    name: str
    columns: tuple[str, ...]

    @property
    def header(self) -> str:
        return ",".join(self.columns)


REES46 = SourceFormat(
    "rees46",
    (
        "event_time",
        "event_type",
        "product_id",
        "category_id",
        "category_code",
        "brand",
        "price",
        "user_id",
        "user_session",
    ),
)
RETAILROCKET = SourceFormat("retailrocket", ("timestamp", "visitorid", "event", "itemid", "transactionid"))
FORMATS = (REES46, RETAILROCKET)


class LandingFileError(ValueError):
    """A landing file that cannot be ingested at all (empty, unknown format); the message says why."""


def is_landing_file(path: Path) -> bool:
    # Hidden files are writers' temp names (the generator writes `.name.tmp`, then renames).
    return path.is_file() and not path.name.startswith(".") and path.name.endswith(LANDING_SUFFIXES)


def list_landing_files(landing_dir: Path) -> list[Path]:
    if not landing_dir.is_dir():
        return []
    return sorted(p for p in landing_dir.iterdir() if is_landing_file(p))


def read_header(path: Path) -> str | None:
    """The first line without BOM, CR or LF; None for a file with no bytes at all."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as handle:
        first = handle.readline(64 * 1024)
    if not first:
        return None
    return first.decode("utf-8", errors="replace").lstrip("\ufeff").rstrip("\r\n")


def detect_format(path: Path) -> SourceFormat:
    header = read_header(path)
    if header is None:
        raise LandingFileError(f"{path.name}: the file is empty (0 bytes); nothing to ingest")
    columns = tuple(c.strip().strip('"').lower() for c in header.split(","))
    for fmt in FORMATS:
        if columns == fmt.columns:
            return fmt
    expected = "; ".join(f"{f.name}: {f.header}" for f in FORMATS)
    shown = header if len(header) <= 200 else header[:200] + "..."
    raise LandingFileError(
        f"{path.name}: unknown format, header is {shown!r}. Expected one of these headers: {expected}"
    )
