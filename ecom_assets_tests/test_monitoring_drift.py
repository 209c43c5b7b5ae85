"""Evidently drift summaries: quiet on identical data, loud on the columns that moved."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ecom_assets.monitoring.drift import DriftSummary, compute_drift, latest_reports, write_report


def _sessions(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "total_views": rng.poisson(4, rows),
            "total_carts": rng.poisson(1.5, rows),
            "session_duration_minutes": rng.exponential(6, rows),
            "experiment_group": rng.choice(["control", "treatment"], rows),
        }
    )


def test_identical_data_shows_no_drift():
    reference = _sessions(3_000, 1)
    summary, _ = compute_drift(reference, reference.copy(), model="cart_abandonment", batch="same")
    assert summary.drifted_columns == []
    assert summary.drift_share == 0.0
    assert not summary.crosses(0.5)


def test_shifted_columns_are_the_drifted_ones():
    reference, current = _sessions(3_000, 1), _sessions(3_000, 2)
    # the generator's drift: carts x U(1, 2.5), session duration x U(0.5, 3)
    rng = np.random.default_rng(3)
    current["total_carts"] = np.rint(current["total_carts"] * rng.uniform(1, 2.5, len(current)))
    current["session_duration_minutes"] *= rng.uniform(0.5, 3, len(current))
    summary, _ = compute_drift(reference, current, model="cart_abandonment", batch="shifted")
    assert set(summary.drifted_columns) == {"total_carts", "session_duration_minutes"}
    assert summary.drift_share == pytest.approx(0.5)
    assert summary.crosses(0.5) and not summary.crosses(0.75)


def test_large_batches_are_sampled_with_a_fixed_seed():
    reference, current = _sessions(20_000, 1), _sessions(20_000, 2)
    first, _ = compute_drift(reference, current, model="m", batch="b", sample_rows=2_000)
    again, _ = compute_drift(reference, current, model="m", batch="b", sample_rows=2_000)
    assert first.columns == again.columns
    assert first.reference_rows == 20_000 and first.sample_rows == 2_000


def test_report_files_are_named_by_model_and_batch_and_read_back(tmp_path):
    reference = _sessions(1_000, 1)
    shifted = reference.assign(total_views=reference["total_views"] + 5)
    older, snap = compute_drift(reference, reference, model="purchase", batch="2019-11-01")
    write_report(older, snap, tmp_path)
    newer, snap = compute_drift(reference, shifted, model="purchase", batch="2019-11-08")
    html = write_report(newer, snap, tmp_path)
    assert html.name == "purchase_drift_2019-11-08.html"
    assert "<html" in html.read_text()[:2000].lower()
    page = html.read_text()
    assert "<h1" in page and newer.title in page  # which model, batch and reference it compares
    assert newer.title == "Data drift of the purchase model: batch 2019-11-08 vs training features"
    latest = latest_reports(tmp_path)
    assert latest["purchase"].batch == "2019-11-08"
    assert latest["purchase"].drifted_columns == ["total_views"]
    assert latest["purchase"].html == html
    assert DriftSummary.from_json(newer.to_json()).columns == newer.columns
    assert "| total_views |" in newer.markdown()


def test_nothing_to_compare_is_a_clear_error():
    with pytest.raises(ValueError, match="share no column"):
        compute_drift(pd.DataFrame({"a": [1]}), pd.DataFrame({"b": [1]}), model="m", batch="b")
    with pytest.raises(ValueError, match="0 rows"):
        compute_drift(pd.DataFrame({"a": []}), pd.DataFrame({"a": [1]}), model="m", batch="b")
