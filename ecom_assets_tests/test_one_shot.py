"""one_shot.run_pipeline, the whole graph on generated data: every table built, every check green,
nothing lost, idempotent, and a summary a person can read."""

from __future__ import annotations

import dagster as dg
import pytest
from dagster._core.storage.tags import REPOSITORY_LABEL_TAG, RUN_KEY_TAG, SENSOR_NAME_TAG

from ecom_assets.assets.drift_reports import MONITORS
from ecom_assets.definitions import build_definitions
from ecom_assets.ml.tracking import production_version, tracking_uri
from ecom_assets.one_shot import LAUNCHED_BY_TAG, execute_when_free, highlights, run_pipeline, warehouse_summary
from ecom_assets.orphan_runs import PID_TAG
from ecom_assets.resources import build_resources
from ecom_assets.sensors import landing_sensor
from ecom_assets_tests.conftest import land, query

KEY_COLUMNS = {
    "bronze.events": {"source_file", "line_number", "raw_line"},
    "silver.events": {
        "event_time",
        "user_id",
        "session_id",
        "item_id",
        "event_type",
        "price",
        "brand",
        "category",
        "transaction_id",
        "source_file",
    },
    "silver.events_quarantine": {"source_file", "line_number", "raw_line", "reason"},
    "gold.fact_user_sessions": {
        "session_id",
        "user_id",
        "session_start",
        "session_end",
        "duration_seconds",
        "views",
        "carts",
        "removes",
        "purchases",
        "revenue",
        "experiment_group",
    },
    "gold.dim_users": {"user_id", "first_seen", "last_seen", "sessions", "lifetime_value", "days_since_last_session"},
}


def _columns(paths, table):
    schema, name = table.split(".")
    return {
        r[0]
        for r in query(
            paths,
            "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ?",
            [schema, name],
        )
    }


def test_every_table_is_built_with_its_key_columns(built):
    assert built.outcome.ok, built.outcome
    for table, columns in KEY_COLUMNS.items():
        assert columns <= _columns(built.paths, table), table
        assert query(built.paths, f"SELECT count(*) FROM {table}")[0][0] > 0, table


def test_every_asset_check_ran_and_passed(built):
    assert not built.outcome.failed_checks and not built.outcome.warnings
    defs = build_definitions(built.paths)
    declared = {key for checks in defs.asset_checks or [] for key in checks.check_keys}
    evaluated = set()
    for key in declared:
        latest = built.instance.event_log_storage.get_latest_asset_check_execution_by_key([key]).get(key)
        assert latest is not None, f"{key} never ran"
        evaluation = latest.event.dagster_event.event_specific_data  # AssetCheckEvaluation
        assert evaluation.passed, f"{key}: {evaluation.description}"
        evaluated.add(key)
    assert evaluated == declared


def test_nothing_is_lost_per_file(built):
    rows = query(
        built.paths,
        """
        SELECT b.source_file, b.n, s.n, d.n, q.n FROM
          (SELECT source_file, count(*) n FROM bronze.events GROUP BY 1) b
          JOIN (SELECT source_file, count(*) n FROM silver.events GROUP BY 1) s USING (source_file)
          JOIN (SELECT source_file, count(*) n FROM silver.events_duplicates GROUP BY 1) d USING (source_file)
          JOIN (SELECT source_file, count(*) n FROM silver.events_quarantine GROUP BY 1) q USING (source_file)
        ORDER BY 1""",
    )
    assert [r[0] for r in rows] == ["2019-Nov.csv", "2019-Oct.csv"]
    for _, bronze, silver, duplicates, quarantined in rows:
        assert bronze == silver + duplicates + quarantined
        assert duplicates > 0 and quarantined > 0  # the generator plants both


def test_sessions_are_recovered_and_split_by_arm(built):
    multi_event, groups = query(
        built.paths,
        """
        SELECT avg((events > 1)::INT), count(DISTINCT experiment_group) FROM gold.fact_user_sessions""",
    )[0]
    assert multi_event > 0.7
    assert groups == 2


def test_materializing_again_changes_no_counts(built, built_copy, instance):
    """Every file ingested again and everything rebuilt, on a copy of the built home (the shared one
    stays as built) with a fresh instance: no count changes."""
    before = warehouse_summary(built_copy)
    assert before == warehouse_summary(built.paths) and any(count for _, count in before)  # a faithful copy
    uri = tracking_uri(built_copy)
    versions = {m.task.registered_model: production_version(uri, m.task.registered_model) for m in MONITORS}
    outcome = run_pipeline(built_copy, instance, log=lambda _: None)
    assert outcome.ok, outcome
    assert warehouse_summary(built_copy) == before
    # With production models, the refresh scores and reports drift but trains nothing.
    assert {run.job_name for run in instance.get_runs()} == {"ingest_landing_file", "refresh_warehouse"}
    assert {name: production_version(uri, name) for name in versions} == versions
    for key in [["ml", "purchase_model"], ["ml", "cart_abandonment_model"]]:
        assert instance.get_latest_materialization_event(dg.AssetKey(key)) is None, key
    for monitor in MONITORS:
        assert instance.get_latest_materialization_event(monitor.key) is not None, monitor.key


def test_a_fresh_home_trains_before_it_scores_and_reports_drift(built):
    """No production model yet: the one-shot's refresh trains both models, then scores and reports
    drift against the versions it just promoted."""
    jobs = sorted({run.job_name for run in built.instance.get_runs()})
    assert jobs == ["build_sessions", "ingest_landing_file", "refresh_and_retrain"]
    uri = tracking_uri(built.paths)
    for monitor in MONITORS:
        version = production_version(uri, monitor.task.registered_model)
        assert version is not None, monitor.task.registered_model
        report = built.instance.get_latest_materialization_event(monitor.key).asset_materialization
        assert report.metadata["model"].value.endswith(f"(v{version})"), report.metadata["model"]


def test_the_run_summary_names_the_verdict_the_models_and_the_files(built):
    lines = highlights(built.paths)
    assert lines[0].startswith("A/B test: ") and "conversion" in lines[0]
    assert any(line.startswith("purchase model (production v") for line in lines)
    assert any(line.startswith("cart-abandonment model (production v") for line in lines)
    assert any("predicted_purchase.parquet" in line for line in lines)
    assert any("purchase_drift_" in line for line in lines)


def test_a_headless_run_belongs_to_its_job_says_who_launched_it_and_is_not_ingested_again(paths, instance):
    """`ecom-assets run` records its runs as runs of the code location's jobs (the UI lists them on
    the job's page), tagged as its own, not the sensor's; the sensor requests no run for the file
    version it ingested, and does for a new version of the file."""
    land(paths, "rees46_quirks.csv")
    run_pipeline(paths, instance, log=lambda _: None)
    runs = instance.get_runs()
    # ingest, the file's days sessionized, then (no model yet) the refresh that trains
    assert sorted(run.job_name for run in runs) == ["build_sessions", "ingest_landing_file", "refresh_and_retrain"]
    for run in runs:
        assert run.tags[LAUNCHED_BY_TAG] == "ecom-assets run"
        assert SENSOR_NAME_TAG not in run.tags and RUN_KEY_TAG not in run.tags
        origin = run.remote_job_origin.repository_origin
        assert (origin.code_location_origin.location_name, origin.repository_name) == ("ecom_assets", "__repository__")
        assert run.job_code_origin.job_name == run.job_name
        # How the UI's job page finds a job's runs (dagster_graphql GraphenePipeline.resolve_runs).
        on_the_job_page = dg.RunsFilter(job_name=run.job_name, tags={REPOSITORY_LABEL_TAG: origin.get_label()})
        assert [r.run_id for r in instance.get_runs(filters=on_the_job_page)] == [run.run_id]
    context = dg.build_sensor_context(instance=instance, resources={"settings": build_resources(paths)["settings"]})
    assert landing_sensor(context).run_requests == []
    with open(paths.landing / "rees46_quirks.csv", "a") as handle:
        handle.write("\n")
    (request,) = landing_sensor(context).run_requests
    assert request.partition_key == "rees46_quirks.csv"


def test_an_interrupted_run_stops_the_one_shot_instead_of_going_on(instance):
    """Dagster records Ctrl-C or SIGTERM in the run and returns; the one-shot must not go on."""

    @dg.asset
    def cut_short() -> None:
        raise KeyboardInterrupt

    job = dg.Definitions(assets=[cut_short], jobs=[dg.define_asset_job("cut")]).resolve_job_def("cut")
    with pytest.raises(KeyboardInterrupt, match="in run .+ of cut"):
        execute_when_free(job, instance, log=lambda _: None)
    (run,) = instance.get_runs()
    assert run.status == dg.DagsterRunStatus.FAILURE and run.tags[PID_TAG]


def test_an_upgrade_that_changes_a_feature_contract_retrains_that_home_once(built_copy, instance):
    """A production model trained on an older release's features (as the cart model's before its first
    add-to-cart decision point) cannot score today's rows: the next run trains, retires it in the open,
    scores with the new version, and the run after that has nothing to do."""
    import json

    from ecom_assets.ml.feature_specs import CART_MODEL_NAME
    from ecom_assets.ml.tracking import client

    uri = tracking_uri(built_copy)
    old = production_version(uri, CART_MODEL_NAME)
    old_contract = ["total_views", "total_carts", "session_duration_minutes", "experiment_group"]
    client(uri).set_model_version_tag(CART_MODEL_NAME, old, "features", json.dumps(old_contract))
    messages: list[str] = []
    outcome = run_pipeline(built_copy, instance, log=messages.append)
    assert outcome.ok, outcome
    assert any("reads an older feature contract" in m for m in messages), messages
    assert "refresh_and_retrain" in {run.job_name for run in instance.get_runs()}
    new = production_version(uri, CART_MODEL_NAME)
    assert new != old
    reason = client(uri).get_model_version(CART_MODEL_NAME, new).tags["promotion_reason"]
    assert "another feature contract" in reason and "session_duration_minutes" in reason
    assert run_pipeline(built_copy, instance, log=lambda _: None).nothing_new
