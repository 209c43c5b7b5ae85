"""The warehouse as a DuckLake: Parquet files under ECOM_HOME/lake/ and a SQLite catalog beside them.

No Dagster import. Why a lake rather than one DuckDB file (docs/storage.md): a DuckDB file admits
one writing process and no reader beside it, so the API, the app, a notebook and a run queued for
each other. A DuckLake is read by any number of processes at once, each seeing the last committed
snapshot whole, while one writes. Its SQLite catalog (in WAL mode, so readers never wait) takes one
committing writer at a time: writers hold `warehouse_lock` while they write, and partitioned
steps compute their rows first and hold it only to swap them in (`event_days.publish_sessions`). The same SQL
runs on a Postgres catalog with an object-store data path.

In the `cluster` profile (ecom_assets/profile.py) the catalog is a Postgres database and the data
path an s3:// URL read and written through `httpfs` with a connection-scoped secret: only the
attach string, the extensions and that secret differ (`LakeTarget`).

DuckDB cannot download extensions here: the `ducklake` and `sqlite_scanner` extensions come from
the package registry's `duckdb-extension-*` wheels built for this DuckDB version, loaded by path.
"""

from __future__ import annotations

import importlib.util
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import duckdb

from ecom_assets.profile import ClusterConfig

LAKE = "lake"  # the catalog name every connection attaches and USEs


@dataclass(frozen=True)
class LakeTarget:
    """Where a lake is: its catalog (the ATTACH string after `ducklake:`), its data path, the
    extensions that reach them, and statements run before the attach (the object store's secret)."""

    catalog: str
    data_path: str
    extensions: tuple[str, ...]
    local_catalog: Path | None = None  # the SQLite catalog file, in the local profile
    setup: tuple[str, ...] = ()

    def describe(self) -> str:
        """Where the lake is, for people: the catalog file, or the Postgres catalog (no password) and the
        data URL."""
        if self.local_catalog is not None:
            return f"{self.local_catalog} (DuckLake catalog)"
        parts = self.catalog.removeprefix("postgres:").split()
        dsn = " ".join(part for part in parts if not part.startswith("password="))
        return f"DuckLake catalog on Postgres ({dsn}), data in {self.data_path}"


def local_target(catalog: Path) -> LakeTarget:
    """The local profile's lake: a SQLite catalog file, its Parquet files in the folder beside it."""
    return LakeTarget(f"sqlite:{catalog}", str(lake_data_path(catalog)), ("sqlite_scanner", "ducklake"), catalog)


def cluster_target(cluster: ClusterConfig) -> LakeTarget:
    """The cluster profile's lake: a Postgres catalog, Parquet files under an s3:// URL."""
    options = {
        "KEY_ID": cluster.aws_access_key_id,
        "SECRET": cluster.aws_secret_access_key,
        "REGION": cluster.aws_region,
    }
    if cluster.s3_endpoint_url:  # an S3-compatible server: host:port, path-style URLs
        endpoint = urlparse(cluster.s3_endpoint_url)
        options |= {"ENDPOINT": endpoint.netloc, "URL_STYLE": "path", "USE_SSL": endpoint.scheme == "https"}
    bucket = urlparse(cluster.lake_data_url).netloc
    listed = ", ".join(f"{key} {_value(value)}" for key, value in options.items())
    # TEMPORARY: the secret lives in this connection only, never in a file.
    secret = f"CREATE OR REPLACE TEMPORARY SECRET lake_s3 (TYPE s3, {listed}, SCOPE 's3://{bucket}')"
    return LakeTarget(
        f"postgres:{cluster.lake_catalog_dsn}",
        cluster.lake_data_url.rstrip("/"),
        ("postgres_scanner", "httpfs", "ducklake"),
        setup=(secret,),
    )


def _value(value: str | bool) -> str:
    return str(value).lower() if isinstance(value, bool) else f"'{_literal(value)}'"


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


def connect(target: LakeTarget, config: dict[str, Any], *, create: bool = False) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the lake attached as `lake` and in use: `silver.events`
    is the lake's. Temporary tables and macros stay in the connection. `create`: a missing local
    catalog is created (once the connection's settings are known good: a bad setting leaves no empty
    lake); a Postgres catalog is filled in by DuckLake on its first attach."""
    con = duckdb.connect(config=config)
    try:
        local = target.local_catalog
        if create and local is not None and not local.exists():
            create_catalog(local)
        for name in target.extensions:
            con.execute(f"LOAD '{extension_file(name)}'")
        for statement in target.setup:
            con.execute(statement)
        if local is not None:
            Path(target.data_path).mkdir(parents=True, exist_ok=True)
        # The catalog keeps file paths relative to the data path, given at every attach: a copied or
        # moved ECOM_HOME stays whole.
        con.execute(
            f"ATTACH 'ducklake:{_literal(target.catalog)}' AS {LAKE} "
            f"(DATA_PATH '{_literal(target.data_path)}/', OVERRIDE_DATA_PATH true)"
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


def catalogued_bytes(con: duckdb.DuckDBPyConnection) -> int:
    """The size of the data files the catalog tracks (snapshots kept included): the lake's size
    where there is no folder to walk (an object store)."""
    meta = f"__ducklake_metadata_{LAKE}"
    return con.execute(
        f"SELECT (SELECT coalesce(sum(file_size_bytes), 0) FROM {meta}.ducklake_data_file) "
        f"+ (SELECT coalesce(sum(file_size_bytes), 0) FROM {meta}.ducklake_delete_file)"
    ).fetchone()[0]


def _literal(path: Path | str) -> str:
    return str(path).replace("'", "''")
