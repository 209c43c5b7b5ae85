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
