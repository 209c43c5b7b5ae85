"""`ecom-assets run` is incremental and idempotent: a file is ingested again only when its bytes change
(not its mtime), the warehouse is refreshed only when something was ingested since its last successful
refresh, `full_refresh` redoes everything, and the landing sensor and the one-shot skip what the other
ingested."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import dagster as dg

from ecom_assets import one_shot
from ecom_assets.definitions import build_definitions
from ecom_assets.lakehouse import event_days, file_versions
from ecom_assets.lakehouse.file_versions import (
    LandingFileVersion,
    LastIngest,
    already_ingested,
    content_version,
    file_digest,
    stat_key,
)
from ecom_assets.lakehouse.landing import list_landing_files
from ecom_assets.one_shot import ingest_landing_files, refresh_pending, run_pipeline, select_landing_files
from ecom_assets.partitions import landing_files
from ecom_assets.resources import build_resources
from ecom_assets.sensors import LANDING_FILE_VERSION_TAG, PARTITION_NAME_TAG, RUN_KEY_TAG, landing_sensor
from ecom_assets_tests.conftest import land

FILES = ["rees46_quirks.csv", "retailrocket_quirks.csv"]


def _version(name: str, data: bytes, size: int = 1, mtime_ns: int = 1) -> LandingFileVersion:
    return LandingFileVersion(Path(name), stat_key(name, size, mtime_ns), hashlib.sha256(data).hexdigest())


# --- the one definition of "already ingested" ---------------------------------------------------


def test_the_digest_is_the_sha256_of_the_bytes_read_in_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(file_versions, "HASH_BLOCK_BYTES", 7)  # many blocks, one short last block
    data = os.urandom(100)
    (tmp_path / "f.csv").write_bytes(data)
    assert file_digest(tmp_path / "f.csv") == hashlib.sha256(data).hexdigest()


def test_only_the_newest_ingest_of_a_name_with_the_same_content_counts():
    a, b = _version("f.csv", b"a"), _version("f.csv", b"b")
    assert not already_ingested(a, None)
    assert already_ingested(a, LastIngest(a.version))
    assert not already_ingested(a, LastIngest(b.version))  # A, then B, then A again: ingested again
    assert not already_ingested(a, LastIngest(a.version, failed=True))
    assert not already_ingested(a, LastIngest(None))  # a run that did not say what it ingested
    assert not already_ingested(a, LastIngest(content_version("g.csv", a.digest)))  # same bytes, other name
    # A run from before content versions recorded the stat key: it counts while the file is untouched.
    assert already_ingested(a, LastIngest(a.stat_key))
    assert not already_ingested(a, LastIngest(stat_key("f.csv", 1, 2)))


# --- the one-shot, end to end --------------------------------------------------------------------


class _QuickRefresh:
    """The code location's ingest job, and refresh jobs of one no-op step: what a refresh rebuilds is
    not this test's subject (and the quirk fixtures are too small for training), when it runs is."""

    def __init__(self, paths) -> None:
        self.defs = build_definitions(paths)

    @property
    def resources(self) -> dict:
        return self.defs.resources

    def resolve_job_def(self, name: str) -> dg.JobDefinition:
        if name in ("ingest_landing_file", "build_sessions"):
            return self.defs.resolve_job_def(name)
        return dg.GraphDefinition(name=name, node_defs=[dg.op(name=f"{name}_op")(lambda: None)]).to_job()


def _runs(instance) -> list[tuple[str, str | None]]:
    """(job, partition) of every run, oldest first."""
    return [(run.job_name, run.tags.get(PARTITION_NAME_TAG)) for run in reversed(instance.get_runs())]


def _pipeline(paths, instance, **kwargs) -> tuple[list[tuple[str, str | None]], list[str], object]:
    before, messages = len(instance.get_runs()), []
    outcome = run_pipeline(paths, instance, log=messages.append, **kwargs)
    return _runs(instance)[before:], messages, outcome


def _refreshes(runs) -> int:
    return sum(job in ("refresh_warehouse", "refresh_and_retrain") for job, _ in runs)


def test_a_run_ingests_what_changed_and_refreshes_only_when_something_is_new(paths, instance, monkeypatch):
    monkeypatch.setattr(one_shot, "build_definitions", _QuickRefresh)
    land(paths, *FILES)
    # A run stopped between its ingests and its refresh: the files are ingested, the warehouse is not.
    defs = build_definitions(paths)
    files = list_landing_files(paths.landing)
    ingested = [p.name for p, _ in ingest_landing_files(defs, instance, select_landing_files(instance, files))]
    assert sorted(ingested) == FILES and refresh_pending(instance)

    runs, messages, outcome = _pipeline(paths, instance)
    assert [job for job, _ in runs if job == "ingest_landing_file"] == [] and _refreshes(runs) == 1, runs
    assert "skipping 2 unchanged file(s), already ingested with the same content" in messages
    assert not outcome.nothing_new and not refresh_pending(instance)

    runs, messages, outcome = _pipeline(paths, instance)
    assert runs == [] and outcome.nothing_new and outcome.runs == 0
    assert any(m.startswith("nothing new since the last run") for m in messages)

    # Touched (or copied back with the same bytes): a new mtime, the same content.
    rees46 = paths.landing / FILES[0]
    stat = rees46.stat()
    os.utime(rees46, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    runs, _, outcome = _pipeline(paths, instance)
    assert runs == [] and outcome.nothing_new

    with open(rees46, "ab") as handle:  # new bytes under the same name
        handle.write(b"\n")
    runs, _, outcome = _pipeline(paths, instance)
    assert [r for r in runs if r[0] == "ingest_landing_file"] == [("ingest_landing_file", FILES[0])]
    assert _refreshes(runs) == 1 and not outcome.nothing_new

    runs, messages, _ = _pipeline(paths, instance, full_refresh=True)
    assert sorted(p for job, p in runs if job == "ingest_landing_file") == FILES and _refreshes(runs) == 1
    assert "full refresh: ingesting all 2 file(s) again" in messages


# --- when the warehouse is behind what is ingested -----------------------------------------------


def _execute(instance, job_name: str, succeed: bool = True) -> None:
    @dg.op(name=f"{job_name}_op")
    def step() -> None:
        if not succeed:
            raise RuntimeError("failed")

    dg.GraphDefinition(name=job_name, node_defs=[step]).to_job().execute_in_process(
        instance=instance, raise_on_error=False
    )


def test_the_warehouse_is_refreshed_until_a_refresh_succeeds_after_the_newest_ingest(instance):
    assert refresh_pending(instance)  # never refreshed
    _execute(instance, "ingest_landing_file")
    _execute(instance, "refresh_warehouse")
    assert not refresh_pending(instance)
    _execute(instance, "ingest_landing_file", succeed=False)  # a failed ingest changes nothing to refresh
    assert not refresh_pending(instance)
    _execute(instance, "ingest_landing_file")  # e.g. the landing sensor, or a run stopped before its refresh
    assert refresh_pending(instance)
    _execute(instance, "refresh_and_retrain")
    assert not refresh_pending(instance)
    _execute(instance, "refresh_warehouse", succeed=False)  # the newest refresh failed or was interrupted
    assert refresh_pending(instance)


# --- the landing sensor and the one-shot skip what the other ingested ----------------------------


def _tick(paths, instance, cursor: str | None = None) -> dg.SensorResult:
    settings = build_resources(paths)["settings"]
    return landing_sensor(dg.build_sensor_context(instance=instance, cursor=cursor, resources={"settings": settings}))


def _as_the_daemon_runs(paths, instance, request: dg.RunRequest) -> None:
    instance.add_dynamic_partitions(landing_files.name, [request.partition_key])
    job = build_definitions(paths).resolve_job_def("ingest_landing_file")
    tags = {**(request.tags or {}), RUN_KEY_TAG: request.run_key}
    assert job.execute_in_process(partition_key=request.partition_key, instance=instance, tags=tags).success


def test_the_one_shot_skips_what_the_sensor_ingested_and_the_sensor_hashes_a_file_once(paths, instance, monkeypatch):
    land(paths, FILES[0])
    hashed = []
    digest = file_versions.file_digest
    monkeypatch.setattr(file_versions, "file_digest", lambda path: hashed.append(path.name) or digest(path))

    first = _tick(paths, instance)
    (request,) = first.run_requests
    assert request.tags[LANDING_FILE_VERSION_TAG].startswith(f"{FILES[0]}:sha256:") and hashed == [FILES[0]]
    _as_the_daemon_runs(paths, instance, request)

    again = _tick(paths, instance, first.cursor)
    assert again.run_requests == [] and hashed == [FILES[0]]  # the cursor remembers the digest
    assert "all already ingested with the same content" in again.skip_reason.skip_message
    assert select_landing_files(instance, list_landing_files(paths.landing), log=lambda _: None) == []

    rees46 = paths.landing / FILES[0]
    stat = rees46.stat()
    os.utime(rees46, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    touched = _tick(paths, instance, again.cursor)
    assert touched.run_requests == [] and hashed == [FILES[0]] * 2  # hashed again once: same content
    assert _tick(paths, instance, touched.cursor).run_requests == [] and len(hashed) == 2


def test_the_sensor_skips_what_the_one_shot_ingested_even_touched(paths, instance):
    land(paths, FILES[0])
    defs = build_definitions(paths)
    files = list_landing_files(paths.landing)
    ((_, result),) = list(ingest_landing_files(defs, instance, select_landing_files(instance, files)))
    assert result.success
    rees46 = paths.landing / FILES[0]
    stat = rees46.stat()
    os.utime(rees46, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    assert _tick(paths, instance).run_requests == []
    with open(rees46, "ab") as handle:
        handle.write(b"\n")
    (request,) = _tick(paths, instance).run_requests
    assert request.partition_key == FILES[0]


def test_runs_from_before_content_versions_count_while_the_file_is_untouched(paths, instance):
    """A sensor run's run key (like a one-shot run's version tag) used to be the file's stat key."""
    land(paths, FILES[0])
    (path,) = list_landing_files(paths.landing)
    stat = path.stat()
    instance.add_dynamic_partitions(landing_files.name, [path.name])
    job = build_definitions(paths).resolve_job_def("ingest_landing_file")
    tags = {RUN_KEY_TAG: stat_key(path.name, stat.st_size, stat.st_mtime_ns)}
    assert job.execute_in_process(partition_key=path.name, instance=instance, tags=tags).success
    assert select_landing_files(instance, [path], log=lambda _: None) == []
    assert _tick(paths, instance).run_requests == []
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    assert [f.name for f in select_landing_files(instance, [path], log=lambda _: None)] == [path.name]


def test_session_days_left_stale_are_built_even_when_no_file_is_new(paths, instance, monkeypatch):
    """A sessions run that failed or was cut short leaves its days stale: the next run builds them."""
    monkeypatch.setattr(one_shot, "build_definitions", _QuickRefresh)
    land(paths, *FILES)
    first, _, _ = _pipeline(paths, instance)
    assert "build_sessions" in {job for job, _ in first}
    assert _pipeline(paths, instance)[2].nothing_new
    with build_resources(paths)["duckdb"].get_connection() as con:
        event_days.forget_built_days(con)  # as if the sessions run had died before publishing
    runs, _, outcome = _pipeline(paths, instance)
    assert not outcome.nothing_new and [job for job, _ in runs if job == "ingest_landing_file"] == []
    assert "build_sessions" in {job for job, _ in runs} and _refreshes(runs) == 1, runs
    assert _pipeline(paths, instance)[2].nothing_new
