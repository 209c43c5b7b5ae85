"""The warehouse as a DuckLake: Parquet files under ECOM_HOME/lake/ and a SQLite catalog beside them.

No Dagster import. Why a lake rather than one DuckDB file (docs/storage.md): a DuckDB file admits
one writing process and no reader beside it, so the API, the app, a notebook and a run queued for
each other. A DuckLake is read by any number of processes at once, each seeing the last committed
snapshot whole, while one writes. Its SQLite catalog (in WAL mode, so readers never wait) takes one
committing writer at a time: writers hold `warehouse_lock` while they write, and partitioned
steps compute their rows first and hold it only to swap them in (`event_days.publish_sessions`). The same SQL
runs on a Postgres catalog with an object-store data path.

DuckDB cannot download extensions here: the `ducklake` and `sqlite_scanner` extensions come from
the package registry's `duckdb-extension-*` wheels built for this DuckDB version, loaded by path.
"""

from __future__ import annotations

import importlib.util
import sqlite3
from pathlib import Path
from typing import Any

import duckdb

LAKE = "lake"  # the catalog name every connection attaches and USEs
_EXTENSIONS = ("sqlite_scanner", "ducklake")


def lake_data_path(catalog: Path) -> Path:
    """The folder of the lake's Parquet files, beside its catalog."""
    return catalog.with_suffix("")


def lake_lock_file(catalog: Path) -> Path:
    """The write lock's file (lakehouse/warehouse_lock.py), beside the catalog."""
    return catalog.with_suffix(".lock")


def extension_file(name: str) -> Path:
    """The `.duckdb_extension` file of the installed `duckdb-extension-<name>` wheel for this DuckDB."""
    package = f"duckdb_extension_{name}"
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"The DuckDB extension {name!r} is not installed: pip install 'duckdb-extension-{name.replace('_', '-')}"
            f"=={duckdb.__version__}' (the project's dependencies pin it)."
        )
    found = Path(next(iter(spec.submodule_search_locations))) / "extensions" / f"v{duckdb.__version__}"
    path = found / f"{name}.duckdb_extension"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: duckdb-extension-{name} is not for DuckDB {duckdb.__version__}")
    return path


def create_catalog(catalog: Path) -> None:
    """An empty SQLite catalog in WAL mode (a setting of the file that stays): readers then never
    wait for the writer. DuckLake fills in its tables on the first attach."""
    catalog.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(catalog) as db:
        db.execute("PRAGMA journal_mode=WAL")


def connect(
    catalog: Path, data_path: Path, config: dict[str, Any], *, create: bool = False
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the lake attached as `lake` and in use: `silver.events`
    is the lake's. Temporary tables and macros stay in the connection. `create`: a missing catalog is
    created (once the connection's settings are known good: a bad setting leaves no empty lake)."""
    con = duckdb.connect(config=config)
    try:
        if create and not catalog.exists():
            create_catalog(catalog)
        for name in _EXTENSIONS:
            con.execute(f"LOAD '{extension_file(name)}'")
        data_path.mkdir(parents=True, exist_ok=True)
        # The catalog keeps file paths relative to the data path, given at every attach: a copied or
        # moved ECOM_HOME stays whole.
        con.execute(
            f"ATTACH 'ducklake:sqlite:{_literal(catalog)}' AS {LAKE} "
            f"(DATA_PATH '{_literal(data_path)}/', OVERRIDE_DATA_PATH true)"
        )
        con.execute(f"USE {LAKE}")
    except BaseException:
        con.close()
        raise
    return con


def expire_old_snapshots(con: duckdb.DuckDBPyConnection, keep_hours: float = 24.0) -> None:
    """Forget snapshots older than `keep_hours` and delete the files only they used: every write adds
    a snapshot (time travel), and rewritten tables would otherwise pile up on disk."""
    con.execute(
        f"CALL ducklake_expire_snapshots('{LAKE}', older_than => now() - to_seconds(CAST(? AS DOUBLE)))",
        [keep_hours * 3600],
    )
    con.execute(f"CALL ducklake_cleanup_old_files('{LAKE}', cleanup_all => true)")


def data_bytes(data_path: Path) -> int:
    """The size of the lake's files on disk."""
    return sum(f.stat().st_size for f in data_path.rglob("*") if f.is_file())


def _literal(path: Path) -> str:
    return str(path).replace("'", "''")
