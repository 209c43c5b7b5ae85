"""assets/ab_experiment.py with checks/experiment_checks.py: the built graph finds the injected effect,
a skewed split stops the graph, and the simulated uplift for real files behaves."""

from __future__ import annotations

import hashlib

import dagster as dg
import pandas as pd
import pytest

from ecom_assets.assets import ab_experiment as experiment_assets
from ecom_assets.assets import gold
from ecom_assets.assets.ab_experiment import AB_TEST_RESULTS
from ecom_assets.checks import experiment_checks
from ecom_assets.definitions import build_definitions
from ecom_assets.experiment.ab_results import LEGACY_EXPERIMENT, RESULT_COLUMNS
from ecom_assets.experiment.assignment import DEFAULT_EXPERIMENT_KEY, assign_group
from ecom_assets.generator import GeneratorConfig, generate
from ecom_assets.one_shot import build_stale_sessions
from ecom_assets.resources import EcomSettings, build_resources, open_warehouse
from ecom_assets_tests.conftest import ingest, query, sessionize
from ecom_assets_tests.simulated_users import conversion_row as _conversion
from ecom_assets_tests.simulated_users import true_conversion_lift

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# --- the assets on the shared 60k-event dataset (generated with treatment_effect = 0.05) ----


def _results(paths) -> pd.DataFrame:
    with build_resources(paths)["duckdb"].get_connection() as con:
        return con.execute("SELECT * FROM experiment.ab_test_results").df()


def test_built_dataset_finds_the_injected_effect(built):
    results = _results(built.paths)
    assert list(results.columns) == RESULT_COLUMNS
    assert set(zip(results["experiment"], results["metric"])) == {
        (e, m)
        for e in (DEFAULT_EXPERIMENT_KEY, LEGACY_EXPERIMENT)
        for m in ("users", "converted_users", "sample_ratio", "conversion_rate", "revenue_per_user")
    }
    conversion = _conversion(results)
    assert conversion["p_value"] < 0.05 and conversion["statistic"] > 0
    assert 0 < conversion["absolute_ci_low"] <= true_conversion_lift(0.05) <= conversion["absolute_ci_high"]
    assert conversion["relative_ci_low"] > 0
    assert conversion["verdict"].startswith("Treatment lifts conversion")
    assert (results["simulated_uplift"] == 0).all()


def test_built_results_match_an_independent_count(built):
    """The table's numbers from a plain SQL count over gold.dim_users (not the asset's query)."""
    (n_c, x_c, rev_c), (n_t, x_t, rev_t) = query(
        built.paths,
        """
        SELECT count(*), count(*) FILTER (WHERE purchases > 0), avg(lifetime_value)
        FROM gold.dim_users GROUP BY experiment_group ORDER BY experiment_group""",
    )
    rows = _results(built.paths).set_index(["experiment", "metric"]).loc[DEFAULT_EXPERIMENT_KEY]
    assert (rows.loc["users", "control_value"], rows.loc["users", "treatment_value"]) == (n_c, n_t)
    assert (rows.loc["converted_users", "control_value"], rows.loc["converted_users", "treatment_value"]) == (x_c, x_t)
    assert rows.loc["conversion_rate", "control_value"] == pytest.approx(x_c / n_c)
    assert rows.loc["conversion_rate", "treatment_value"] == pytest.approx(x_t / n_t)
    assert rows.loc["revenue_per_user", "absolute_lift"] == pytest.approx(rev_t - rev_c)


def test_assignments_match_python_and_legacy_parity(built):
    rows = query(built.paths, "SELECT user_id, experiment_group, legacy_group FROM experiment.assignments")
    assert len(rows) == query(built.paths, "SELECT count(*) FROM gold.dim_users")[0][0]
    for user_id, group, legacy in rows:
        assert group == assign_group(user_id)
        assert legacy == ("treatment" if int(hashlib.md5(str(user_id).encode()).hexdigest(), 16) % 2 else "control")


def test_built_published_snapshots_and_charts(built):
    results = pd.read_parquet(built.paths.published / "ab_test_results.parquet")
    assert len(results) == 10 and {"statistic", "p_value", "verdict"} <= set(results.columns)
    sessions = pd.read_parquet(built.paths.published / "ab_sessions_by_arm.parquet").set_index("experiment_group")
    assert list(sessions.index) == ["control", "treatment"]
    totals = query(
        built.paths,
        """SELECT count(*), count(*) FILTER (WHERE carts > 0 AND purchases = 0)
                                   FROM gold.fact_user_sessions""",
    )[0]
    assert sessions["sessions"].sum() == totals[0] and sessions["abandoned_cart_sessions"].sum() == totals[1]
    assert ((sessions["cart_abandonment_rate"] > 0) & (sessions["cart_abandonment_rate"] < 1)).all()
    # the checkout effect turns carts into purchases, so treated cart sessions are abandoned less often
    assert sessions.loc["treatment", "cart_abandonment_rate"] < sessions.loc["control", "cart_abandonment_rate"]
    for chart in ("experiment_funnel.png", "experiment_lift.png"):
        assert (built.paths.reports / chart).read_bytes().startswith(PNG_MAGIC)
    assert not list(built.paths.published.glob(".*.tmp"))

    event = built.instance.get_latest_materialization_event(AB_TEST_RESULTS)
    metadata = event.asset_materialization.metadata
    assert metadata["verdict"].value.startswith("Treatment lifts conversion")
    assert "data:image/png;base64," in metadata["funnel_chart"].value
    assert "| conversion_rate |" in metadata["results"].value
    assert metadata["simulated_uplift"].value == "off"


# --- a deliberately skewed split trips the blocking SRM check --------------------------------


def _load_silver(paths, user_ids) -> None:
    """A view and a cart per user, a purchase for every third, straight into silver."""
    rows = [
        dict(
            event_time=pd.Timestamp("2019-10-01") + pd.Timedelta(minutes=i, seconds=20 * k),
            event_type=kind,
            user_id=user,
            session_id=f"s{user}",
            item_id=1_000 + i % 50,
            price=5.0,
            source_file="synthetic.csv",
            source_format="rees46",
            line_number=3 * i + k + 2,
        )
        for i, user in enumerate(user_ids)
        for k, kind in enumerate(("view", "cart", "purchase"))
        if k < 2 or i % 3 == 0
    ]
    frame = pd.DataFrame(rows)
    resources = build_resources(paths)
    with open_warehouse(resources["duckdb"], resources["settings"]) as con:
        con.register("synthetic_events", frame)
        con.execute("INSERT INTO silver.events BY NAME SELECT * FROM synthetic_events")
        con.unregister("synthetic_events")
        sessionize(con)  # the day-partitioned sessions, as build_sessions leaves them


EXPERIMENT_GRAPH = [
    gold.dim_users,
    experiment_assets.assignments,
    experiment_assets.simulated_purchases,
    experiment_assets.ab_test_results,
    experiment_assets.ab_sessions_by_arm,
    experiment_checks.sample_ratio_mismatch_check,
    experiment_checks.arms_match_sessions,
]


def _materialize(paths, instance):
    """The experiment graph over the sessions of the days the ingested files changed."""
    for run in build_stale_sessions(build_definitions(paths), instance, log=lambda _: None):
        assert run.success
    return dg.materialize(EXPERIMENT_GRAPH, resources=build_resources(paths), instance=instance, raise_on_error=False)


def _srm_evaluation(result):
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "sample_ratio_mismatch"]
    return evaluation


def test_skewed_split_fails_the_blocking_srm_check(paths, instance):
    candidates = range(1, 6_000)
    control = [u for u in candidates if assign_group(u) == "control"][:1_000]
    treatment = [u for u in candidates if assign_group(u) == "treatment"][:1_250]  # 55.6%, not 50%
    _load_silver(paths, control + treatment)
    result = _materialize(paths, instance)
    evaluation = _srm_evaluation(result)
    assert not evaluation.passed
    assert evaluation.description.startswith("Sample ratio mismatch, results are not to be trusted")
    assert "expected 50.0% treatment, observed 55.6%" in evaluation.description
    assert evaluation.metadata["treatment_users"].value == 1_250
    verdict = query(
        paths,
        "SELECT verdict FROM experiment.ab_test_results WHERE metric = 'conversion_rate' AND experiment = ?",
        [DEFAULT_EXPERIMENT_KEY],
    )[0][0]
    assert "Fix assignment/logging before reading any metric" in verdict
    others = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert others["arms_match_sessions"]


def test_fair_split_passes_the_srm_check(paths, instance):
    candidates = range(1, 6_000)
    users = [u for u in candidates if assign_group(u) == "control"][:1_000]
    users += [u for u in candidates if assign_group(u) == "treatment"][:1_030]
    _load_silver(paths, users)
    evaluation = _srm_evaluation(_materialize(paths, instance))
    assert evaluation.passed and evaluation.description.startswith("Sample ratio OK")


def test_too_few_users_get_a_verdict_not_a_crash(paths, instance):
    control = [u for u in range(1, 100) if assign_group(u) == "control"][:3]
    treatment = [u for u in range(1, 100) if assign_group(u) == "treatment"][:1]
    _load_silver(paths, control + treatment)
    result = _materialize(paths, instance)
    assert result.success
    rows = query(paths, "SELECT experiment, metric, verdict FROM experiment.ab_test_results ORDER BY 1")
    assert sorted(r[1] for r in rows) == ["converted_users", "converted_users", "users", "users"]
    assert all(r[2].startswith("Too few users to analyze") for r in rows)
    assert _srm_evaluation(result).passed


# --- simulated uplift on files without an effect ----------------------------------------------


def test_simulated_uplift_is_off_by_default_then_found_when_on(paths, instance, monkeypatch):
    # Files without a checkout effect stand in for a real export.
    generate(paths.landing, GeneratorConfig(events=30_000, days=30, seed=8, treatment_effect=0.0))
    monkeypatch.delenv("ECOM_SIMULATED_UPLIFT", raising=False)
    assert all(result.success for result in ingest(paths, instance))
    assert _materialize(paths, instance).success
    off = _results(paths)
    assert not _conversion(off)["significant"]
    assert query(paths, "SELECT count(*) FROM experiment.simulated_purchases")[0][0] == 0
    silver_before = query(paths, "SELECT count(*), count(*) FILTER (WHERE event_type = 'purchase') FROM silver.events")

    monkeypatch.setenv("ECOM_SIMULATED_UPLIFT", "0.3")
    monkeypatch.setenv("ECOM_SIMULATED_UPLIFT_SEED", "7")
    result = _materialize(paths, instance)  # resources read the environment again
    assert result.success
    assert (
        query(paths, "SELECT count(*), count(*) FILTER (WHERE event_type = 'purchase') FROM silver.events")
        == silver_before
    )  # silver untouched

    # Every simulated purchase follows a treated user's cart event of the same item, shortly after.
    (added, orphans, untreated, late, early) = query(
        paths,
        """
        SELECT count(*),
               count(*) FILTER (WHERE c.user_id IS NULL),
               count(*) FILTER (WHERE a.experiment_group <> 'treatment'),
               count(*) FILTER (WHERE p.event_time > c.event_time + INTERVAL 5 MINUTE),
               count(*) FILTER (WHERE p.event_time <= c.event_time)
        FROM experiment.simulated_purchases p
        LEFT JOIN silver.events c ON c.source_file = p.cart_source_file AND c.line_number = p.cart_line_number
              AND c.event_type = 'cart' AND c.user_id = p.user_id AND c.item_id = p.item_id
        LEFT JOIN experiment.assignments a ON a.user_id = p.user_id""",
    )[0]
    assert added > 0 and orphans == untreated == late == early == 0
    treated_carts = query(
        paths,
        """SELECT count(*) FROM silver.events e JOIN experiment.assignments a
                                    USING (user_id) WHERE e.event_type = 'cart' AND a.experiment_group = 'treatment'""",
    )[0][0]
    assert 0.26 < added / treated_carts < 0.34

    on = _results(paths)
    conversion = _conversion(on)
    assert conversion["significant"] and conversion["absolute_ci_low"] > 0
    assert (on["simulated_uplift"] == 0.3).all()
    metadata = result.asset_materializations_for_node("experiment__ab_test_results")[0].metadata
    assert metadata["simulated_uplift"].value.startswith("ON: 30.0%")
    sessions = query(
        paths, "SELECT simulated_uplift, sum(purchasing_sessions) FROM experiment.ab_sessions_by_arm GROUP BY 1"
    )
    assert sessions[0][0] == 0.3

    # Deterministic for a seed: materializing again gives the same rows.
    snapshot = "SELECT * FROM experiment.simulated_purchases ORDER BY cart_source_file, cart_line_number"
    first = query(paths, snapshot)
    dg.materialize([experiment_assets.simulated_purchases], resources=build_resources(paths), instance=instance)
    assert query(paths, snapshot) == first


def test_arms_match_sessions_check_fails_when_settings_drift(paths, instance):
    """Gold built with a 50/50 split, assignments rebuilt with 30%: the sessions carry other arms."""
    candidates = range(1, 3_000)
    _load_silver(paths, list(candidates)[:600])
    assert _materialize(paths, instance).success
    resources = build_resources(paths)
    resources["settings"] = EcomSettings(home=str(paths.home), treatment_share=0.3)
    result = dg.materialize(
        [experiment_assets.assignments, experiment_checks.arms_match_sessions], resources=resources, instance=instance
    )
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed
    assert evaluation.metadata["offending_rows"].value > 0
    assert "whose sessions carry another arm" in evaluation.description
