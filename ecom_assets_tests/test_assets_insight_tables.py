"""assets/insight_tables.py with insights/: the six business questions answered, with rates and charts."""

from __future__ import annotations

import pandas as pd
import pytest

from ecom_assets.insights.questions import INSIGHTS
from ecom_assets_tests.conftest import query


@pytest.mark.parametrize("insight", INSIGHTS, ids=lambda i: i.name)
def test_insights_are_filled_with_rates_and_charts(built, insight):
    frame = pd.DataFrame(query(built.paths, f"SELECT * FROM insights.{insight.name}"))
    assert len(frame) > 0
    if "conversion_rate" in insight.sql:
        rates = query(
            built.paths,
            f"SELECT min(conversion_rate), max(conversion_rate) FROM insights.{insight.name} "
            "WHERE conversion_rate IS NOT NULL",
        )[0]
        assert 0 <= rates[0] <= rates[1] <= 1
    limit = {"top_items_by_predicted_conversions": 20, "high_intent_visitors": 50}.get(insight.name)
    if limit:
        assert len(frame) <= limit
    assert (built.paths.reports / "insights" / f"{insight.name}.png").exists()


def test_conversion_overview_says_which_model_scored_each_cutoff(built):
    rows = query(built.paths, "SELECT dataset, scored_by, model_version FROM insights.conversion_overview")
    assert {dataset: scored_by for dataset, scored_by, _ in rows} == {"test": "production", "score": "refit"}
    assert len({version for *_, version in rows}) == 1  # the refit scores under the version it refits
