"""experiment.ab_results: one results table for the experiment and the legacy parity split."""

from __future__ import annotations

from ecom_assets.experiment.ab_results import LEGACY_EXPERIMENT, experiment_results, results_markdown
from ecom_assets_tests.simulated_users import users_with_funnel


def test_experiment_results_cover_both_splits_and_render_as_markdown():
    results = experiment_results(users_with_funnel(), "exp", 0.5, simulated_uplift=0.1)
    assert list(results["experiment"].unique()) == ["exp", LEGACY_EXPERIMENT]
    assert (results["simulated_uplift"] == 0.1).all()
    assert "| users |" in results_markdown(results[results["experiment"] == "exp"])
