"""The deployment profile, chosen by ECOM_PROFILE: `local` (the default) or `cluster`. No Dagster import.

`local` keeps every piece of state under ECOM_HOME: no services. `cluster` keeps it in services that
several machines share (docs/cluster.md): the lake's catalog on Postgres and its Parquet files in an
S3-compatible bucket, MLflow's tracking and registry on Postgres with its artifacts in the bucket,
the Dagster instance on Postgres, and the landing files, published snapshots and reports in the
bucket (ecom_assets/file_store.py). Their addresses come from the variables below, read and
checked when the definitions are built: a missing one fails then, naming it.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse

from ecom_assets.ecom_home import env_str

LOCAL, CLUSTER = "local", "cluster"

# variable -> what it holds (docs/configuration.md); all required in `cluster` but the endpoint.
CLUSTER_VARIABLES = {
    "ECOM_LAKE_CATALOG_DSN": "the lake catalog's Postgres database, libpq form: 'dbname=lake host=... user=...'",
    "ECOM_LAKE_DATA_URL": "where the lake's Parquet files go: s3://bucket/prefix",
    "AWS_ACCESS_KEY_ID": "the object store's access key",
    "AWS_SECRET_ACCESS_KEY": "the object store's secret key",
    "ECOM_MLFLOW_TRACKING_URI": "MLflow's tracking and registry database: postgresql://user@host:port/mlflow",
    "ECOM_MLFLOW_ARTIFACTS_URL": "where MLflow's artifacts go: s3://bucket/prefix",
    "ECOM_DAGSTER_PG_URL": "the Dagster instance's database (runs, events, schedules): postgresql://...",
    "ECOM_FILES_URL": "where landing/, published/ and reports/ live: s3://bucket/prefix",
}
OPTIONAL_VARIABLES = {
    "ECOM_S3_ENDPOINT_URL": "an S3-compatible server's URL (MinIO, Ceph...); blank: AWS S3",
    "AWS_DEFAULT_REGION": "the bucket's region (default us-east-1)",
}


class ProfileError(ValueError):
    """ECOM_PROFILE or the cluster profile's variables are wrong or missing."""


def active_profile() -> str:
    """ECOM_PROFILE, checked: `local` when unset."""
    value = env_str("ECOM_PROFILE", LOCAL).lower()
    if value not in (LOCAL, CLUSTER):
        raise ProfileError(f"ECOM_PROFILE={value!r}: expected {LOCAL!r} (the default) or {CLUSTER!r}")
    return value


@dataclass(frozen=True)
class ClusterConfig:
    """The cluster profile's service addresses (see CLUSTER_VARIABLES)."""

    lake_catalog_dsn: str
    lake_data_url: str
    aws_access_key_id: str
    aws_secret_access_key: str
    mlflow_tracking_uri: str
    mlflow_artifacts_url: str
    dagster_pg_url: str
    files_url: str
    s3_endpoint_url: str = ""
    aws_region: str = "us-east-1"

    @classmethod
    def from_env(cls) -> ClusterConfig:
        missing = [name for name in CLUSTER_VARIABLES if not env_str(name, "")]
        if missing:
            raise ProfileError(
                f"ECOM_PROFILE=cluster needs {', '.join(missing)} (unset): "
                + "; ".join(f"{name}: {CLUSTER_VARIABLES[name]}" for name in missing)
                + ". See docs/configuration.md."
            )
        config = cls(
            *(env_str(name, "") for name in CLUSTER_VARIABLES),
            s3_endpoint_url=env_str("ECOM_S3_ENDPOINT_URL", ""),
            aws_region=env_str("AWS_DEFAULT_REGION", "us-east-1"),
        )
        for name, value in (
            ("ECOM_LAKE_DATA_URL", config.lake_data_url),
            ("ECOM_MLFLOW_ARTIFACTS_URL", config.mlflow_artifacts_url),
            ("ECOM_FILES_URL", config.files_url),
        ):
            if not value.startswith("s3://") or not urlparse(value).netloc:
                raise ProfileError(f"{name}={value!r} is not an s3://bucket/prefix URL")
        for name, value in (
            ("ECOM_MLFLOW_TRACKING_URI", config.mlflow_tracking_uri),
            ("ECOM_DAGSTER_PG_URL", config.dagster_pg_url),
        ):
            if not value.startswith(("postgresql://", "postgresql+psycopg2://", "postgres://")):
                raise ProfileError(f"{name}={value!r} is not a postgresql:// URL")
        return config


def cluster_config() -> ClusterConfig | None:
    """The cluster profile's addresses, checked; None in the local profile."""
    return ClusterConfig.from_env() if active_profile() == CLUSTER else None
