"""Sensors: new landing files become partitions and runs; drifted or stale models get retrained."""

import datetime as dt
import json

import dagster as dg

from ecom_assets.assets.drift_reports import CART_ABANDONMENT_MONITOR, MONITORS, PURCHASE_MONITOR, latest_drift_record
from ecom_assets.jobs import (
    build_sessions_job,
    ingest_landing_file_job,
    retrain_cart_abandonment_model_job,
    retrain_purchase_model_job,
)
from ecom_assets.lakehouse import event_days
from ecom_assets.lakehouse.file_versions import (
    LandingFileVersion,
    LastIngest,
    already_ingested,
    known_digests,
    versions_of,
)
from ecom_assets.ml.tracking import production_model_version
from ecom_assets.monitoring.retraining import decide_on_age, decide_on_drift
from ecom_assets.partitions import event_days as event_days_partitions
from ecom_assets.partitions import landing_files
from ecom_assets.resources import EcomSettings, MLSettings, WarehouseResource


def stale_session_ranges(warehouse: WarehouseResource) -> list[tuple[dt.date, dt.date, dt.datetime]]:
    """[start, end) ranges of session days that silver changed since they were built, each with its
    latest change (a range's version), within the day partitions' span."""
    first = dt.date.fromisoformat(event_days_partitions.get_first_partition_key())
    last = dt.date.fromisoformat(event_days_partitions.get_last_partition_key())
    try:
        with warehouse.read_connection() as con:
            days = event_days.stale_session_days(con, first, last)
            latest = con.execute("SELECT max(changed_at) FROM silver.changed_days").fetchone()[0]
    except FileNotFoundError:  # no warehouse yet
        return []
    return [(start, end, latest) for start, end in event_days.day_ranges(days)]


# The content version (file_versions.content_version) an ingest run ingests, and the file's stat key
# when it was hashed, on every ingest run the sensor or `ecom-assets run` launches: neither ingests again
# what the other ingested, and an untouched file is not hashed again. Runs from before content versions
# carry a stat key as version (one-shot) or as run key (sensor).
LANDING_FILE_VERSION_TAG = "ecom/landing_file_version"
LANDING_FILE_STAT_TAG = "ecom/landing_file_stat"
PARTITION_NAME_TAG, RUN_KEY_TAG = "dagster/partition", "dagster/run_key"  # Dagster's own run tags
_FAILED = (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED, dg.DagsterRunStatus.CANCELING)


def landing_version_tags(file: LandingFileVersion) -> dict[str, str]:
    return {LANDING_FILE_VERSION_TAG: file.version, LANDING_FILE_STAT_TAG: file.stat_key}


def last_ingests(instance: dg.DagsterInstance) -> dict[str, LastIngest]:
    """The newest ingest run of each file name, whoever launched it (this sensor, `ecom-assets run`,
    the UI), in one run query."""
    latest: dict[str, LastIngest] = {}
    for run in instance.get_runs(filters=dg.RunsFilter(job_name=ingest_landing_file_job.name)):
        name = run.tags.get(PARTITION_NAME_TAG)
        if name is None or name in latest:
            continue
        latest[name] = LastIngest(
            version=run.tags.get(LANDING_FILE_VERSION_TAG) or run.tags.get(RUN_KEY_TAG),
            stat_key=run.tags.get(LANDING_FILE_STAT_TAG),
            failed=run.status in _FAILED,
        )
    return latest


def _cursor_digests(cursor: str | None) -> dict[str, str]:
    try:
        digests = json.loads(cursor or "{}")
    except ValueError:
        return {}
    return digests if isinstance(digests, dict) else {}


@dg.sensor(
    name="landing_sensor",
    job=ingest_landing_file_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Registers every *.csv / *.csv.gz (any case) in the landing folder as a partition and ingests "
    "it; bronze refuses symlinks with a reason. Says which known files are gone from the folder.",
)
def landing_sensor(context: dg.SensorEvaluationContext, settings: EcomSettings) -> dg.SensorResult:
    known = set(context.instance.get_dynamic_partitions(landing_files.name))
    store = settings.files
    files = store.list_landing()  # the landing folder, or the bucket's landing prefix (cluster)
    lasts = last_ingests(context.instance)
    # The cursor remembers each listed file's digest by stat key: a file is hashed when it changes.
    cached = {**known_digests(lasts.values()), **_cursor_digests(context.cursor)}
    versions, digests = versions_of(files, cached)
    listed = {file.name for file in versions}
    run_requests = [
        dg.RunRequest(run_key=file.stat_key, partition_key=file.name, tags=landing_version_tags(file))
        for file in versions
        if not already_ingested(file, lasts.get(file.name))
    ]
    new = [name for name in sorted(listed) if name not in known]
    context.log.info(
        f"{len(listed)} landing file(s) in {store.landing_location}; {len(new)} new: {', '.join(new) or 'none'}"
    )
    gone = sorted(known - listed)
    if gone:
        context.log.warning(
            f"{len(gone)} partition(s) whose file is gone from the landing folder: {', '.join(gone[:10])}. "
            "Their rows stay in the warehouse until retracted (docs/data.md, 'Retracting a file')."
        )
    skip = None
    if not run_requests:
        skip = (
            f"{len(listed)} landing file(s) in {store.landing_location}, all already ingested with the same content"
            if listed
            else f"no landing file in {store.landing_location}"
        )
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=[landing_files.build_add_request(new)] if new else [],
        skip_reason=skip,
        cursor=json.dumps(digests, sort_keys=True),
    )


def _production_version(model_name: str, uri: str) -> tuple[str | None, dt.datetime | None]:
    """The production version and its training time, from the registry (without loading the model)."""
    version = production_model_version(uri, model_name)
    if version is None:
        return None, None
    try:
        stamp = dt.datetime.fromisoformat((version.tags or {}).get("trained_at", ""))
    except ValueError:
        return str(version.version), None
    return str(version.version), stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)


RETRAIN_JOBS = {
    PURCHASE_MONITOR.report_name: retrain_purchase_model_job,
    CART_ABANDONMENT_MONITOR.report_name: retrain_cart_abandonment_model_job,
}


@dg.sensor(
    name="retrain_on_drift",
    jobs=list(RETRAIN_JOBS.values()),
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Retrains a model when its latest drift report crosses the threshold (once per report), "
    "or when its production version is older than ECOM_MAX_MODEL_AGE_DAYS.",
)
def retrain_on_drift_sensor(
    context: dg.SensorEvaluationContext, settings: EcomSettings, ml_settings: MLSettings
) -> dg.SensorResult:
    # The cursor remembers the run keys already requested, so a report (or a stale version) is
    # acted on once even if the daemon's own run-key deduplication is bypassed.
    handled = set(json.loads(context.cursor or "[]"))
    now = dt.datetime.now(dt.UTC)
    uri = ml_settings.uri(settings.paths)
    requests, reasons = [], []
    for monitor in MONITORS:
        drift = decide_on_drift(
            latest_drift_record(context.instance, monitor), monitor.report_name, settings.drift_threshold
        )
        version, trained_at = _production_version(monitor.task.registered_model, uri)
        age = decide_on_age(monitor.report_name, version, trained_at, now, settings.max_model_age_days)
        for decision in (drift, age):
            if decision.retrain and decision.run_key in handled:
                reasons.append(f"{decision.reason} (already requested as {decision.run_key})")
                context.log.info(reasons[-1])
                continue
            reasons.append(decision.reason)
            context.log.info(decision.reason)
            if decision.retrain:
                handled.add(decision.run_key)
                requests.append(
                    dg.RunRequest(
                        run_key=decision.run_key,
                        job_name=RETRAIN_JOBS[monitor.report_name].name,
                        tags={"ecom/retrain_reason": decision.reason[:200]},
                    )
                )
    # A tick that requests nothing says why in the UI: every model's drift and age decision.
    return dg.SensorResult(
        run_requests=requests, skip_reason=None if requests else "; ".join(reasons), cursor=json.dumps(sorted(handled))
    )


@dg.sensor(
    name="sessions_sensor",
    job=build_sessions_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Sessionizes the days that ingested files changed (and the day on either side), one run per "
    "range of consecutive days.",
)
def sessions_sensor(context: dg.SensorEvaluationContext, duckdb: WarehouseResource) -> dg.SensorResult:
    ranges = stale_session_ranges(duckdb)
    requests = [
        dg.RunRequest(
            run_key=f"sessions:{start}:{end}:{changed_at:%Y%m%dT%H%M%S.%f}",
            tags=event_days.partition_range_tags(start, end),
        )
        for start, end, changed_at in ranges
    ]
    if requests:
        days = sum((end - start).days for start, end, _ in ranges)
        context.log.info(f"{days} stale session day(s) in {len(ranges)} range(s)")
    return dg.SensorResult(run_requests=requests, skip_reason=None if requests else "every session day is up to date")
