"""serving.request_scoring: the validation and risk bands under the bulk endpoint, without a server."""

from __future__ import annotations

import pandas as pd
import pytest

from ecom_assets.ml.feature_specs import CART_FEATURES, names

SESSION = {"total_views": 7, "total_carts": 2, "session_duration_minutes": 14.5, "experiment_group": "treatment"}


def test_validate_frame_fills_documented_defaults_and_passes_ids_through():
    from ecom_assets.serving.request_scoring import validate_frame

    frame = pd.DataFrame(
        [
            {**SESSION, "session_id": "x", "cart_value": None},
            {**SESSION, "session_id": "y", "cart_value": 12.5, "experiment_group": " control "},
        ]
    )
    features, extras = validate_frame(frame)
    assert extras == ["session_id"] and list(features.columns) == names(CART_FEATURES)
    defaults = {s.name: s.default for s in CART_FEATURES if not s.required}
    assert features["cart_value"].tolist() == [defaults["cart_value"], 12.5]
    assert features["hour_of_day"].tolist() == [defaults["hour_of_day"]] * 2
    assert features["experiment_group"].tolist() == ["treatment", "control"]


def test_validate_frame_names_every_bad_column_with_rows():
    from ecom_assets.serving.request_scoring import InvalidInput, validate_frame

    frame = pd.DataFrame([SESSION] * 8)
    frame.loc[[1, 3, 4, 5, 6, 7], "total_views"] = -1
    frame.loc[2, "day_of_week"] = 9
    frame.loc[0, "session_duration_minutes"] = float("inf")
    with pytest.raises(InvalidInput) as refused:
        validate_frame(frame)
    message = refused.value.message
    assert "total_views: must be >= 0, got -1 in rows 2, 4, 5, 6, 7 (+1 more)" in message
    assert "day_of_week: must be <= 7, got 9 in row 3" in message
    assert "session_duration_minutes: must be finite" in message
    with pytest.raises(InvalidInput) as too_many:
        validate_frame(pd.DataFrame([SESSION] * 3), max_rows=2)
    assert too_many.value.status_code == 413


def test_risk_bands_agree_one_by_one_and_vectorised():
    import numpy as np

    from ecom_assets.serving.request_scoring import HIGH_RISK_FROM, LOW_RISK_BELOW, risk_band, risk_bands

    p = np.array([0.0, LOW_RISK_BELOW - 1e-9, LOW_RISK_BELOW, HIGH_RISK_FROM - 1e-9, HIGH_RISK_FROM, 1.0])
    assert risk_bands(p).tolist() == [risk_band(x) for x in p] == ["low", "low", "medium", "medium", "high", "high"]
