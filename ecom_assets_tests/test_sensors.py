"""sensors: the landing sensor (new files become partitions and ingest runs) and the retrain-on-drift
sensor (one retraining per drifted report), through Dagster's own entry points."""

from __future__ import annotations

import dagster as dg

from ecom_assets.assets.drift_reports import CART_ABANDONMENT_DRIFT_REPORT, PURCHASE_DRIFT_REPORT
from ecom_assets.definitions import build_definitions
from ecom_assets.ml.feature_specs import CART_MODEL_NAME, PURCHASE_MODEL_NAME
from ecom_assets.ml.tracking import client, tracking_uri
from ecom_assets.partitions import landing_files
from ecom_assets.resources import EcomSettings, MLSettings, build_resources
from ecom_assets.sensors import landing_sensor, retrain_on_drift_sensor
from ecom_assets_tests.conftest import land, query


def _evaluate_sensor(paths, instance) -> dg.SensorResult:
    context = dg.build_sensor_context(instance=instance, resources={"settings": build_resources(paths)["settings"]})
    return landing_sensor(context)


def test_landing_sensor_registers_new_files_and_requests_one_run_each(paths, instance):
    land(paths, "rees46_quirks.csv", "retailrocket_quirks.csv")
    (paths.landing / ".2019-Dec.csv.tmp").write_text("being written")  # ignored until renamed
    result = _evaluate_sensor(paths, instance)
    assert sorted(r.partition_key for r in result.run_requests) == ["rees46_quirks.csv", "retailrocket_quirks.csv"]
    (added,) = result.dynamic_partitions_requests
    assert sorted(added.partition_keys) == ["rees46_quirks.csv", "retailrocket_quirks.csv"]


def test_landing_sensor_run_key_changes_only_when_a_file_changes(paths, instance):
    land(paths, "rees46_quirks.csv")
    first = _evaluate_sensor(paths, instance)
    instance.add_dynamic_partitions(landing_files.name, ["rees46_quirks.csv"])
    again = _evaluate_sensor(paths, instance)
    assert [r.run_key for r in again.run_requests] == [r.run_key for r in first.run_requests]
    assert again.dynamic_partitions_requests == []  # nothing new to register
    with open(paths.landing / "rees46_quirks.csv", "a") as handle:
        handle.write("\n")
    changed = _evaluate_sensor(paths, instance)
    assert changed.run_requests[0].run_key != first.run_requests[0].run_key


def test_a_sensor_run_request_ingests_its_file(paths, instance):
    land(paths, "rees46_quirks.csv")
    (request,) = _evaluate_sensor(paths, instance).run_requests
    instance.add_dynamic_partitions(landing_files.name, [request.partition_key])
    job = build_definitions(paths).resolve_job_def("ingest_landing_file")
    result = job.execute_in_process(partition_key=request.partition_key, instance=instance)
    assert result.success
    assert query(paths, "SELECT count(DISTINCT source_file) FROM bronze.events") == [(1,)]


# --- retrain on drift, on the shared built dataset ---------------------------------------------


def _metadata(built, key):
    return built.instance.get_latest_materialization_event(key).asset_materialization.metadata


def _ml_settings(built) -> MLSettings:
    return MLSettings(tracking_uri=tracking_uri(built.paths, configured=""))


def _evaluate(built, threshold: float, cursor: str | None = None) -> dg.SensorResult:
    # Fresh instances, not model_copy: Dagster rebuilds a resource from its constructor config.
    settings = EcomSettings(home=str(built.paths.home), drift_threshold=threshold)
    context = dg.build_sensor_context(
        instance=built.instance, cursor=cursor, resources={"settings": settings, "ml_settings": _ml_settings(built)}
    )
    return retrain_on_drift_sensor(context)


def _most_drifted_report(built) -> tuple[str, float]:
    shares = {
        key: _metadata(built, key)["drift_share"].value
        for key in (PURCHASE_DRIFT_REPORT, CART_ABANDONMENT_DRIFT_REPORT)
    }
    key = max(shares, key=shares.get)
    return key.path[-1], shares[key]


def test_sensor_requests_nothing_for_reports_under_the_threshold(built):
    result = _evaluate(built, threshold=1.01)  # no report can reach 101%
    assert result.run_requests == []
    # The tick says why: each model's drift decision, in the UI's skip reason.
    reason = result.skip_reason.skip_message
    assert "purchase:" in reason and "cart_abandonment:" in reason and "below the 101% threshold" in reason


def test_landing_sensor_says_why_it_requests_nothing(paths, instance):
    result = _evaluate_sensor(paths, instance)
    assert result.run_requests == []
    assert "no landing file" in result.skip_reason.skip_message


def test_sensor_requests_one_retraining_per_drifted_report_and_never_twice(built):
    report, share = _most_drifted_report(built)
    assert share > 0, "the built dataset should drift a little between training and scoring windows"
    first = _evaluate(built, threshold=share)
    assert len(first.run_requests) == 1
    (request,) = first.run_requests
    expected_job = "retrain_purchase_model" if report.startswith("purchase") else "retrain_cart_abandonment_model"
    assert request.job_name == expected_job
    assert request.run_key.startswith("drift:")
    again = _evaluate(built, threshold=share, cursor=first.cursor)
    assert again.run_requests == []  # the same report does not retrain twice


def test_the_requested_retraining_registers_a_new_version(built, built_copy, instance):
    """The sensor reads the shared build; the job it requests runs on a copy of it (copied registry and
    warehouse, a fresh instance), so the shared registry and instance stay as built."""
    report, share = _most_drifted_report(built)
    (request,) = _evaluate(built, threshold=share).run_requests
    model = PURCHASE_MODEL_NAME if report.startswith("purchase") else CART_MODEL_NAME
    versions = lambda uri: {v.version for v in client(uri).search_model_versions(f"name = '{model}'")}  # noqa: E731
    copy_uri = tracking_uri(built_copy, configured="")
    before = versions(copy_uri)
    assert before and before == versions(_ml_settings(built).tracking_uri)  # the copy starts as built
    job = build_definitions(built_copy).resolve_job_def(request.job_name)
    result = job.execute_in_process(
        instance=instance,
        tags={"dagster/run_key": request.run_key},
        resources={"ml_settings": MLSettings(tracking_uri=copy_uri)},
    )
    assert result.success
    after = versions(copy_uri)
    assert len(after - before) == 1
    layers = {event.asset_key.path[0] for event in result.get_asset_materialization_events()}
    assert {"ml", "gold"} <= layers and "monitoring" not in layers  # rescored; reports wait for the daily run
    assert versions(_ml_settings(built).tracking_uri) == before  # the shared registry is untouched
