"""The cluster profile, rehearsed on loopback (docs/cluster.md): the same files through the same assets give
the same tables whether the lake is a SQLite catalog with a local folder (local profile) or a Postgres
catalog with its Parquet files in an S3 bucket and the Dagster instance on Postgres (cluster profile).

The services are real servers started by this module (ecom_assets_tests/cluster_services.py); the
tests skip only when Postgres or moto is not installed on this machine (.ci/run installs them).
"""

from __future__ import annotations

import io
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from ecom_assets import cli, run_summary
from ecom_assets.assets import ab_experiment, gold
from ecom_assets.definitions import build_definitions
from ecom_assets.ecom_home import EcomPaths
from ecom_assets.file_store import LANDING, PUBLISHED, S3LandingFile, file_store
from ecom_assets.generator import GeneratorConfig, generate
from ecom_assets.lakehouse.warehouse_lock import WarehouseLocked
from ecom_assets.ml import tracking
from ecom_assets.one_shot import (
    build_stale_sessions,
    ingest_landing_files,
    init_dagster_home,
    run_pipeline,
    select_landing_files,
)
from ecom_assets.profile import ProfileError, cluster_config
from ecom_assets.resources import build_resources
from ecom_assets.sensors import landing_sensor
from ecom_assets.serving import app_data
from ecom_assets_tests import cluster_services
from ecom_assets_tests.cluster_services import BUCKET
from ecom_assets_tests.servers import free_port

pytestmark = pytest.mark.skipif(bool(cluster_services.missing()), reason=f"no {cluster_services.missing()}")

APP = str(Path(__file__).parents[1] / "ecom_assets" / "serving" / "app.py")
TABLES = ("silver.events", "gold.fact_user_sessions", "gold.dim_users")


@pytest.fixture(scope="module")
def services():
    with cluster_services.cluster_services() as running:
        yield running


def _cluster_env(monkeypatch, services, prefix: str, isolated: bool = False) -> None:
    """`isolated`: databases of its own too (services.env shares them between prefixes)."""
    env = cluster_services.isolated_env(services, prefix) if isolated else services.env(prefix)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # the conftest's local registry
    monkeypatch.delenv("MLFLOW_S3_ENDPOINT_URL", raising=False)


# dim_users, then the experiment assets: they publish two Parquet snapshots and write two charts.
EXPERIMENT_ASSETS = [
    gold.dim_users,
    ab_experiment.assignments,
    ab_experiment.simulated_purchases,
    ab_experiment.ab_test_results,
    ab_experiment.ab_sessions_by_arm,
]


def _build(paths: EcomPaths, instance: dg.DagsterInstance) -> dict[str, pd.DataFrame]:
    """Bronze and silver per landing file (listed by the profile's file store), sessions per stale day
    range, then dim_users and the experiment's snapshots; the tables."""
    defs = build_definitions(paths)
    quiet = lambda _: None  # noqa: E731
    files = file_store(paths).list_landing()
    for path, result in ingest_landing_files(defs, instance, select_landing_files(instance, files, log=quiet), quiet):
        assert result.success, path
    for result in build_stale_sessions(defs, instance, log=quiet):
        assert result.success
    assert dg.materialize(EXPERIMENT_ASSETS, resources=build_resources(paths), instance=instance).success
    with build_resources(paths)["duckdb"].read_connection() as con:
        return {table: con.execute(f"FROM {table} ORDER BY ALL").df() for table in TABLES}


def _upload(services, folder, prefix: str) -> None:
    for f in sorted(folder.iterdir()):
        services.s3().upload_file(str(f), BUCKET, f"{prefix}/{f.name}")


def _files_in(home: EcomPaths) -> list[str]:
    return sorted(str(p.relative_to(home.home)) for p in home.home.rglob("*") if p.is_file())


def test_the_cluster_profile_builds_the_local_profiles_tables_in_the_services(tmp_path, monkeypatch, services):
    landing = tmp_path / "files"
    generate(landing, GeneratorConfig(events=4_000, days=4, seed=5, file_per="day"))

    local = EcomPaths(tmp_path / "local_home").ensure()
    for f in landing.iterdir():
        (local.landing / f.name).write_bytes(f.read_bytes())
    monkeypatch.setenv("ECOM_HOME", str(local.home))
    with dg.instance_for_test() as instance:
        expected = _build(local, instance)

    # A worker's home: an empty folder. The landing files are in the bucket only.
    home = EcomPaths(tmp_path / "cluster_home")
    home.home.mkdir()
    _upload(services, landing, "equal/files/landing")
    monkeypatch.setenv("ECOM_HOME", str(home.home))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "cluster_dagster_home"))
    _cluster_env(monkeypatch, services, "equal")
    with dg.DagsterInstance.from_config(init_dagster_home(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        got = _build(home, instance)
        runs = instance.get_runs()
        bronze = instance.fetch_materializations(dg.AssetKey(["bronze", "events"]), limit=1).records[0]
        # Listed again: the bucket's files are already ingested with the same content.
        assert select_landing_files(instance, file_store(home).list_landing(), log=lambda _: None) == []
    assert len(runs) >= 6 and all(run.status == dg.DagsterRunStatus.SUCCESS for run in runs)
    path = bronze.asset_materialization.metadata["path"].value
    assert path == f"s3://{BUCKET}/equal/files/landing/{bronze.partition_key}"

    assert len(expected["silver.events"]) > 3_000 and len(expected["gold.dim_users"]) > 50
    for table, frame in expected.items():
        pd.testing.assert_frame_equal(got[table], frame, obj=table)
    # The snapshots and the charts are in the bucket, and equal to the local profile's.
    stored = {o["Key"] for o in services.s3().list_objects_v2(Bucket=BUCKET, Prefix="equal/files/").get("Contents", [])}
    for name in ("ab_test_results.parquet", "ab_sessions_by_arm.parquet"):
        body = services.s3().get_object(Bucket=BUCKET, Key=f"equal/files/published/{name}")["Body"].read()
        pd.testing.assert_frame_equal(pd.read_parquet(io.BytesIO(body)), pd.read_parquet(local.published / name))
    assert {"equal/files/reports/experiment_funnel.png", "equal/files/reports/experiment_lift.png"} <= stored
    assert file_store(home).exists(PUBLISHED, "ab_test_results.parquet")  # a HEAD request
    assert not file_store(home).exists(PUBLISHED, "predicted_purchase.parquet")  # not published by this test
    # Nothing of landing/, published/ or reports/ on the worker's disk; its scratch is empty again.
    assert _files_in(home) == [], _files_in(home)
    assert not any((home.home / kind).exists() for kind in ("landing", "published", "reports"))
    # The app reads the bucket's snapshots through a scratch copy.
    published = file_store(home).mirror(PUBLISHED)
    shown = app_data.read_published(published, app_data.AB_RESULTS)
    pd.testing.assert_frame_equal(shown, pd.read_parquet(local.published / app_data.AB_RESULTS))
    copied = (published / app_data.AB_RESULTS).stat().st_ino
    assert (file_store(home).mirror(PUBLISHED) / app_data.AB_RESULTS).stat().st_ino == copied  # unchanged: kept
    monkeypatch.setenv("ECOM_API_URL", f"http://127.0.0.1:{free_port()}")  # no API: the tabs of files only
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not any("No A/B results" in info.value for info in at.tabs[1].info)
    assert at.tabs[1].metric, "the A/B dashboard shows the bucket's results"
    predictions = f"s3://{BUCKET}/equal/files/published/predicted_purchase.parquet"
    assert predictions in at.tabs[3].info[0].value  # not published by this test: named where it is looked for
    objects = services.s3().list_objects_v2(Bucket=BUCKET, Prefix="equal/lake/").get("Contents", [])
    keys = [o["Key"] for o in objects]
    # The lake's size (maintain_lake logs it) comes from the catalog: no folder to walk in a bucket.
    assert build_resources(home)["duckdb"].data_bytes() == sum(o["Size"] for o in objects)
    for schema_table in ("silver/events", "gold/fact_user_sessions", "gold/dim_users"):
        assert any(k.startswith(f"equal/lake/{schema_table}/") and k.endswith(".parquet") for k in keys), keys
    assert not (home.home / "lake").exists() and not home.lake_catalog.exists()
    assert list((local.home / "lake").rglob("*.parquet"))  # the local profile's files, for contrast


def test_the_bucket_landing_prefix_is_versioned_sensed_and_watched_for_vanished_files(tmp_path, monkeypatch, services):
    landing = tmp_path / "files"
    generate(landing, GeneratorConfig(events=800, days=2, seed=3, file_per="day"))
    first, second = sorted(landing.iterdir())
    home = EcomPaths(tmp_path / "home")
    home.home.mkdir()
    monkeypatch.setenv("ECOM_HOME", str(home.home))
    _cluster_env(monkeypatch, services, "vanish", isolated=True)  # a lake of its own
    # `ecom-assets generate` in the cluster profile writes into the bucket's landing prefix: the same bytes.
    assert cli.main(["generate", "--events", "800", "--days", "2", "--seed", "3", "--per", "day"]) == 0
    for f in (first, second):
        assert file_store(home).read(LANDING, f.name) == f.read_bytes()
    services.s3().put_object(Bucket=BUCKET, Key="vanish/files/landing/.upload.csv.tmp", Body=b"being written")
    quiet = lambda _: None  # noqa: E731
    with dg.instance_for_test() as instance:
        defs = build_definitions(home)
        settings = build_resources(home)["settings"]
        sensed = landing_sensor(dg.build_sensor_context(instance=instance, resources={"settings": settings}))
        assert sorted(r.partition_key for r in sensed.run_requests) == [first.name, second.name]
        ingested = ingest_landing_files(defs, instance, file_store(home).list_landing(), quiet)
        assert all(result.success for _, result in ingested)

        # The same bytes uploaded again keep their ETag: nothing to ingest, nothing hashed. New bytes are.
        services.s3().upload_file(str(first), BUCKET, f"vanish/files/landing/{first.name}")
        lines = second.read_bytes().splitlines(keepends=True)
        services.s3().put_object(Bucket=BUCKET, Key=f"vanish/files/landing/{second.name}", Body=b"".join(lines[:40]))
        hashed, digest = [], S3LandingFile.digest
        monkeypatch.setattr(S3LandingFile, "digest", lambda f: hashed.append(f.name) or digest(f))
        selected = select_landing_files(instance, file_store(home).list_landing(), log=quiet)
        assert [f.name for f in selected] == [second.name] and hashed == [second.name]
        assert all(r.success for _, r in ingest_landing_files(defs, instance, selected, quiet))
        sensed = landing_sensor(dg.build_sensor_context(instance=instance, resources={"settings": settings}))
        assert sensed.run_requests == [] and "all already ingested" in sensed.skip_reason.skip_message

        # Gone from the bucket: the check, the summary and the file's own run say so, as for a folder.
        services.s3().delete_object(Bucket=BUCKET, Key=f"vanish/files/landing/{first.name}")
        where = f"s3://{BUCKET}/vanish/files/landing/"
        job = defs.resolve_job_def("ingest_landing_file")
        result = job.execute_in_process(partition_key=second.name, instance=instance)
        (present,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "landing_files_present"]
        assert not present.passed and first.name in present.description and where in present.description
        with build_resources(home)["duckdb"].read_connection() as con:
            summary = run_summary.highlights(con, home)
        assert any(f"landing file {first.name} gone from {where}" in line for line in summary), summary
        missing = job.execute_in_process(partition_key=first.name, instance=instance)
        assert missing.success
        with build_resources(home)["duckdb"].read_connection() as con:
            status, message = con.execute(
                "SELECT status, message FROM bronze.landing_files WHERE source_file = ?", [first.name]
            ).fetchone()
        assert status == "missing" and f"not found in the landing folder {where}" in message
        retract = {"ops": {"bronze__events": {"config": {"retract": True}}}}
        assert job.execute_in_process(partition_key=first.name, instance=instance, run_config=retract).success
        with build_resources(home)["duckdb"].read_connection() as con:
            assert con.execute("SELECT count(*) FROM silver.events WHERE source_file = ?", [first.name]).fetchone() == (
                0,
            )
    assert _files_in(home) == [], _files_in(home)


WRITER = """
import time
from ecom_assets.resources import build_resources
from ecom_assets.sensors import landing_sensor
from ecom_assets.serving import app_data
with build_resources()["duckdb"].get_connection() as con:
    con.execute("INSERT INTO gold.t VALUES (2)")
    print("holding", flush=True)
    time.sleep(120)
"""


def test_a_reader_reads_while_another_processs_writer_holds_the_catalogs_advisory_lock(tmp_path, monkeypatch, services):
    paths = EcomPaths(tmp_path / "home").ensure()
    monkeypatch.setenv("ECOM_HOME", str(paths.home))
    _cluster_env(monkeypatch, services, "lock")
    with build_resources(paths)["duckdb"].get_connection() as con:
        con.execute("CREATE TABLE gold.t AS SELECT 1 AS x")

    # A writer on "another machine": another process, sharing nothing with this one but the services.
    writer = subprocess.Popen([sys.executable, "-c", WRITER], stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        assert writer.stdout.readline().strip() == "holding"
        started = time.monotonic()
        with build_resources(paths)["duckdb"].read_connection() as con:
            assert con.execute("SELECT x FROM gold.t ORDER BY x").fetchall() == [(1,), (2,)]
        assert time.monotonic() - started < 10  # the reader did not wait for the writer
        monkeypatch.setenv("ECOM_WAREHOUSE_LOCK_TIMEOUT_SECONDS", "1")
        with pytest.raises(WarehouseLocked) as raised, build_resources(paths)["duckdb"].get_connection():
            pass
        assert f"being written by ecom-assets pid {writer.pid} on " in str(raised.value)
    finally:
        writer.kill()  # as a crash would: Postgres drops its advisory lock with its connection
        writer.wait()
    monkeypatch.setenv("ECOM_WAREHOUSE_LOCK_TIMEOUT_SECONDS", "30")
    with build_resources(paths)["duckdb"].get_connection() as con:
        con.execute("INSERT INTO gold.t VALUES (3)")
    with build_resources(paths)["duckdb"].read_connection() as con:
        assert con.execute("SELECT x FROM gold.t ORDER BY x").fetchall() == [(1,), (2,), (3,)]


def test_the_cluster_profile_names_each_missing_variable(tmp_path, monkeypatch, services):
    _cluster_env(monkeypatch, services, "missing")
    monkeypatch.delenv("ECOM_LAKE_CATALOG_DSN")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", " ")
    monkeypatch.delenv("ECOM_FILES_URL")
    with pytest.raises(ProfileError, match="ECOM_LAKE_CATALOG_DSN, AWS_SECRET_ACCESS_KEY, ECOM_FILES_URL"):
        build_resources(EcomPaths(tmp_path))
    _cluster_env(monkeypatch, services, "missing")
    monkeypatch.setenv("ECOM_FILES_URL", str(tmp_path / "files"))
    with pytest.raises(ProfileError, match="ECOM_FILES_URL=.* is not an s3://bucket/prefix URL"):
        cluster_config()
    _cluster_env(monkeypatch, services, "missing")
    with pytest.raises(FileNotFoundError, match=f"No .* files in s3://{BUCKET}/missing/files/landing/"):
        run_pipeline(EcomPaths(tmp_path / "home"))  # the bucket's landing prefix is empty
    monkeypatch.setenv("ECOM_PROFILE", "clustre")
    with pytest.raises(ProfileError, match="ECOM_PROFILE='clustre'"):
        cluster_config()


def test_mlflow_tracks_on_postgres_with_artifacts_in_the_bucket(tmp_path, monkeypatch, services):
    import mlflow

    paths = EcomPaths(tmp_path / "home").ensure()
    monkeypatch.setenv("ECOM_HOME", str(paths.home))
    _cluster_env(monkeypatch, services, "ml")
    uri = tracking.tracking_uri(paths)
    assert uri == services.url("mlflow")
    experiment = tracking.ensure_experiment(uri, "rehearsal", paths.mlflow_artifacts)
    with tracking.using_tracking_uri(uri), mlflow.start_run(experiment_id=experiment) as run:
        mlflow.log_text("hello", "notes/hello.txt")
    assert tracking.client(uri).get_run(run.info.run_id).info.status == "FINISHED"
    keys = [o["Key"] for o in services.s3().list_objects_v2(Bucket=BUCKET, Prefix="ml/").get("Contents", [])]
    assert any(k.startswith("ml/mlartifacts/rehearsal/") and k.endswith("notes/hello.txt") for k in keys), keys
    assert not paths.mlflow_db.exists() and not paths.mlflow_artifacts.exists()
