"""serving.app_data: what the app reads from the published snapshots and the reports folder."""

from __future__ import annotations

from ecom_assets.serving import app_data


def test_drift_reports_without_a_summary_are_listed(tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "cart_abandonment_gb_drift_2019-11-01.html").write_text("<html>old</html>")
    newer = reports / "cart_abandonment_gb_drift_2019-11-08.html"
    newer.write_text("<html>new</html>")
    (reports / "other_model_drift_2019-11-08.html").write_text("<html></html>")
    (reports / "other_model_drift_2019-11-08.json").write_text(
        '{"drift_share": 0.25, "drifted_columns": ["price"], "columns": [{"column": "price", "drifted": true}]}'
    )
    import os

    os.utime(newer, (2_000_000_000, 2_000_000_000))
    found = {r.model: r for r in app_data.latest_drift_reports(reports)}
    assert found["cart_abandonment_gb"].batch == "2019-11-08" and found["cart_abandonment_gb"].summary is None
    assert found["other_model"].drift_share == 0.25 and found["other_model"].drifted_columns == ["price"]
    assert list(found["other_model"].columns_frame()["column"]) == ["price"]


def test_money_is_dollars_with_the_sign_first():
    assert app_data.usd(1234.5) == "$1,234.50"
    assert app_data.usd(-0.5, signed=True) == "-$0.50" and app_data.usd(0.25, signed=True) == "+$0.25"


def test_the_upload_limit_is_the_apis_rounded_down(monkeypatch):
    monkeypatch.delenv("ECOM_API_MAX_UPLOAD_MB", raising=False)
    assert app_data.upload_limit_mb() == 20
    monkeypatch.setenv("ECOM_API_MAX_UPLOAD_MB", "7.9")
    assert app_data.upload_limit_mb() == 7
    monkeypatch.setenv("ECOM_API_MAX_UPLOAD_MB", "0.5")
    assert app_data.upload_limit_mb() == 1  # Streamlit takes whole megabytes


def test_the_funnel_is_in_funnel_order():
    import pandas as pd

    by_arm = pd.DataFrame(
        {
            "experiment_group": ["treatment", "control"],
            "sessions": [10, 20],
            "sessions_with_view": [10, 20],
            "sessions_with_cart": [4, 6],
            "purchasing_sessions": [1, 2],
        }
    )
    funnel = app_data.session_funnel_by_arm(by_arm)
    assert list(funnel.index) == ["viewed", "carted", "purchased"] and list(funnel.columns) == ["control", "treatment"]
    long = app_data.funnel_long(funnel)
    assert list(long["stage"][:3]) == ["viewed", "carted", "purchased"]
    assert long.set_index(["arm", "stage"]).loc[("treatment", "carted"), "share"] == 0.4


def test_top_lists_are_ranked_by_value_and_bands_keep_the_sql_order():
    import pandas as pd

    from ecom_assets.insights.questions import INSIGHTS

    by_name = {i.name: i for i in INSIGHTS}
    items = pd.DataFrame({"itemid": [3, 1, 2], "expected_conversions": [5.0, 1.0, 2.5]})
    chart = app_data.insight_chart(by_name["top_items_by_predicted_conversions"], items)
    assert chart.ranked and chart.category_order == ["3", "2", "1"]  # by value: 5.0, 2.5, 1.0, not by id
    assert chart.category_title == "Item id" and not chart.percent
    bands = pd.DataFrame(
        {"funnel_depth": [1, 2, 3], "conversion_rate": [0.3, 0.1, 0.2], "predicted_conversion_rate": [0.2, 0.2, 0.2]}
    )
    chart = app_data.insight_chart(by_name["conversion_by_funnel_depth"], bands)
    assert chart.category_order == ["1: viewed", "2: carted", "3: purchased"] and chart.percent
    assert set(chart.data["measure"]) == {"Actual conversion rate", "Predicted conversion rate"}
