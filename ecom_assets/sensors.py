"""The landing sensor: each new or changed file in ECOM_HOME/landing becomes a partition and a run."""

import dagster as dg

from ecom_assets.jobs import ingest_landing_file_job
from ecom_assets.landing import list_landing_files
from ecom_assets.partitions import landing_files
from ecom_assets.resources import EcomSettings


def landing_run_key(name: str, size: int, mtime_ns: int) -> str:
    # A file re-landed under the same name with new content gets a new key and is re-ingested.
    return f"{name}:{size}:{mtime_ns}"


@dg.sensor(
    name="landing_sensor",
    job=ingest_landing_file_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Registers every *.csv / *.csv.gz in the landing folder as a partition and ingests it.",
)
def landing_sensor(context: dg.SensorEvaluationContext, settings: EcomSettings) -> dg.SensorResult:
    known = set(context.instance.get_dynamic_partitions(landing_files.name))
    files = list_landing_files(settings.paths.landing)
    new = [p.name for p in files if p.name not in known]
    run_requests = []
    for path in files:
        stat = path.stat()
        run_requests.append(
            dg.RunRequest(
                run_key=landing_run_key(path.name, stat.st_size, stat.st_mtime_ns),
                partition_key=path.name,
            )
        )
    context.log.info(
        f"{len(files)} landing file(s) in {settings.paths.landing}; {len(new)} new: {', '.join(new) or 'none'}"
    )
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=[landing_files.build_add_request(new)] if new else [],
    )
