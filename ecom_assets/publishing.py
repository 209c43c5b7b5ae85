"""Files that readers may open at any moment (snapshots, reports, charts, landing files): each is
written under a hidden temp name beside its target and swapped in with one rename, so a reader sees
the old file or the new one, never half of one. Hidden names are also what the landing folder ignores."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb


@contextmanager
def replaced_atomically(path: Path) -> Iterator[Path]:
    """Yield a temp path to write; when the block succeeds it replaces `path` in one rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomically(path: Path, data: bytes | str) -> Path:
    with replaced_atomically(path) as tmp:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def sql_literal(value: str | Path) -> str:
    """A SQL string literal, for the statements that take no parameters (COPY TO, DDL)."""
    return "'" + str(value).replace("'", "''") + "'"


def publish_parquet(con: duckdb.DuckDBPyConnection, query: str, path: Path, params: Any = None) -> Path:
    """A Parquet snapshot of `query` (a table name or a SELECT) for readers outside the warehouse."""
    with replaced_atomically(path) as tmp:
        con.execute(f"COPY ({_select(query)}) TO {sql_literal(tmp)} (FORMAT parquet)", params)
    return path


def png_bytes(fig: Any, dpi: int = 90) -> bytes:
    """A matplotlib figure as PNG bytes (for metadata, MLflow, the API and files alike)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def save_figure(fig: Any, path: Path, dpi: int = 90) -> Path:
    """A matplotlib figure written as a PNG file, atomically, and released."""
    import matplotlib.pyplot as plt

    png = png_bytes(fig, dpi)
    plt.close(fig)
    return write_atomically(path, png)


def _select(query: str) -> str:
    return query if query.lstrip().upper().startswith(("SELECT", "WITH", "FROM")) else f"SELECT * FROM {query}"
